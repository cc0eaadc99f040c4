/**
 * Ingestion benchmark: telephony events applied per second, by POST /api/events and by the Redis stream.
 *
 *   npm run bench:ingest -- [--extensions 50] [--batch 100] [--concurrency 4] [--duration 10] [--stream 5000]
 *
 * Starts the built server (dist/src/main.js) with DATABASE_URL and REDIS_URL (both required) on its
 * own schema and Redis prefix, creates one tenant with --extensions extensions, then
 * 1. posts arrays of --batch call events (start, answer, end of a fresh call on a random extension)
 *    from --concurrency clients for --duration seconds and prints the events applied per second;
 * 2. XADDs --stream call events onto the stream and prints how fast the server works them off.
 * Every event goes the whole way: validation, its transaction, the event log, the relay.
 */
import { Redis } from "ioredis";
import { arg, startBenchServer } from "./bench-server";

const extensions = arg("extensions", 50);
const batch = arg("batch", 100);
const concurrency = arg("concurrency", 4);
const duration = arg("duration", 10);
const streamEvents = arg("stream", 5000);

let callCounter = 0;
/** A whole call (start, answer, end) on a random extension: three events that each change state. */
function callEvents(domain: string): object[] {
  const callId = `bench-${process.pid}-${++callCounter}`;
  const extension = String(1000 + Math.floor(Math.random() * extensions));
  const base = { type: "call", call_id: callId, domain, extension, direction: "inbound", caller_number: "5550100" };
  return [{ ...base, action: "start" }, { ...base, action: "answer" }, { ...base, action: "end", disposition: "answered" }];
}

async function streamApplied(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^ingest_events_total\{source="stream",outcome="[a-z]+"\} (\d+)/gm)) sum += Number(m[1]);
  return sum;
}

async function main(): Promise<void> {
  const server = await startBenchServer("ingest");
  const { base, gql, prefix } = server;
  const domain = "bench-ingest.test";
  const tenant = (await gql(`mutation { createTenant(input: { name: "B", slug: "bench-ingest", sipDomain: "${domain}", maxExtensions: ${extensions} }) { id } }`)).createTenant;
  for (let i = 0; i < extensions; i++) {
    await gql(`mutation { createExtension(input: { tenantId: ${tenant.id}, extensionNumber: "${1000 + i}", secret: "s3cur3p@ss" }) { id } }`);
  }
  const key = (await gql(`mutation { createApiKey(input: { name: "engine", role: INGEST }) { key } }`)).createApiKey.key;

  const post = async (events: object[]) => {
    const res = await fetch(`${base}/api/events`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: JSON.stringify(events) });
    if (res.status !== 200) throw new Error(`POST /api/events answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    await res.arrayBuffer();
  };
  const makeBatch = () => Array.from({ length: Math.ceil(batch / 3) }, () => callEvents(domain)).flat();
  // Warm-up: JIT, connection pool, plans.
  await post(makeBatch());
  let applied = 0;
  const started = Date.now();
  const deadline = started + duration * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        const events = makeBatch();
        await post(events);
        applied += events.length;
      }
    }),
  );
  const httpRate = applied / ((Date.now() - started) / 1000);

  const redis = new Redis(server.redisUrl);
  const before = await streamApplied(base);
  const entries: string[][] = [];
  while (entries.length * 3 < streamEvents) entries.push(callEvents(domain).map((e) => JSON.stringify(e)));
  const streamStarted = Date.now();
  for (let i = 0; i < entries.length; i += 100) {
    const pipeline = redis.pipeline();
    for (const call of entries.slice(i, i + 100)) for (const event of call) pipeline.xadd(`${prefix}pbx:events`, "*", "event", event);
    await pipeline.exec();
  }
  const total = entries.length * 3;
  while ((await streamApplied(base)) - before < total) await new Promise((r) => setTimeout(r, 50));
  const streamRate = total / ((Date.now() - streamStarted) / 1000);

  process.stdout.write(
    [
      `POST /api/events: ${applied} events in ${duration}s from ${concurrency} clients, arrays of ${makeBatch().length}: ${httpRate.toFixed(0)} events/s`,
      `Redis stream: ${total} events worked off at ${streamRate.toFixed(0)} events/s`,
      "",
    ].join("\n"),
  );
  await redis.del(`${prefix}pbx:events`);
  await redis.quit();
  await server.stop();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
