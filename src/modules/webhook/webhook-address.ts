import dns from "node:dns";
import net from "node:net";

/** IPv4 ranges a webhook may not reach (unless WEBHOOK_ALLOW_PRIVATE): loopback, private, link-local and the like. */
const blocked = new net.BlockList();
for (const [prefix, bits] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12],
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation (TEST-NET-1)
  ["192.88.99.0", 24], // 6to4 relay anycast (deprecated)
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation (TEST-NET-2)
  ["203.0.113.0", 24], // documentation (TEST-NET-3)
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(prefix, bits, "ipv4");
}

/**
 * IPv6 is judged by allow-list: only global unicast (2000::/3) may be reached, which leaves out
 * `::`, `::1`, unique-local fc00::/7, link-local fe80::/10, multicast ff00::/8, discard 100::/64,
 * the deprecated IPv4-compatible ::a.b.c.d, local-use NAT64 64:ff9b:1::/48 and SIIT ::ffff:0:a.b.c.d.
 * Inside 2000::/3 these are refused outright, whatever they embed: they either carry an IPv4
 * address a tunnel would deliver to (6to4, Teredo — both deprecated, never a server's address) or
 * are not routed on the Internet at all.
 */
const NOT_GLOBAL_V6: ReadonlyArray<readonly [string, number]> = [
  ["2001::", 23], // IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID
  ["2001:db8::", 32], // documentation
  ["2002::", 16], // 6to4
  ["3fff::", 20], // documentation (RFC 9637)
];

/**
 * The two embeddings that name a real IPv4 host: IPv4-mapped ::ffff:a.b.c.d (what a dual-stack
 * resolver may answer) and the well-known NAT64 prefix 64:ff9b::/96 (RFC 6052). Their IPv4 address
 * is judged as IPv4, so `[64:ff9b::a9fe:a9fe]` is the metadata address it is.
 */
const EMBEDS_V4: ReadonlyArray<readonly [string, number]> = [
  ["::ffff:0:0", 96],
  ["64:ff9b::", 96],
];

/** The 16 bytes of a valid IPv6 literal (zone id dropped), in any of its spellings. */
function ipv6Bytes(address: string): Uint8Array {
  let text = address.split("%")[0];
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(2).map(Number);
    text = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const gap = text.indexOf("::");
  const part = (s: string) => (s ? s.split(":") : []);
  const head = part(gap < 0 ? text : text.slice(0, gap));
  const tail = gap < 0 ? [] : part(text.slice(gap + 2));
  const groups = gap < 0 ? head : [...head, ...new Array<string>(8 - head.length - tail.length).fill("0"), ...tail];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    bytes[2 * i] = n >> 8;
    bytes[2 * i + 1] = n & 255;
  });
  return bytes;
}

function inPrefix(bytes: Uint8Array, [prefix, bits]: readonly [string, number]): boolean {
  const p = ipv6Bytes(prefix);
  for (let bit = 0; bit < bits; bit += 8) {
    const mask = bits - bit >= 8 ? 0xff : (0xff << (8 - (bits - bit))) & 0xff;
    if ((bytes[bit / 8] & mask) !== (p[bit / 8] & mask)) return false;
  }
  return true;
}

/**
 * Whether a webhook may connect to this IP address: a public IPv4 address, or a global unicast
 * IPv6 address that is not one of the special ranges above; IPv4 inside IPv6 is judged as IPv4
 * (mapped, NAT64) or refused (every other embedding).
 */
export function isPublicAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return !blocked.check(address, "ipv4");
  if (family !== 6) return false;
  const bytes = ipv6Bytes(address);
  if (EMBEDS_V4.some((range) => inPrefix(bytes, range))) return isPublicAddress(Array.from(bytes.subarray(12)).join("."));
  return inPrefix(bytes, ["2000::", 3]) && !NOT_GLOBAL_V6.some((range) => inPrefix(bytes, range));
}

export class UnsafeAddressError extends Error {}

export type Lookup = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: Lookup = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

/** The host's addresses, all of which must be public (unless allowed): one private answer refuses the host. */
export async function resolveAllowed(hostname: string, allowPrivate: boolean, lookup: Lookup = systemLookup): Promise<Array<{ address: string; family: number }>> {
  const host = hostname.replace(/^\[(.*)\]$/, "$1");
  const addresses = net.isIP(host) ? [{ address: host, family: net.isIP(host) }] : await lookup(host);
  if (addresses.length === 0) throw new UnsafeAddressError(`${hostname} does not resolve`);
  if (!allowPrivate) {
    const inside = addresses.find((a) => !isPublicAddress(a.address));
    if (inside) throw new UnsafeAddressError(`${hostname} resolves to ${inside.address}, a loopback, private, link-local or otherwise non-global address`);
  }
  return addresses;
}

/**
 * A `lookup` for http.request that answers only with addresses resolveAllowed accepted, so the
 * socket connects to exactly the address that was checked (a DNS answer that changes between the
 * check and the connection cannot point the request inside).
 */
export function checkedLookup(allowPrivate: boolean, lookup: Lookup = systemLookup): net.LookupFunction {
  return (hostname, options, callback) => {
    resolveAllowed(hostname, allowPrivate, lookup).then(
      (addresses) => {
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        const usable = wanted.length ? wanted : addresses;
        if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: typeof usable) => void)(null, usable);
        else callback(null, usable[0].address, usable[0].family);
      },
      (error: Error) => callback(Object.assign(error, { code: "EWEBHOOKADDRESS" }) as NodeJS.ErrnoException, "", 0),
    );
  };
}
