/**
 * Ingestion benchmark: telephony events per second through the Redis stream and through
 * `POST /api/events`, at rising rates, and whether every one of them reached the database.
 *
 *   npm run bench:ingest -- [--rates 250,500,1000,1500] [--duration 20] [--paths stream,http]
 *                           [--tenants 4] [--extensions 250] [--post-interval 100] [--post-lanes 4]
 *
 * Starts the built server (dist/src/main.js) with DATABASE_URL and REDIS_URL (both required) in a
 * schema and Redis prefix of its own (see bench-server.ts), creates --tenants tenants of --extensions extensions, then for
 * each path and rate drives a realistic mix for --duration seconds: about 60 % registrations (each
 * extension refreshing its one contact, in turn) and 40 % call-leg events (a leg starts, is answered
 * half a second later and ends two seconds after its start). The stream path XADDs every 10 ms; the
 * HTTP path POSTs the events due every --post-interval ms as arrays over --post-lanes connections
 * (an extension always on the same one, each waiting for its answer before its next array).
 *
 * Latency is measured from the XADD or POST to the subscription event of that exact change (read on
 * the all-tenants Redis topics, where every event goes once its transaction has committed). At the
 * end of each step it waits for the backlog to drain, then checks the database: one CDR per ended
 * leg, no leg left open, every extension's device carrying its last registration's expiry, and no
 * stream entry left pending.
 */
import http from "node:http";
import { Redis } from "ioredis";
import { startBenchServer } from "./bench-server";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const positive = (name: string, fallback: number): number => {
  const n = Number(arg(name, String(fallback)));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
};

const rates = arg("rates", "250,500,1000,1500").split(",").map(Number);
const duration = positive("duration", 20);
const paths = arg("paths", "stream,http").split(",") as Array<"stream" | "http">;
const tenantCount = positive("tenants", 4);
const extensionsPerTenant = positive("extensions", 250);
const postIntervalMs = positive("post-interval", 100);
const postLanes = positive("post-lanes", 4);
const EXPIRES = 3600;
/** How long a step may take to drain its backlog after sending stops before the rest counts as lost. */
const DRAIN_MS = 60_000;

interface Extension {
  tenantId: number;
  domain: string;
  number: string;
  contact: string;
  /** occurred_at of the last registration sent for it. */
  lastAt: number;
}

interface Leg {
  callId: string;
  extension: Extension;
}

type Event = Record<string, unknown>;

/** The key of the change an event makes, as its subscription event will name it. */
const registrationKey = (tenantId: number, number: string, at: string) => `r|${tenantId}|${number}|${at}`;
const callKey = (callId: string, type: string) => `c|${callId}|${type}`;

class Step {
  readonly sent = new Map<string, number>();
  readonly delays: number[] = [];
  seen = 0;
  lastCommitAt = 0;
  lastSentAt = 0;
  legsEnded = 0;
  readonly legIds: string[] = [];

  observe(key: string, now: number): void {
    const at = this.sent.get(key);
    if (at === undefined) return;
    this.sent.delete(key);
    this.delays.push(now - at);
    this.seen++;
    this.lastCommitAt = now;
  }
}

async function main(): Promise<void> {
  const bench = await startBenchServer("ingest");
  const { port, adminKey, schema, prefix, db } = bench;
  const run = prefix.split(":")[1];
  const redisUrl = process.env.REDIS_URL!;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const request = (pathname: string, body: string): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent,
          host: "127.0.0.1",
          port,
          method: "POST",
          path: pathname,
          headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  const gql = async (query: string) => {
    const { text } = await request("/graphql", JSON.stringify({ query }));
    const body = JSON.parse(text) as { data: any; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };

  const extensions: Extension[] = [];
  for (let t = 0; t < tenantCount; t++) {
    const domain = `bench-${t}.${run}.test`;
    const tenant = (await gql(`mutation { createTenant(input: { name: "Bench ${t}", slug: "bench-${t}-${run}", sipDomain: "${domain}", maxExtensions: ${extensionsPerTenant} }) { id } }`))
      .createTenant;
    for (let e = 0; e < extensionsPerTenant; e++) {
      const number = String(2000 + e);
      await gql(`mutation { createExtension(input: { tenantId: ${tenant.id}, extensionNumber: "${number}", secret: "s3cur3p@ss-${number}" }) { id } }`);
      extensions.push({ tenantId: Number(tenant.id), domain, number, contact: `sip:${number}@198.51.100.${1 + (e % 250)}:5060;ob`, lastAt: 0 });
    }
  }

  const redis = new Redis(redisUrl);
  const listener = new Redis(redisUrl);
  let step: Step | undefined;
  await listener.subscribe(`${prefix}pbx:topic:all.registrations`, `${prefix}pbx:topic:all.calls`);
  listener.on("message", (channel: string, message: string) => {
    if (!step) return;
    const now = Date.now();
    const payload = JSON.parse(message) as { type: string; tenantId: number; occurredAt: string; extension?: { extensionNumber: string }; call?: { callId: string } };
    if (channel.endsWith("registrations")) step.observe(registrationKey(payload.tenantId, payload.extension!.extensionNumber, payload.occurredAt), now);
    else step.observe(callKey(payload.call!.callId, payload.type), now);
  });

  const lines: string[] = [
    `ingest bench: ${tenantCount} tenants × ${extensionsPerTenant} extensions, ${duration} s per step, ~60 % registrations / 40 % call legs (start, answer, end)`,
    `latency: XADD or POST → the change's subscription event (after commit)`,
    `sent/s, committed/s: over the step, its legs' last events included; late: not committed within ${DRAIN_MS / 1000} s of the step's end`,
    "",
    "path   | offered/s | sent/s | committed/s | events  | committed | late | p50 ms | p99 ms | backlog at stop",
    "------ | --------: | -----: | ----------: | ------: | --------: | ---: | -----: | -----: | --------------:",
  ];
  process.stdout.write(lines.join("\n") + "\n");
  let legSeq = 0;
  let nextExtension = 0;
  let postErrors = 0;

  for (const via of paths) {
    for (const rate of rates) {
      const current = (step = new Step());
      /** Call-leg events not yet due: [due time, event, key]. */
      const scheduled: Array<[number, Event, string]> = [];
      const outbox: Array<[Event, string]> = [];
      const registration = (now: number): [Event, string] => {
        const ext = extensions[nextExtension++ % extensions.length];
        // Each extension's occurred_at strictly increases, so no refresh is stale.
        ext.lastAt = Math.max(now, ext.lastAt + 1);
        const at = new Date(ext.lastAt).toISOString();
        const event = { type: "registration", action: "register", domain: ext.domain, extension: ext.number, contact: ext.contact, user_agent: "Yealink SIP-T54W 96.86.0.100", source_address: "198.51.100.7:5060", transport: "udp", expires: EXPIRES, occurred_at: at };
        return [event, registrationKey(ext.tenantId, ext.number, at)];
      };
      const startLeg = (now: number): [Event, string] => {
        const ext = extensions[Math.floor(Math.random() * extensions.length)];
        const leg: Leg = { callId: `bench-${run}-${++legSeq}`, extension: ext };
        current.legIds.push(leg.callId);
        const base = { type: "call", call_id: leg.callId, linked_id: leg.callId, domain: ext.domain, extension: ext.number };
        scheduled.push([now + 500, { ...base, action: "answer", occurred_at: new Date(now + 500).toISOString() }, callKey(leg.callId, "ANSWERED")]);
        scheduled.push([now + 2000, { ...base, action: "end", disposition: "answered", hangup_cause: "NORMAL_CLEARING", occurred_at: new Date(now + 2000).toISOString() }, callKey(leg.callId, "ENDED")]);
        current.legsEnded++;
        return [{ ...base, action: "start", direction: "inbound", caller_number: "+15550001111", callee_number: ext.number, occurred_at: new Date(now).toISOString() }, callKey(leg.callId, "STARTED")];
      };

      const started = Date.now();
      const stopAt = started + duration * 1000;
      let generated = 0;
      let callSlots = 0;
      let lastPost = started;
      // POST lanes, as engine connections: each posts its events in order and waits for the answer
      // before the next array, and an extension always uses the same lane, so its events stay in order.
      const lanes = Array.from({ length: postLanes }, () => ({ queue: [] as Array<[Event, string]>, busy: undefined as Promise<void> | undefined }));
      const laneOf = (event: Event) => Number(event.extension) % postLanes;
      const post = (lane: (typeof lanes)[number]) => {
        if (lane.busy || lane.queue.length === 0) return;
        const batch = lane.queue.splice(0, 1000);
        const now = Date.now();
        for (const [, key] of batch) current.sent.set(key, now);
        current.lastSentAt = now;
        lane.busy = request("/api/events", JSON.stringify(batch.map(([event]) => event))).then(
          ({ status, text }) => {
            if (status !== 200) {
              postErrors++;
              if (postErrors < 5) process.stderr.write(`POST ${status}: ${text.slice(0, 300)}\n`);
            }
          },
          () => void postErrors++,
        );
        void lane.busy.finally(() => (lane.busy = undefined));
      };
      const flush = (now: number) => {
        const batch = outbox.splice(0);
        if (via === "stream") {
          if (batch.length === 0) return;
          for (const [, key] of batch) current.sent.set(key, now);
          current.lastSentAt = now;
          const multi = redis.pipeline();
          for (const [event] of batch) multi.xadd(`${prefix}pbx:events`, "*", "event", JSON.stringify(event));
          void multi.exec();
        } else {
          for (const item of batch) lanes[laneOf(item[0])].queue.push(item);
          for (const lane of lanes) post(lane);
        }
      };
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          const now = Date.now();
          // Legs already started are answered and ended even after sending stops: the same legs, the same events.
          while (scheduled.length && scheduled[0][0] <= now) {
            const [, event, key] = scheduled.shift()!;
            outbox.push([event, key]);
          }
          if (now < stopAt) {
            // Of every five event slots three are registrations and two call events; every third call
            // slot starts a leg, whose answer and end fill the other two when they come due.
            const due = Math.floor(((now - started) / 1000) * rate);
            for (; generated < due; generated++) {
              if (generated % 5 < 3) outbox.push(registration(now));
              else if (callSlots++ % 3 === 0) outbox.push(startLeg(now));
            }
          }
          if (via === "stream" || now - lastPost >= postIntervalMs || (now >= stopAt && scheduled.length === 0)) {
            flush(now);
            lastPost = now;
          }
          if (now >= stopAt && scheduled.length === 0 && outbox.length === 0 && lanes.every((l) => l.queue.length === 0)) {
            clearInterval(timer);
            resolve();
          }
        }, 10);
      });
      const backlogAtStop = current.sent.size;
      const events = current.seen + current.sent.size;
      const drainUntil = Date.now() + DRAIN_MS;
      while (current.sent.size > 0 && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
      await Promise.all(lanes.map((l) => l.busy));
      step = undefined;
      const delays = current.delays.sort((a, b) => a - b);
      const pct = (p: number) => (delays.length ? delays[Math.min(delays.length - 1, Math.floor(delays.length * p))] : NaN);
      // Sent and committed per second over the step (a step's legs end two seconds after its last start).
      const sentRate = events / Math.max(0.001, (current.lastSentAt - started) / 1000);
      const committedRate = current.seen / Math.max(0.001, (Math.max(current.lastCommitAt, current.lastSentAt) - started) / 1000);
      // The database itself: every ended leg has its CDR and no leg stays open.
      const [{ cdrs, open }] = (
        await db.query(
          `SELECT (SELECT count(*)::int FROM ${schema}.cdr WHERE call_id = ANY($1)) AS cdrs,
                  (SELECT count(*)::int FROM ${schema}.active_call WHERE call_id = ANY($1)) AS open`,
          [current.legIds],
        )
      ).rows as Array<{ cdrs: number; open: number }>;
      const lines = [
        `${via.padEnd(6)} | ${String(rate).padStart(9)} | ${sentRate.toFixed(0).padStart(6)} | ${committedRate.toFixed(0).padStart(11)} | ${String(events).padStart(7)} | ${String(current.seen).padStart(9)} | ${String(current.sent.size).padStart(4)} | ${String(pct(0.5)).padStart(6)} | ${String(pct(0.99)).padStart(6)} | ${String(backlogAtStop).padStart(15)}`,
      ];
      if (cdrs !== current.legsEnded || open !== 0) lines.push(`  database: ${cdrs} CDRs for ${current.legsEnded} ended legs, ${open} legs left open`);
      process.stdout.write(lines.join("\n") + "\n");
    }
  }

  // Every extension's device carries its last registration: none was lost or applied out of order.
  const { rows } = await db.query(
    `SELECT t.sip_domain AS domain, e.extension_number AS number, (extract(epoch FROM d.expires_at) * 1000)::bigint AS expires
       FROM ${schema}.device d JOIN ${schema}.extension e ON e.id = d.extension_id JOIN ${schema}.tenant t ON t.id = e.tenant_id`,
  );
  const expiresOf = new Map(rows.map((r: { domain: string; number: string; expires: string }) => [`${r.domain}|${r.number}`, Number(r.expires)]));
  const stale = extensions.filter((e) => e.lastAt > 0 && expiresOf.get(`${e.domain}|${e.number}`) !== e.lastAt + EXPIRES * 1000).length;
  const pending = paths.includes("stream") ? ((await redis.xpending(`${prefix}pbx:events`, "pbx-api")) as [number])[0] : 0;
  process.stdout.write(
    [
      "",
      `database: ${extensions.filter((e) => e.lastAt > 0).length - stale} of ${extensions.filter((e) => e.lastAt > 0).length} devices carry their last registration; ${pending} stream entries pending; ${postErrors} POSTs not answered 200`,
      "",
    ].join("\n"),
  );

  agent.destroy();
  listener.disconnect();
  await redis.del(`${prefix}pbx:events`);
  await redis.quit();
  await bench.stop();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
