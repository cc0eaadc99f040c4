/**
 * SIP engine throughput: SIPp REGISTERs with digest authentication at rising rates through the
 * shipped Kamailio (deploy/kamailio/kamailio.cfg) into the product (Redis stream → consumer group
 * pbx-api → devices), measured end to end.
 *
 *   DATABASE_URL=… REDIS_URL=… npm run bench:engine -- [--rates 250,500,1000] [--duration 30]
 *     [--extensions 2000] [--tenants 10] [--children 4] [--shm 256 (Kamailio -m, MB)] [--cpu-prof DIR (the server's CPU profile)]
 *
 * For each rate it runs two rounds, each on a fresh Kamailio: first Kamailio alone (auth against
 * PostgreSQL and XADD to a stream no consumer reads, the product idle: the ceiling), then the same
 * load into the product. It prints the registrations per second Kamailio answered with 200 OK in
 * each (first to last XADD of the round) and their ratio, how many reached the product (a REGISTERED event on the
 * registrationEvents subscription; must be all), and the delay from the 200 OK to that event
 * (p50/p99/max). Kamailio adds the stream entry right after it sends the 200 OK; the entry's id is
 * Redis's clock in ms, the event's arrival the bench's clock: both are this host's clock.
 *
 * The server runs as its own process (dist/src/main.js) on a schema of its own, with a Redis prefix of
 * its own; everything it made (schema, role, stream) is removed at the end.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createClient } from "graphql-ws";
import { Redis } from "ioredis";
import pg from "pg";
import WebSocket from "ws";
import { createEngineRole, freeTcpPort, sippRegister, sippUsers, startKamailio, stopProcess, waitFor } from "../support/sip";

interface Options {
  rates: number[];
  duration: number;
  extensions: number;
  tenants: number;
  children: number;
  /** Kamailio's shared memory in MB (-m): Kamailio's own default, 64, runs out at about 700 REGISTER/s here. */
  shm: number;
  /** A directory: the server runs with --cpu-prof and writes its profile there when it stops. */
  cpuProf?: string;
}

function options(): Options {
  const { values } = parseArgs({
    strict: true,
    options: {
      rates: { type: "string", default: "250,500,1000" },
      duration: { type: "string", default: "30" },
      extensions: { type: "string", default: "2000" },
      tenants: { type: "string", default: "10" },
      children: { type: "string", default: "4" },
      shm: { type: "string", default: "256" },
      "cpu-prof": { type: "string" },
    },
  });
  const positive = (name: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number`);
    return n;
  };
  return {
    rates: values.rates.split(",").map((r) => positive("rates", r.trim())),
    duration: positive("duration", values.duration),
    extensions: positive("extensions", values.extensions),
    tenants: positive("tenants", values.tenants),
    children: positive("children", values.children),
    shm: positive("shm", values.shm),
    cpuProf: values["cpu-prof"],
  };
}

async function admin(databaseUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN);

async function main(): Promise<void> {
  const o = options();
  const databaseUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!databaseUrl || !redisUrl) throw new Error("set DATABASE_URL and REDIS_URL: the engine bench runs Kamailio against PostgreSQL and the Redis stream");
  const tag = randomBytes(4).toString("hex");
  const schema = `bench_engine_${tag}`;
  const prefix = `bench:${tag}:`;
  const streamKey = `${prefix}pbx:events`;
  const adminKey = `bench-admin-${randomBytes(12).toString("hex")}`;
  const redis = new Redis(redisUrl);
  const cleanups: Array<() => Promise<unknown>> = [];
  const say = (line: string) => process.stdout.write(`${line}\n`);

  try {
    await admin(databaseUrl, `CREATE SCHEMA ${schema}`);
    cleanups.push(() => admin(databaseUrl, `DROP SCHEMA ${schema} CASCADE`));
    cleanups.push(() => redis.del(streamKey));

    const port = await freeTcpPort();
    const server: ChildProcess = spawn(process.execPath, [...(o.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(o.cpuProf)}`] : []), path.resolve(__dirname, "../../src/main.js")], {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: "127.0.0.1",
        DATABASE_SCHEMA: schema,
        REDIS_PREFIX: prefix,
        ADMIN_API_KEY: adminKey,
        SECRET_ENCRYPTION_KEY: randomBytes(32).toString("hex"),
        LOG_LEVEL: "warn",
        NODE_ENV: "production",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    cleanups.push(() => stopProcess(server, 30_000));
    let serverOut = "";
    server.stdout!.on("data", (d: Buffer) => (serverOut += d.toString()));
    server.stderr!.on("data", (d: Buffer) => (serverOut += d.toString()));
    await waitFor("the server to listen", () => {
      if (server.exitCode !== null) throw new Error(`the server exited:\n${serverOut}`);
      return serverOut.includes("PBX control plane listening on") || undefined;
    }, 120_000, 100);
    const url = `http://127.0.0.1:${port}`;
    const gql = async <T>(query: string, variables: Record<string, unknown>): Promise<T> => {
      const res = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${adminKey}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { data: T; errors?: unknown };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data;
    };

    // Tenants and extensions, provisioned over GraphQL as an operator would.
    const started = Date.now();
    const users: Array<{ number: string; domain: string; secret: string }> = [];
    const perTenant = Math.ceil(o.extensions / o.tenants);
    for (let t = 0; t < o.tenants; t++) {
      const domain = `bench-${tag}-${t}.pbx.test`;
      const { createTenant } = await gql<{ createTenant: { id: string } }>(
        `mutation($input: CreateTenantInput!) { createTenant(input: $input) { id } }`,
        { input: { name: `Bench ${t}`, slug: `bench-${tag}-${t}`, sipDomain: domain, maxExtensions: perTenant } },
      );
      for (let i = 0; i < perTenant && users.length < o.extensions; i++) users.push({ number: String(10000 + i), domain, secret: `bench-${tag}-${t}-${i}` });
      const mine = users.filter((u) => u.domain === domain);
      for (let i = 0; i < mine.length; i += 16) {
        await Promise.all(
          mine.slice(i, i + 16).map((u) =>
            gql(`mutation($input: CreateExtensionInput!) { createExtension(input: $input) { id } }`, {
              input: { tenantId: createTenant.id, extensionNumber: u.number, secret: u.secret },
            }),
          ),
        );
      }
    }
    say(`provisioned ${o.tenants} tenants, ${users.length} extensions over GraphQL in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const role = await createEngineRole(databaseUrl, schema);
    cleanups.push(() => role.drop());

    // The product's REGISTERED events, as a wallboard receives them; arrival time by device contact.
    const arrivals = new Map<string, number>();
    let refreshed = 0;
    let otherEvents = 0;
    const ws = createClient({ url: `${url.replace(/^http/, "ws")}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${adminKey}` } });
    cleanups.push(async () => ws.dispose());
    await new Promise<void>((resolve, reject) => {
      ws.on("connected", () => resolve());
      ws.subscribe<{ registrationEvents: { type: string; device: { contactUri: string } } }>(
        { query: `subscription { registrationEvents { type device { contactUri } } }` },
        {
          next: ({ data }) => {
            if (!data) return;
            const contact = data.registrationEvents.device.contactUri;
            if (data.registrationEvents.type === "REFRESHED") refreshed++;
            else if (data.registrationEvents.type !== "REGISTERED" || arrivals.has(contact)) otherEvents++;
            else arrivals.set(contact, Date.now());
          },
          error: reject,
          complete: () => undefined,
        },
      );
    });
    // graphql-ws has connected; give the server a moment to attach the subscription to Redis pub/sub.
    await waitFor("the subscription to attach", async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return Number(/^subscriptions_active (\d+)/m.exec(text)?.[1] ?? 0) > 0 || undefined;
    });

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-bench-engine-"));
    cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const usersFile = path.join(dir, "users.csv");
    fs.writeFileSync(usersFile, sippUsers(users));

    /**
     * One round: a fresh Kamailio (no bindings of earlier rounds) writing to `key`, SIPp at `rate`.
     * Answers the registrations Kamailio added to the stream (first entry per contact, by entry time),
     * SIPp's counts, and how many contacts had more than one register entry (retransmissions that
     * reached save()).
     */
    const round = async (rate: number, key: string) => {
      const kamailio = await startKamailio({ databaseUrl: role.url, redisUrl, streamKey: key, defines: [`CHILDREN=${o.children}`], shmMb: o.shm });
      try {
        const [last] = (await redis.xrevrange(key, "+", "-", "COUNT", 1)) as Array<[string, string[]]>;
        const from = last ? last[0] : "0-0";
        const result = await sippRegister(kamailio.port, usersFile, rate * o.duration, rate);
        const entries = (await redis.xrange(key, `(${from}`, "+")) as Array<[string, string[]]>;
        const added = new Map<string, number>();
        let repeated = 0;
        for (const [id, fields] of entries) {
          const event = JSON.parse(fields[1]) as { type: string; action: string; contact: string };
          if (event.type !== "registration" || event.action !== "register") continue;
          if (added.has(event.contact)) repeated++;
          else added.set(event.contact, Number(id.split("-")[0]));
        }
        const times = [...added.values()];
        const span = times.length > 1 ? (Math.max(...times) - Math.min(...times)) / 1000 : NaN;
        const errors = kamailio.output().split("\n").filter((l) => /\b(ERROR|CRITICAL):/.test(l));
        return { added, perSecond: added.size / span, result, repeated, errors };
      } finally {
        await kamailio.stop();
      }
    };
    const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ");

    say("");
    say(`SIPp REGISTER (digest) → Kamailio (${o.children} workers, -m ${o.shm}) → stream → pbx-api → devices; ${o.duration} s per rate; host: ${os.cpus().length} cores, load ${load()}`);
    say("Each rate runs twice on a fresh Kamailio: alone (its stream read by no one: auth + XADD only, the product idle), then into the product.");
    say("| target/s | alone: 200 OK/s | product: 200 OK/s | ratio | answered 200 | failed | reached product | p50 ms | p99 ms | max ms | repeated entries | load |");
    say("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    const aloneKey = `${prefix}alone`;
    cleanups.push(() => redis.del(aloneKey));
    for (const rate of o.rates) {
      const alone = await round(rate, aloneKey);
      await redis.del(aloneKey);
      const refreshedBefore = refreshed;
      const fed = await round(rate, streamKey);
      // Everything Kamailio answered must reach the product; wait (on the condition) until it has, or stops progressing.
      let seen = -1;
      let still = 0;
      for (;;) {
        const reached = [...fed.added.keys()].filter((c) => arrivals.has(c)).length;
        if (reached === fed.added.size) break;
        still = reached === seen ? still + 1 : 0;
        seen = reached;
        if (still > 100) break; // nothing new for 10 s
        await new Promise((r) => setTimeout(r, 100));
      }
      const delays = [...fed.added].filter(([c]) => arrivals.has(c)).map(([c, at]) => arrivals.get(c)! - at).sort((a, b) => a - b);
      const reached = delays.length;
      say(
        `| ${rate} | ${alone.perSecond.toFixed(0)} (${alone.result.failed} failed) | ${fed.perSecond.toFixed(0)} | ${(fed.perSecond / alone.perSecond).toFixed(2)} | ` +
          `${fed.result.successful} | ${fed.result.failed} | ${reached} of ${fed.added.size}${reached === fed.added.size ? "" : " (LOST)"} | ` +
          `${percentile(delays, 50)} | ${percentile(delays, 99)} | ${delays.at(-1)} | ${fed.repeated} (alone ${alone.repeated}), REFRESHED ${refreshed - refreshedBefore} | ${load()} |`,
      );
      for (const [what, errors] of [["alone", alone.errors], ["product", fed.errors]] as const) {
        if (!errors.length) continue;
        // the distinct kinds (the text after the module and function), with a count each
        const kinds = new Map<string, number>();
        for (const line of errors) {
          const kind = line.replace(/^.*?(ERROR|CRITICAL):/, "$1:").replace(/\d+/g, "N").slice(0, 160);
          kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        }
        say(`  Kamailio (${what}) logged ${errors.length} errors: ${[...kinds].map(([k, n]) => `${n}× ${k}`).join("; ")}`);
      }
    }
    if (otherEvents) say(`(${otherEvents} other registration events: a contact registered twice, or unregistered)`);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => process.stderr.write(`cleanup: ${String(error)}\n`));
    redis.disconnect();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
