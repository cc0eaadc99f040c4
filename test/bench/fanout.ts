/**
 * Live fan-out benchmark: how many subscription messages per second one server process delivers.
 *
 *   npm run bench:fanout -- [--clients 2000] [--groups 1] [--rate 50] [--duration 10]
 *   npm run bench:fanout -- --distinct 2000 [--rate 5] [--duration 10] [--baseline]
 *
 * --distinct N: one tenant, one VIEWER key, N distinct subscription documents (each names the root
 * field with its own alias, 100 per socket), every event of the tenant reaching all N — the shape
 * of issue 19's "20 sockets × 100 aliased subscriptions". --baseline runs the same clients against
 * a plain `ws` server (test/bench/ws-baseline.ts): Redis message in, one frame per subscription out,
 * no GraphQL — the floor the product's fan-out is measured against.
 *
 * Starts the built server (dist/src/main.js) with DATABASE_URL and REDIS_URL (both required; see
 * bench-server.ts), opens --clients raw WebSockets (graphql-transport-ws, written by hand here so the client side stays cheap)
 * split over --groups distinct subscriptions (one tenant each), then publishes --rate events per second
 * per tenant straight onto the tenant's Redis topic — the path every ingested event takes after its
 * commit — so the figure measures fan-out (one execution per event per distinct subscription, the same
 * bytes to every subscriber), not ingestion. It prints delivered messages/s, the server's CPU per
 * message, and the p50/p99 delay from publish to receipt.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort, startBenchServer } from "./bench-server";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const distinct = arg("distinct", 0);
const baseline = process.argv.includes("--baseline");
const PER_SOCKET = 100;
const clients = distinct ? Math.ceil(distinct / PER_SOCKET) : arg("clients", 2000);
const groups = arg("groups", 1);
const rate = arg("rate", 50);
const duration = arg("duration", 10);

function peakRssMb(pid: number): number {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Math.round(Number(hwm) / 1024);
}

/** The plain `ws` server of --baseline, in a process of its own like the product. */
async function startBaseline(redisUrl: string, prefix: string): Promise<{ port: number; child: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.resolve(__dirname, "ws-baseline.js")], {
    env: { ...process.env, PORT: String(port), REDIS_URL: redisUrl, CHANNEL_PATTERN: `${prefix}pbx:topic:tenant.*` },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`baseline exited with ${code}`)));
  });
  return {
    port,
    child,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}

function cpuMs(pid: number): number {
  const [utime, stime] = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ").slice(11, 13).map(Number);
  return ((utime + stime) * 1000) / 100;
}

/**
 * A bare graphql-transport-ws client over a TCP socket: it frames its few messages itself and walks
 * the server's frames by their headers without decoding text, so the client side of this benchmark
 * costs far less per message than the server it measures (both share this machine's two cores).
 */
class RawClient {
  private pending = Buffer.alloc(0);

  private constructor(
    private readonly socket: net.Socket,
    private readonly onNext: (frame: Buffer) => void,
    private readonly onText: (text: string) => void,
  ) {
    socket.on("data", (chunk: Buffer) => this.read(chunk));
  }

  static open(port: number, key: string, queries: string | string[], onNext: (frame: Buffer) => void): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.setNoDelay(true);
      const nonce = randomBytes(16).toString("base64");
      let handshake = "";
      const onHandshake = (chunk: Buffer) => {
        handshake += chunk.toString("latin1");
        const end = handshake.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onHandshake);
        const accept = createHash("sha1").update(nonce + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
        if (!handshake.startsWith("HTTP/1.1 101") || !handshake.includes(accept)) return reject(new Error(handshake.slice(0, 200)));
        const client: RawClient = new RawClient(socket, onNext, (text) => {
          if (text.startsWith('{"type":"connection_ack"')) {
            (Array.isArray(queries) ? queries : [queries]).forEach((query, i) => client.send(JSON.stringify({ id: String(i + 1), type: "subscribe", payload: { query } })));
            resolve(client);
          } else if (text.includes('"type":"ping"')) client.send('{"type":"pong"}');
          else if (text.includes('"type":"error"')) reject(new Error(text));
        });
        const rest = Buffer.from(handshake.slice(end + 4), "latin1");
        if (rest.length) client.read(rest);
        client.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${key}` } }));
      };
      socket.on("data", onHandshake);
      socket.once("error", reject);
      socket.write(
        `GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${nonce}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n`,
      );
    });
  }

  /** Client frames must be masked (RFC 6455); a zero mask keeps the payload as it is. */
  send(text: string, opcode = 0x1): void {
    const payload = Buffer.from(text);
    const header = payload.length < 126 ? Buffer.from([0x80 | opcode, 0x80 | payload.length]) : Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    this.socket.write(Buffer.concat([header, Buffer.alloc(4), payload]));
  }

  private read(chunk: Buffer): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let offset = 0;
    for (;;) {
      if (buf.length - offset < 2) break;
      const opcode = buf[offset] & 0x0f;
      let length = buf[offset + 1] & 0x7f;
      let header = 2;
      if (length === 126) {
        if (buf.length - offset < 4) break;
        length = buf.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (buf.length - offset < 10) break;
        length = Number(buf.readBigUInt64BE(offset + 2));
        header = 10;
      }
      if (buf.length - offset < header + length) break;
      const start = offset + header;
      if (opcode === 0x1) {
        // `{"id":` starts every subscription `next` frame; protocol messages start with `{"type":`.
        if (buf[start + 2] === 0x69) this.onNext(buf.subarray(start, start + length));
        else this.onText(buf.toString("utf8", start, start + length));
      } else if (opcode === 0x9) this.send(buf.toString("latin1", start, start + length), 0xa);
      offset = start + length;
    }
    this.pending = offset < buf.length ? Buffer.from(buf.subarray(offset)) : Buffer.alloc(0);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const SELECTION = `type tenantId occurredAt extension { id extensionNumber } device { id contactUri transport registered expiresAt }`;
const QUERY = `subscription { registrationEvents { ${SELECTION} } }`;
/** The i-th of --distinct documents: the same selection under its own alias. */
const distinctQuery = (i: number) => `subscription { s${i}: registrationEvents { ${SELECTION} } }`;

async function main(): Promise<void> {
  if (distinct && groups !== 1) throw new Error("--distinct uses one tenant: leave out --groups");
  // The product's own bounds on distinct subscriptions must let the scenario in.
  process.env.SUBSCRIPTION_MAX_DISTINCT_PER_KEY ??= String(Math.max(distinct, 1000));
  process.env.SUBSCRIPTION_MAX_DISTINCT_PER_TENANT ??= String(Math.max(distinct, 5000));
  const bench = await startBenchServer("fanout");
  const { adminKey, prefix } = bench;
  const plain = baseline ? await startBaseline(process.env.REDIS_URL!, prefix) : undefined;
  const port = plain?.port ?? bench.port;
  const redisUrl = process.env.REDIS_URL!;
  const base = `http://127.0.0.1:${bench.port}`;
  const gql = async (query: string, key = adminKey) => {
    const res = await fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: JSON.stringify({ query }) });
    const body = (await res.json()) as { data: any; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };

  const tenants: Array<{ id: number; key: string; extension: any }> = [];
  for (let g = 0; g < groups; g++) {
    const t = (await gql(`mutation { createTenant(input: { name: "B${g}", slug: "bench-${g}", sipDomain: "bench-${g}.test", maxExtensions: 5 }) { id } }`)).createTenant;
    const e = (await gql(`mutation { createExtension(input: { tenantId: ${t.id}, extensionNumber: "1001", secret: "s3cur3p@ss" }) { id tenantId extensionNumber displayName email status voicemailEnabled hasSecret createdAt updatedAt } }`)).createExtension;
    const key = (await gql(`mutation { createApiKey(input: { name: "wall", role: VIEWER, tenantId: ${t.id} }) { key } }`)).createApiKey.key;
    tenants.push({ id: Number(t.id), key, extension: { ...e, id: Number(e.id), tenantId: Number(e.tenantId), status: "active" } });
  }

  let received = 0;
  const delays: number[] = [];
  const sockets: RawClient[] = [];
  const subscriptions = distinct || clients;
  for (let i = 0; i < clients; i++) {
    const tenant = tenants[i % groups];
    const queries = distinct
      ? Array.from({ length: Math.min(PER_SOCKET, distinct - i * PER_SOCKET) }, (_, j) => distinctQuery(i * PER_SOCKET + j))
      : QUERY;
    sockets.push(
      await RawClient.open(port, tenant.key, queries, (frame) => {
        received++;
        if (received % 997 === 0) {
          const sent = /"occurredAt":"([^"]+)"/.exec(frame.toString());
          if (sent) delays.push(Date.now() - Date.parse(sent[1]));
        }
      }),
    );
  }
  // Let the subscriptions attach (each group SUBSCRIBEs once).
  const redis = new Redis(redisUrl);
  for (;;) {
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    if (Number(/^subscriptions_active (\d+)/m.exec(metrics)?.[1]) >= subscriptions) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 300));

  const device = { id: 1, tenantId: 0, extensionId: 0, contactUri: "sip:1001@192.0.2.1:5060", userAgent: "bench", sourceAddress: "192.0.2.1:5060", transport: "udp", registeredAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 3600e3).toISOString(), unregisteredAt: null, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), registered: true };
  const pid = plain?.child.pid ?? bench.child.pid!;
  const cpu0 = cpuMs(pid);
  const own0 = process.cpuUsage();
  const received0 = received;
  const started = Date.now();
  let published = 0;
  const tick = 20;
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) / 1000) * rate) - published;
    for (let n = 0; n < due; n++) {
      for (const t of tenants) {
        const payload = { type: "REFRESHED", tenantId: t.id, extension: t.extension, device: { ...device, tenantId: t.id, extensionId: t.extension.id }, occurredAt: new Date().toISOString() };
        void redis.publish(`${prefix}pbx:topic:tenant.${t.id}.registrations`, JSON.stringify(payload));
      }
      published++;
    }
  }, tick);
  // How long the product's /healthz waits while the events fan out (issue 19 item 4 saw 18.9 s).
  let healthMax = 0;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const t0 = Date.now();
      await fetch(`${base}/healthz`).then((r) => r.text());
      healthMax = Math.max(healthMax, Date.now() - t0);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  await new Promise((r) => setTimeout(r, duration * 1000));
  clearInterval(timer);
  await new Promise((r) => setTimeout(r, 1000));
  probing = false;
  await probe;
  const seconds = (Date.now() - started) / 1000;
  const cpu = cpuMs(pid) - cpu0;
  const own = process.cpuUsage(own0);
  const messages = received - received0;
  const expected = published * subscriptions;
  delays.sort((x, y) => x - y);
  const pct = (p: number) => (delays.length ? delays[Math.min(delays.length - 1, Math.floor(delays.length * p))] : NaN);
  process.stdout.write(
    [
      `${baseline ? "plain ws baseline" : "product"}: ${clients} sockets, ${subscriptions} subscriptions, ${distinct || groups} distinct, events ${rate}/s per tenant for ${duration}s (load ${fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")})`,
      `server CPU per event ${(cpu / Math.max(1, published * groups)).toFixed(2)} ms; peak RSS ${peakRssMb(pid)} MB`,
      `delivered ${messages} of ${expected} messages (${((100 * messages) / Math.max(1, expected)).toFixed(1)}%)`,
      `throughput ${(messages / seconds).toFixed(0)} messages/s; server CPU ${((cpu / messages) * 1000).toFixed(2)} µs/message (${((cpu / 1000 / seconds) * 100).toFixed(0)}% of a core)`,
      `publish→receipt delay p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms; the product's /healthz answered within ${healthMax} ms at worst`,
      `client (this process) CPU ${(((own.user + own.system) / 1e6 / seconds) * 100).toFixed(0)}% of a core`,
      "",
    ].join("\n"),
  );
  for (const s of sockets) s.destroy();
  await redis.quit();
  await plain?.stop();
  await bench.stop();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
