/**
 * Read benchmark: requests per second and latency percentiles at a fixed concurrency.
 *
 *   npm run bench -- [--url http://host:port] [--key KEY] [--concurrency 16] [--duration 15] [--warmup 3] [--scenarios a,b]
 *
 * With --url (or BENCH_URL) it measures that server with --key (or BENCH_KEY). Without a URL it starts
 * the built server (dist/src/main.js) itself against DATABASE_URL on a free port, logging at warn, and
 * stops it afterwards; --key then names a key the database already knows (the one `npm run seed`
 * printed), or it is left out and a random ADMIN_API_KEY is given to the child.
 *
 * Only node's http module with a keep-alive agent: no client library between the numbers and the server.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";

interface Options {
  url: string | undefined;
  key: string | undefined;
  concurrency: number;
  duration: number;
  warmup: number;
  scenarios: string[] | undefined;
}

interface Scenario {
  name: string;
  what: string;
  /** Builds the next request; called once per request so every request can pick other ids. */
  next(): { method: "GET" | "POST"; path: string; body?: string };
}

interface Result {
  scenario: Scenario;
  requests: number;
  errors: number;
  firstError: string | undefined;
  seconds: number;
  latenciesMs: Float64Array;
  /** CPU time per request of the server process and of the database's backends, when measurable. */
  serverCpuMs: number | undefined;
  databaseCpuMs: number | undefined;
}

/**
 * CPU time (ns) used so far by each of some processes, from Linux's /proc/<pid>/schedstat; processes
 * that have exited are left out. Wall-clock rates on a shared machine swing with its load; CPU per
 * request does much less.
 */
function cpuNs(pids: number[]): Map<number, number> {
  const used = new Map<number, number>();
  for (const pid of pids) {
    try {
      used.set(pid, Number(fs.readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]));
    } catch {
      // Gone (a pooled connection closed) or not Linux.
    }
  }
  return used;
}

/** CPU (ns) used between two readings; processes that appeared in between count from their start. */
function cpuBetween(before: Map<number, number>, after: Map<number, number>): number | undefined {
  if (after.size === 0) return undefined;
  let sum = 0;
  for (const [pid, ns] of after) sum += ns - (before.get(pid) ?? 0);
  return sum;
}

/** The PostgreSQL backends serving a database, by their process titles ("postgres: [cluster: ]user db host ..."). */
function databaseBackends(databaseUrl: string | undefined): number[] {
  if (!databaseUrl) return [];
  const database = new URL(databaseUrl).pathname.slice(1);
  try {
    return fs
      .readdirSync("/proc")
      .filter((entry) => /^\d+$/.test(entry))
      .filter((pid) => {
        try {
          return new RegExp(`^postgres: (\\S+: )?\\S+ ${database} `).test(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8"));
        } catch {
          return false;
        }
      })
      .map(Number);
  } catch {
    return [];
  }
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    url: process.env.BENCH_URL || undefined,
    key: process.env.BENCH_KEY || undefined,
    concurrency: 16,
    duration: 15,
    warmup: 3,
    scenarios: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const match = /^--([a-z]+)(?:=(.*))?$/.exec(argv[i]);
    if (!match) throw new Error(`unknown argument "${argv[i]}"`);
    const value = match[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${match[1]} needs a value`);
    const positive = () => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--${match[1]} must be a positive integer`);
      return n;
    };
    switch (match[1]) {
      case "url":
        options.url = value.replace(/\/+$/, "");
        break;
      case "key":
        options.key = value;
        break;
      case "concurrency":
        options.concurrency = positive();
        break;
      case "duration":
        options.duration = positive();
        break;
      case "warmup":
        options.warmup = Number(value) === 0 ? 0 : positive();
        break;
      case "scenarios":
        options.scenarios = value.split(",").map((s) => s.trim());
        break;
      default:
        throw new Error(`unknown argument "--${match[1]}"`);
    }
  }
  return options;
}

class Client {
  private readonly agent: http.Agent;
  private readonly base: URL;

  constructor(
    url: string,
    private readonly key: string,
    sockets: number,
  ) {
    this.base = new URL(url);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  request(method: string, pathname: string, body?: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent: this.agent,
          host: this.base.hostname,
          port: this.base.port,
          method,
          path: pathname,
          headers: {
            authorization: `Bearer ${this.key}`,
            ...(body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  async graphql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const { status, text } = await this.request("POST", "/graphql", JSON.stringify({ query, variables }));
    const json = JSON.parse(text) as { data?: T; errors?: unknown[] };
    if (status !== 200 || json.errors) throw new Error(`GraphQL ${status}: ${text.slice(0, 300)}`);
    return json.data as T;
  }

  close(): void {
    this.agent.destroy();
  }
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];

/** Starts dist/src/main.js on a free port and resolves with its URL once it listens. */
async function startServer(key: string): Promise<{ url: string; child: ChildProcess }> {
  if (!process.env.DATABASE_URL) throw new Error("give --url (or BENCH_URL), or set DATABASE_URL so the bench can start a server itself");
  const child = spawn(process.execPath, [path.resolve(__dirname, "../../src/main.js")], {
    // As `npm start` runs it: NODE_ENV=production unless told otherwise.
    env: { ...process.env, NODE_ENV: process.env.NODE_ENV ?? "production", PORT: "0", HOST: "127.0.0.1", ADMIN_API_KEY: key, LOG_LEVEL: process.env.LOG_LEVEL ?? "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let output = "";
    const timeout = setTimeout(() => reject(new Error("the server did not start within 60 s")), 60_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timeout);
        resolve(match[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timeout);
      reject(new Error(`the server exited with ${code} before listening`));
    });
  });
  child.stdout!.resume();
  return { url, child };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

interface Discovery {
  tenants: Array<{ id: string; extensionIds: string[] }>;
  extensionFields: Set<string>;
  rest: boolean;
}

/** Which ids exist and which parts of the graph this server has, so the scenarios ask real questions. */
async function discover(client: Client): Promise<Discovery> {
  const { tenants } = await client.graphql<{ tenants: Array<{ id: string }> }>(`{ tenants { id } }`);
  const sample = tenants.slice(0, 50);
  const withExtensions = await Promise.all(
    sample.map(async ({ id }) => {
      const { tenant } = await client.graphql<{ tenant: { extensions: { nodes: Array<{ id: string }> } } }>(
        `query($id: ID!) { tenant(id: $id) { extensions(first: 100) { nodes { id } } } }`,
        { id },
      );
      return { id, extensionIds: tenant.extensions.nodes.map((n) => n.id) };
    }),
  );
  const { __type } = await client.graphql<{ __type: { fields: Array<{ name: string }> } }>(`{ __type(name: "Extension") { fields { name } } }`);
  const rest = (await client.request("GET", "/api/extensions?per_page=1")).status === 200;
  return { tenants: withExtensions.filter((t) => t.extensionIds.length > 0), extensionFields: new Set(__type.fields.map((f) => f.name)), rest };
}

function scenarios(found: Discovery): Scenario[] {
  const has = (field: string) => found.extensionFields.has(field);
  const nested = [
    "id extensionNumber displayName status",
    has("devices") ? "devices { id contactUri transport registered }" : "",
    has("queueMemberships") ? "queueMemberships { penalty paused queue { name } }" : "",
  ]
    .filter(Boolean)
    .join(" ");
  const nestedQuery = `query Nested($id: ID!) { tenant(id: $id) { id name extensions(first: 50) { nodes { ${nested} } } } }`;
  const cdrQuery = `query CdrsByExtension($tenantId: ID!, $filter: CdrFilter) {
    cdrs(tenantId: $tenantId, filter: $filter, first: 50) {
      pageInfo { hasNextPage endCursor }
      nodes { id startedAt endedAt direction disposition callerNumber calleeNumber durationSeconds billableSeconds extensionNumber }
    } }`;
  const day = 24 * 60 * 60 * 1000;
  const list: Scenario[] = [
    {
      name: "nested",
      what: `tenant → extensions(first:50) → ${[has("devices") && "devices", has("queueMemberships") && "queueMemberships { queue { name } }"].filter(Boolean).join(", ") || "(no devices/queue fields on this server)"}`,
      next: () => ({ method: "POST", path: "/graphql", body: JSON.stringify({ query: nestedQuery, variables: { id: pick(found.tenants).id } }) }),
    },
    {
      name: "cdrs-by-extension",
      what: "cdrs(tenantId, filter: {extensionId, from, to: a 30-day window}, first:50)",
      next: () => {
        const tenant = pick(found.tenants);
        const to = Date.now() - Math.floor(Math.random() * 60) * day;
        return {
          method: "POST",
          path: "/graphql",
          body: JSON.stringify({
            query: cdrQuery,
            variables: {
              tenantId: tenant.id,
              filter: { extensionId: pick(tenant.extensionIds), from: new Date(to - 30 * day).toISOString(), to: new Date(to).toISOString() },
            },
          }),
        };
      },
    },
    {
      name: "cdrs-by-tenant",
      what: "cdrs(tenantId, filter: {from, to: a 7-day window}, first:50), newest first",
      next: () => {
        const to = Date.now() - Math.floor(Math.random() * 80) * day;
        return {
          method: "POST",
          path: "/graphql",
          body: JSON.stringify({
            query: cdrQuery,
            variables: { tenantId: pick(found.tenants).id, filter: { from: new Date(to - 7 * day).toISOString(), to: new Date(to).toISOString() } },
          }),
        };
      },
    },
  ];
  if (found.rest) {
    list.push({
      name: "rest-extensions",
      what: "GET /api/extensions?tenant_id=…&per_page=50&page=1..4",
      next: () => ({ method: "GET", path: `/api/extensions?tenant_id=${pick(found.tenants).id}&per_page=50&page=${1 + Math.floor(Math.random() * 4)}` }),
    });
  }
  return list;
}

async function run(client: Client, scenario: Scenario, concurrency: number, seconds: number, serverPid: number | undefined): Promise<Result> {
  const servers = serverPid === undefined ? [] : [serverPid];
  const backends = () => (serverPid === undefined ? [] : databaseBackends(process.env.DATABASE_URL));
  const serverBefore = cpuNs(servers);
  const databaseBefore = cpuNs(backends());
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(seconds) * 1_000_000_000n;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (process.hrtime.bigint() < deadline) {
        const { method, path: pathname, body } = scenario.next();
        const t0 = process.hrtime.bigint();
        try {
          const { status, text } = await client.request(method, pathname, body);
          // Cheaper than parsing every answer: no data this benchmark reads contains that key.
          if (status !== 200 || text.includes('"errors":')) {
            errors++;
            firstError ??= `${status} ${text.slice(0, 200)}`;
          }
        } catch (error) {
          errors++;
          firstError ??= String(error);
        }
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const perRequest = (ns: number | undefined) => (ns === undefined || latencies.length === 0 ? undefined : ns / 1e6 / latencies.length);
  return {
    scenario,
    requests: latencies.length,
    errors,
    firstError,
    seconds: elapsed,
    latenciesMs: Float64Array.from(latencies).sort(),
    serverCpuMs: perRequest(cpuBetween(serverBefore, cpuNs(servers))),
    databaseCpuMs: perRequest(cpuBetween(databaseBefore, cpuNs(backends()))),
  };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function table(results: Result[], concurrency: number): string {
  const header = ["scenario", "conc", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "server CPU ms/req", "db CPU ms/req"];
  const rows = results.map((r) => [
    r.scenario.name,
    String(concurrency),
    String(r.requests),
    (r.requests / r.seconds).toFixed(0),
    percentile(r.latenciesMs, 50).toFixed(1),
    percentile(r.latenciesMs, 90).toFixed(1),
    percentile(r.latenciesMs, 99).toFixed(1),
    r.latenciesMs[r.latenciesMs.length - 1]?.toFixed(1) ?? "-",
    String(r.errors),
    r.serverCpuMs?.toFixed(2) ?? "-",
    r.databaseCpuMs?.toFixed(2) ?? "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => "| " + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ") + " |";
  return [line(header), "|" + widths.map((w, i) => (i === 0 ? ":" : "") + "-".repeat(w + 1) + (i === 0 ? "" : ":")).join("|") + "|", ...rows.map(line)].join("\n");
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  let child: ChildProcess | undefined;
  let url = options.url;
  let key = options.key;
  if (!url) {
    const childAdminKey = `bench-${randomBytes(16).toString("hex")}`;
    key ??= childAdminKey;
    ({ url, child } = await startServer(childAdminKey));
  }
  if (!key) throw new Error("give the API key to use with --key (or BENCH_KEY)");
  const client = new Client(url, key, options.concurrency);
  try {
    const found = await discover(client);
    if (found.tenants.length === 0) throw new Error("no tenant with extensions is visible to this key: run `npm run seed` first");
    const selected = scenarios(found).filter((s) => !options.scenarios || options.scenarios.includes(s.name));
    const load = os.loadavg().map((l) => l.toFixed(2)).join(" ");
    process.stdout.write(
      `Benchmark of ${url}${child ? " (started by the bench, LOG_LEVEL=warn)" : ""}: ${found.tenants.length} tenants sampled, ` +
        `concurrency ${options.concurrency}, ${options.warmup} s warm-up + ${options.duration} s per scenario; ` +
        `node ${process.version}, ${os.cpus().length} CPUs, load average ${load}\n`,
    );
    if (!found.rest) process.stdout.write("GET /api/extensions does not answer 200 here: the REST scenario is left out.\n");
    const results: Result[] = [];
    for (const scenario of selected) {
      if (options.warmup > 0) await run(client, scenario, options.concurrency, options.warmup, child?.pid);
      const result = await run(client, scenario, options.concurrency, options.duration, child?.pid);
      results.push(result);
      process.stdout.write(`  ${scenario.name}: ${scenario.what}${result.firstError ? `\n    first error: ${result.firstError}` : ""}\n`);
    }
    process.stdout.write("\n" + table(results, options.concurrency) + "\n");
    if (results.some((r) => r.errors > 0)) process.exitCode = 1;
  } finally {
    client.close();
    if (child) await stopServer(child);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
