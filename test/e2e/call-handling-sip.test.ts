import {
  AddRingGroupMemberDocument,
  CdrsDocument,
  CreateExtensionDocument,
  CreateRingGroupDocument,
  ExtensionDevicesDocument,
  UpdateCallHandlingDocument,
  UpdateExtensionDocument,
} from "../graphql/generated";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import dgram from "node:dgram";
import { answerCall, createEngineRole, freeUdpPort, startKamailio, startPhone, waitFor, watchDialogs, type EngineRole, type Kamailio, type Phone } from "../support/sip";

/**
 * Contract §12 with real phones (baresip) through the shipped Kamailio, on what was provisioned
 * over GraphQL: forwarding, do-not-disturb, loops and ring groups, each call's CDR legs checked.
 */
const real = requireReal("postgres") && requireReal("redis");
const suite = real ? describe : describe.skip;

suite("call handling through the shipped Kamailio", () => {
  let ts: TestServer;
  let role: EngineRole;
  let kamailio: Kamailio;
  let tenant: { id: string; sipDomain: string };
  const phones: Phone[] = [];
  const ids = new Map<string, string>();
  // A stand-in for the media application (MEDIA_URI): keeps each INVITE it gets and declines it.
  const media = dgram.createSocket("udp4");
  const mediaInvites: string[] = [];

  beforeAll(async () => {
    ts = await startTestServer();
    role = await createEngineRole(databaseUrl()!, ts.schema);
    const mediaPort = await freeUdpPort();
    await new Promise<void>((resolve) => media.bind(mediaPort, "127.0.0.1", resolve));
    media.on("message", (data, from) => {
      const text = data.toString();
      if (!text.startsWith("INVITE ")) return;
      mediaInvites.push(text);
      const keep = text.split("\r\n\r\n")[0].split("\r\n").filter((h) => /^(Via|From|To|Call-ID|CSeq):/i.test(h)).map((h) => (/^To:/i.test(h) ? `${h};tag=media` : h));
      media.send(["SIP/2.0 480 Temporarily Unavailable", ...keep, "Content-Length: 0", "", ""].join("\r\n"), from.port, from.address);
    });
    kamailio = await startKamailio({
      databaseUrl: role.url,
      redisUrl: redisUrl()!,
      streamKey: `${ts.redisPrefix}pbx:events`,
      defines: [`MEDIA_URI="sip:127.0.0.1:${mediaPort}"`],
    });
    tenant = await createTenant(ts, { maxExtensions: 50 });
    for (const n of ["5001", "5002", "5003", "5004", "5005"]) {
      const { createExtension } = await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: n, secret: `secret-${n}-sip`, displayName: `Ext ${n}` } });
      ids.set(n, createExtension.id);
    }
    // 5005 stays unregistered.
    for (const n of ["5001", "5002", "5003", "5004"]) phones.push(await startPhone(kamailio.port, n, tenant.sipDomain, `secret-${n}-sip`, `Ext ${n}`));
    await waitFor("the phones registered in the product", async () => {
      for (const n of ["5001", "5002", "5003", "5004"]) if (!(await ts.ok(ExtensionDevicesDocument, { id: ids.get(n)! })).extension?.registered) return undefined;
      return true;
    }, 20_000);
  }, 60_000);
  afterAll(async () => {
    for (const phone of phones) await phone.stop();
    const logged = kamailio?.output() ?? "";
    await kamailio?.stop();
    await role?.drop();
    media.close();
    await ts?.stop();
    // Kamailio logged no error while it worked.
    expect(logged).not.toMatch(/\b(ERROR|CRITICAL):/);
  });

  const phone = (n: string) => phones.find((p) => p.number === n)!;
  const incoming = (n: string) => (phone(n).output().match(/Incoming call/g) ?? []).length;
  const established = (n: string) => (phone(n).output().match(/Call established/g) ?? []).length;
  /** `accepting` answers the call that rings it; resolves once the caller's phone has the answer (no fixed sleep). */
  const accept = async (accepting: string, caller = "5001") => {
    const before = established(caller);
    await answerCall(phone(accepting));
    await waitFor(`${caller}'s call to be answered by ${accepting}`, () => established(caller) > before || undefined, 20_000);
  };
  const handle = (n: string, input: Record<string, unknown>) => ts.ok(UpdateCallHandlingDocument, { extensionId: ids.get(n)!, input: input as never });
  const reset = async () => {
    for (const n of ids.keys()) await handle(n, { doNotDisturb: false, ringSeconds: 25, forwardAlways: null, forwardBusy: null, forwardNoAnswer: null });
  };
  const seenCalls = new Set<string>();
  /** The CDR legs of `caller`'s next call not looked at yet, once `count` legs of it exist. */
  const legsOf = async (caller: string, count: number) => {
    const legs = await waitFor(`${count} CDR legs of ${caller}'s call`, async () => {
      const { cdrs } = await ts.ok(CdrsDocument, { tenantId: tenant.id, filter: {}, first: 100 });
      const callerLeg = cdrs.nodes.find((c) => c.extensionNumber === caller && c.callerNumber === caller && !seenCalls.has(c.linkedId!));
      if (!callerLeg) return undefined;
      const found = cdrs.nodes.filter((c) => c.linkedId === callerLeg.linkedId);
      return found.length >= count ? found : undefined;
    }, 20_000);
    seenCalls.add(legs[0].linkedId!);
    return legs;
  };
  const byExt = (legs: Awaited<ReturnType<typeof legsOf>>) => Object.fromEntries(legs.map((l) => [l.extensionNumber, { disposition: l.disposition, hangupCause: l.hangupCause }]));

  it("DND: the caller gets busy and the extension does not ring", async () => {
    await reset();
    await handle("5002", { doNotDisturb: true });
    const before = incoming("5002");
    await phone("5001").command("/dial 5002");
    const legs = await legsOf("5001", 1);
    expect(byExt(legs)).toEqual({ "5001": { disposition: "BUSY", hangupCause: "sip_486" } });
    expect(incoming("5002")).toBe(before);
  }, 60_000);

  it("forward always: the target rings and the first does not; answered, both legs share linked_id", async () => {
    await reset();
    await handle("5002", { forwardAlways: { type: "EXTENSION", target: "5003" } });
    const before = [incoming("5002"), incoming("5003")];
    await phone("5001").command("/dial 5002");
    await waitFor("5003 to ring", () => incoming("5003") > before[1] || undefined);
    await accept("5003");
    await phone("5001").command("/hangup");
    const legs = await legsOf("5001", 2);
    expect(byExt(legs)).toEqual({ "5001": { disposition: "ANSWERED", hangupCause: "normal_clearing" }, "5003": { disposition: "ANSWERED", hangupCause: "normal_clearing" } });
    expect(legs.find((l) => l.extensionNumber === "5003")!.callId).toBe(`${legs[0].linkedId};5003`);
    expect(incoming("5002")).toBe(before[0]);
  }, 60_000);

  it("forward on busy: a phone that rejects the call (486) sends it to forwardBusy", async () => {
    await reset();
    await handle("5002", { forwardBusy: { type: "EXTENSION", target: "5004" } });
    const before = [incoming("5002"), incoming("5004")];
    await phone("5001").command("/dial 5002");
    await waitFor("5002 to ring", () => incoming("5002") > before[0] || undefined);
    await phone("5002").command("/hangup");
    await waitFor("5004 to ring", () => incoming("5004") > before[1] || undefined);
    await accept("5004");
    await phone("5001").command("/hangup");
    const legs = await legsOf("5001", 3);
    expect(byExt(legs)).toMatchObject({
      "5001": { disposition: "ANSWERED" },
      "5002": { disposition: "BUSY", hangupCause: "sip_486" },
      "5004": { disposition: "ANSWERED" },
    });
  }, 60_000);

  it("forward on no answer after ringSeconds (not before, within a few seconds after); not registered → forwardNoAnswer at once", async () => {
    await reset();
    await handle("5002", { ringSeconds: 5, forwardNoAnswer: { type: "EXTENSION", target: "5004" } });
    const before = [incoming("5002"), incoming("5004")];
    await phone("5001").command("/dial 5002");
    await waitFor("5002 to ring", () => incoming("5002") > before[0] || undefined);
    const rang = Date.now();
    await waitFor("5004 to ring", () => incoming("5004") > before[1] || undefined, 20_000, 50);
    const waited = Date.now() - rang;
    expect(waited).toBeGreaterThanOrEqual(4_500);
    expect(waited).toBeLessThan(9_000);
    await phone("5001").command("/hangup");
    const legs = await legsOf("5001", 3);
    expect(byExt(legs)).toMatchObject({ "5002": { disposition: "NO_ANSWER" }, "5004": { disposition: "NO_ANSWER" } });

    await handle("5005", { forwardNoAnswer: { type: "EXTENSION", target: "5003" } });
    const at = incoming("5003");
    await phone("5001").command("/dial 5005");
    await waitFor("5003 to ring for the unregistered 5005", () => incoming("5003") > at || undefined);
    await phone("5001").command("/hangup");
    const second = await legsOf("5001", 2);
    expect(Object.keys(byExt(second)).sort()).toEqual(["5001", "5003"]);
  }, 90_000);

  it("busy with voicemail enabled and no forward: the call goes to the media application (MEDIA_URI) with its headers", async () => {
    await reset();
    await ts.ok(UpdateExtensionDocument, { id: ids.get("5003")!, input: { voicemailEnabled: true } });
    try {
      await handle("5003", { doNotDisturb: true });
      const before = mediaInvites.length;
      await phone("5001").command("/dial 5003");
      const invite = await waitFor("the media application to get the call", () => mediaInvites[before], 10_000);
      expect(invite).toMatch(/^INVITE sip:5003@/);
      expect(invite).toMatch(/^X-Pbx-App: voicemail\r$/m);
      expect(invite).toMatch(/^X-Pbx-Target: 5003\r$/m);
      expect(invite).toMatch(/^X-Pbx-Reason: busy\r$/m);
      expect(invite).toContain(`X-Pbx-Domain: ${tenant.sipDomain}`);
      await legsOf("5001", 1);
    } finally {
      await ts.ok(UpdateExtensionDocument, { id: ids.get("5003")!, input: { voicemailEnabled: false } });
    }
  }, 60_000);

  it("a loop of forwards stops with 482", async () => {
    await reset();
    await handle("5002", { forwardAlways: { type: "EXTENSION", target: "5003" } });
    await handle("5003", { forwardAlways: { type: "EXTENSION", target: "5002" } });
    await phone("5001").command("/dial 5002");
    const legs = await legsOf("5001", 1);
    expect(byExt(legs)).toEqual({ "5001": { disposition: "FAILED", hangupCause: "sip_482" } });
  }, 60_000);

  it("a simultaneous group: both ring, the second to answer loses and is cancelled (answered_elsewhere); a DND member is skipped", async () => {
    await reset();
    await handle("5004", { doNotDisturb: true });
    const { createRingGroup } = await ts.ok(CreateRingGroupDocument, { input: { tenantId: tenant.id, name: "Sim", number: "5600", ringSeconds: 20 } });
    for (const n of ["5002", "5003", "5004"]) await ts.ok(AddRingGroupMemberDocument, { ringGroupId: createRingGroup.id, extensionId: ids.get(n)! });
    const before = ["5002", "5003", "5004"].map(incoming);
    await phone("5001").command("/dial 5600");
    await waitFor("5002 and 5003 to ring", () => (incoming("5002") > before[0] && incoming("5003") > before[1]) || undefined);
    await accept("5003");
    await phone("5001").command("/hangup");
    const legs = await legsOf("5001", 3);
    expect(byExt(legs)).toEqual({
      "5001": { disposition: "ANSWERED", hangupCause: "normal_clearing" },
      "5002": { disposition: "NO_ANSWER", hangupCause: "answered_elsewhere" },
      "5003": { disposition: "ANSWERED", hangupCause: "normal_clearing" },
    });
    expect(incoming("5004")).toBe(before[2]);
    await phone("5002").command("/hangup");
  }, 60_000);

  it("a sequential group: the second rings only after the first's time; nobody answers → the fallback", async () => {
    await reset();
    const { createRingGroup } = await ts.ok(CreateRingGroupDocument, {
      input: { tenantId: tenant.id, name: "Seq", number: "5700", strategy: "SEQUENTIAL", ringSeconds: 5, fallback: { type: "EXTENSION", target: "5004" } },
    });
    for (const n of ["5002", "5003"]) await ts.ok(AddRingGroupMemberDocument, { ringGroupId: createRingGroup.id, extensionId: ids.get(n)! });
    const before = ["5002", "5003", "5004"].map(incoming);
    await phone("5001").command("/dial 5700");
    await waitFor("5002 to ring", () => incoming("5002") > before[0] || undefined);
    const first = Date.now();
    expect(incoming("5003")).toBe(before[1]);
    await waitFor("5003 to ring", () => incoming("5003") > before[1] || undefined, 20_000, 50);
    expect(Date.now() - first).toBeGreaterThanOrEqual(4_500);
    await waitFor("the fallback 5004 to ring", () => incoming("5004") > before[2] || undefined, 20_000, 50);
    await accept("5004");
    await phone("5001").command("/hangup");
    const legs = await legsOf("5001", 4);
    expect(byExt(legs)).toMatchObject({
      "5001": { disposition: "ANSWERED" },
      "5002": { disposition: "NO_ANSWER" },
      "5003": { disposition: "NO_ANSWER" },
      "5004": { disposition: "ANSWERED" },
    });
  }, 90_000);

  it("a busy lamp: a subscriber of the tenant sees early → confirmed → terminated; another tenant's subscription and other events are refused", async () => {
    await reset();
    const lamp = await watchDialogs(kamailio.port, "5004", tenant.sipDomain, "secret-5004-sip", "5002");
    try {
      expect([200, 202]).toContain(lamp.status);
      const states = () => lamp.notifies.map((b) => /<state[^>]*>([a-z]+)<\/state>/.exec(b)?.[1] ?? "idle");
      const before = incoming("5002");
      await phone("5001").command("/dial 5002");
      await waitFor("5002 to ring", () => incoming("5002") > before || undefined);
      await waitFor("the lamp to show early", () => states().includes("early") || undefined, 10_000);
      await answerCall(phone("5002"));
      await waitFor("the lamp to show confirmed", () => states().includes("confirmed") || undefined, 10_000);
      await phone("5001").command("/hangup");
      // (an extension that was on do-not-disturb before keeps a terminated dialog on its lamp: idle)
      await waitFor("the lamp to show terminated", () => (states().lastIndexOf("terminated") > states().lastIndexOf("confirmed") && states().includes("confirmed")) || undefined, 10_000);
      const seen = states().filter((s) => s !== "idle");
      expect(seen.indexOf("early")).toBeLessThan(seen.indexOf("confirmed"));
      expect(seen.lastIndexOf("confirmed")).toBeLessThan(seen.lastIndexOf("terminated"));
      expect(lamp.notifies.some((b) => b.includes(`entity="sip:5002@${tenant.sipDomain}"`))).toBe(true);
      await legsOf("5001", 2);
    } finally {
      lamp.close();
    }

    const other = await createTenant(ts);
    await ts.ok(CreateExtensionDocument, { input: { tenantId: other.id, extensionNumber: "5002", secret: "other-secret-5002" } });
    // Our 5004, authenticated in its own domain, asking for the other tenant's 5002.
    const foreign = await watchDialogs(kamailio.port, "5004", tenant.sipDomain, "secret-5004-sip", "5002", "dialog", other.sipDomain);
    foreign.close();
    expect(foreign.status).toBe(403);
    expect(foreign.notifies).toEqual([]);
    const wrongEvent = await watchDialogs(kamailio.port, "5004", tenant.sipDomain, "secret-5004-sip", "5002", "presence");
    wrongEvent.close();
    expect(wrongEvent.status).toBe(489);
  }, 90_000);

  it("do-not-disturb on the lamp: switched on over GraphQL, watchers see the extension busy (confirmed) within 2 s; switched off, the lamp goes back", async () => {
    await reset();
    const lamp = await watchDialogs(kamailio.port, "5004", tenant.sipDomain, "secret-5004-sip", "5003");
    let late: Awaited<ReturnType<typeof watchDialogs>> | undefined;
    try {
      expect([200, 202]).toContain(lamp.status);
      const stateOf = (body: string) => /<state[^>]*>([a-z]+)<\/state>/.exec(body)?.[1] ?? "idle";
      // RFC 4235 §4.1: a watcher orders NOTIFYs by the document's version, not by arrival (presence
      // builds them in several processes: two publications in a row may reach a watcher swapped)
      const versionOf = (body: string) => Number(/<dialog-info[^>]*\sversion="(\d+)"/.exec(body)?.[1] ?? -1);
      const newest = (w: typeof lamp) => w.notifies.reduce<string | undefined>((best, body) => (best === undefined || versionOf(body) >= versionOf(best) ? body : best), undefined);
      const last = (w: typeof lamp) => {
        const body = newest(w);
        return body === undefined ? "none" : stateOf(body);
      };
      await waitFor("the first NOTIFY", () => lamp.notifies.length > 0 || undefined, 5_000);
      expect(last(lamp)).not.toBe("confirmed");
      await handle("5003", { doNotDisturb: true });
      const switched = Date.now();
      await waitFor("the lamp to show busy", () => last(lamp) === "confirmed" || undefined, 5_000, 50);
      expect(Date.now() - switched).toBeLessThan(2_500);
      expect(lamp.notifies.at(-1)).toContain(`entity="sip:5003@${tenant.sipDomain}"`);
      // a key subscribed while DND is on starts busy
      late = await watchDialogs(kamailio.port, "5002", tenant.sipDomain, "secret-5002-sip", "5003");
      await waitFor("the late watcher's NOTIFY", () => late!.notifies.length > 0 || undefined, 5_000);
      expect(last(late)).toBe("confirmed");
      await handle("5003", { doNotDisturb: false });
      await waitFor("the lamp to go back", () => (last(lamp) !== "confirmed" && last(late!) !== "confirmed") || undefined, 15_000, 50).catch((error: Error) => {
        throw new Error(`${error.message}: the lamps' NOTIFYs (version:state, as they arrived): ${[lamp, late!].map((w) => w.notifies.map((b) => `${versionOf(b)}:${stateOf(b)}`).join(" ")).join(" / ")}; newest bodies:\n${newest(lamp)}\n${newest(late!)}\nKamailio:\n${kamailio.output().slice(-3000)}`, { cause: error });
      });
    } finally {
      lamp.close();
      late?.close();
      await handle("5003", { doNotDisturb: false });
    }
  }, 60_000);
});
