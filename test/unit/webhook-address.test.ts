import http from "node:http";
import type { AddressInfo } from "node:net";
import { checkedLookup, isPublicAddress, resolveAllowed, UnsafeAddressError, type Lookup } from "../../src/modules/webhook/webhook-address";

/** Every spelling of an IPv4 address inside IPv6, and every other non-global IPv6 range (issue 19 item 9). */
const REFUSED = [
  // IPv4-mapped, judged by the embedded address.
  "::ffff:127.0.0.1",
  "::ffff:7f00:1",
  "::ffff:a9fe:a9fe",
  "::ffff:10.0.0.1",
  "0:0:0:0:0:ffff:c0a8:0101",
  // IPv4-compatible (deprecated): refused whatever it embeds.
  "::127.0.0.1",
  "::7f00:1",
  "::8.8.8.8",
  // NAT64 well-known prefix, judged by the embedded address; the local-use prefix outright.
  "64:ff9b::a9fe:a9fe",
  "64:ff9b::169.254.169.254",
  "64:ff9b::7f00:1",
  "64:ff9b::10.1.2.3",
  "64:ff9b:1::8.8.8.8",
  "64:ff9b:1:2::a9fe:a9fe",
  // 6to4 and Teredo: tunnels to an IPv4 address, refused outright.
  "2002:7f00:1::",
  "2002:a9fe:a9fe::1",
  "2002:808:808::1",
  "2001:0:4136:e378:8000:63bf:3fff:fdd2",
  "2001::1",
  // SIIT translated, other non-global IPv6.
  "::ffff:0:7f00:1",
  "::",
  "::1",
  "0:0:0:0:0:0:0:1",
  "fc00::1",
  "fd12:3456:789a::1",
  "fe80::1",
  "fe80::1%eth0",
  "febf::1",
  "ff02::1",
  "ff0e::1",
  "100::1",
  "2001:db8::1",
  "3fff::1",
  "5f00::1",
  // IPv4 itself.
  "127.0.0.1",
  "10.0.0.1",
  "169.254.169.254",
  "192.0.2.10",
  "198.51.100.1",
  "203.0.113.9",
  "0.0.0.0",
  "255.255.255.255",
];

const ACCEPTED = [
  "8.8.8.8",
  "1.1.1.1",
  "::ffff:8.8.8.8",
  "::ffff:808:808",
  "64:ff9b::8.8.8.8",
  "64:ff9b::808:808",
  "2001:4860:4860::8888",
  "2606:4700:4700::1111",
  "2a00:1450:4001:80b::200e",
];

describe("webhook addresses", () => {
  it.each(REFUSED)("refuses %s", (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(ACCEPTED)("accepts %s", (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it("refuses names and garbage that are not addresses", () => {
    for (const text of ["", "localhost", "::ffff:1.2.3", "1.2.3.4.5", "[::1]"]) expect(isPublicAddress(text)).toBe(false);
  });

  it("judges bracketed literals as the URL parser spells them", async () => {
    for (const url of ["http://[::127.0.0.1]/", "http://[::ffff:127.0.0.1]/", "http://[64:ff9b::169.254.169.254]/", "http://[2002:7f00:1::]/", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/"]) {
      const { hostname } = new URL(url);
      await expect(resolveAllowed(hostname, false)).rejects.toBeInstanceOf(UnsafeAddressError);
      await expect(resolveAllowed(hostname, true)).resolves.toHaveLength(1);
    }
    await expect(resolveAllowed(new URL("http://[2001:4860:4860::8888]/").hostname, false)).resolves.toEqual([{ address: "2001:4860:4860::8888", family: 6 }]);
  });

  /** A resolver that answers `name` with the given addresses (the system resolver cannot be pointed at test records). */
  const answering =
    (answers: Record<string, string[]>): Lookup =>
    async (hostname) =>
      (answers[hostname] ?? []).map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));

  it("refuses a host when any of its addresses is an embedding of a private IPv4 address", async () => {
    const lookup = answering({
      "nat64.example": ["64:ff9b::a9fe:a9fe"],
      "mapped.example": ["::ffff:7f00:1"],
      "sixtofour.example": ["2002:a00:1::1"],
      "teredo.example": ["2001:0:4136:e378:8000:63bf:3fff:fdd2"],
      "mixed.example": ["8.8.8.8", "::127.0.0.1"],
      "public.example": ["8.8.8.8", "64:ff9b::808:808"],
    });
    for (const host of ["nat64.example", "mapped.example", "sixtofour.example", "teredo.example", "mixed.example"]) {
      await expect(resolveAllowed(host, false, lookup)).rejects.toThrow(/resolves to .*non-global/);
    }
    await expect(resolveAllowed("public.example", false, lookup)).resolves.toHaveLength(2);
    await expect(resolveAllowed("nowhere.example", false, lookup)).rejects.toThrow(/does not resolve/);
  });

  it("at delivery, the socket never connects to a name that resolves to an embedded loopback address", async () => {
    let reached = 0;
    const server = http.createServer((_req, res) => {
      reached++;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "::1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      // ::ffff:127.0.0.1 is how a dual-stack resolver may answer for 127.0.0.1; ::1 is where the receiver listens.
      const lookup = answering({ "inside.example": ["::ffff:127.0.0.1", "::1"] });
      const error = await new Promise<NodeJS.ErrnoException>((resolve, reject) => {
        const request = http.request({ host: "inside.example", port, lookup: checkedLookup(false, lookup) }, () => reject(new Error("connected")));
        request.once("error", resolve);
        request.end();
      });
      expect(error.code).toBe("EWEBHOOKADDRESS");
      expect(error.message).toMatch(/::ffff:127\.0\.0\.1/);
      // With private addresses allowed, the same lookup connects: the refusal above was the check's.
      await new Promise<void>((resolve, reject) => {
        const request = http.request({ host: "inside.example", port, family: 6, lookup: checkedLookup(true, answering({ "inside.example": ["::1"] })) }, (res) => {
          res.resume();
          res.once("end", resolve);
        });
        request.once("error", reject);
        request.end();
      });
      expect(reached).toBe(1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
