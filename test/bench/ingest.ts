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
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import path from "node:path";
import { Redis } from "ioredis";
import pg from "pg";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const extensions = arg("extensions", 50);
const batch = arg("batch", 100);
const concurrency = arg("concurrency", 4);
const duration = arg("duration", 10);
const streamEvents = arg("stream", 5000);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

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
  const databaseUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!databaseUrl || !redisUrl) throw new Error("bench:ingest needs DATABASE_URL and REDIS_URL");
  const schema = `bench_ingest_${randomBytes(3).toString("hex")}`;
  const prefix = `bench:${randomBytes(3).toString("hex")}:`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const port = await freePort();
  const adminKey = `bench-${randomBytes(16).toString("hex")}`;
  const server = spawn(process.execPath, [path.resolve(__dirname, "../../src/main.js")], {
    env: { ...process.env, NODE_ENV: process.env.NODE_ENV ?? "production", PORT: String(port), HOST: "127.0.0.1", DATABASE_SCHEMA: schema, REDIS_PREFIX: prefix, ADMIN_API_KEY: adminKey, LOG_LEVEL: "warn", SECRET_ENCRYPTION_KEY: randomBytes(32).toString("hex") },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    server.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("listening on")) resolve();
    });
    server.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  const gql = async (query: string) => {
    const res = await fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${adminKey}` }, body: JSON.stringify({ query }) });
    const body = (await res.json()) as { data: any; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
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

  const redis = new Redis(redisUrl);
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
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
