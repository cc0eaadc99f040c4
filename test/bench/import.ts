/**
 * Bulk import benchmark: 10,000 extensions in one CSV, as `POST /api/extensions/import` receives it.
 *
 *   npm run bench:import [-- --rows 10000]
 *
 * Starts the server in this process (the built code) on a free port against DATABASE_URL, in a fresh
 * schema that it drops afterwards (without DATABASE_URL: embedded PGlite in a temporary directory),
 * and prints, per step, the wall time and the peak growth of the process's heap while the step ran:
 * a dry run, the real run (one INSERT, one audit statement), the same file again with mode=upsert
 * (every row UNCHANGED: each secret is compared by its SHA-256 digest), an upsert that changes every row, and
 * the export. The same steps at a tenth of the rows show how memory scales: with the rows, not the file.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../../src/config/config";
import { createLogger } from "../../src/common/logger";
import { startServer, type RunningServer } from "../../src/server/app";

const rowsArg = process.argv.indexOf("--rows");
const ROWS = rowsArg > 0 ? Number(process.argv[rowsArg + 1]) : 10_000;
const SECRET = "bench-secret-1234";

function csv(rows: number, label: string): string {
  const lines = ["extension_number,display_name,email,secret,status,voicemail_enabled"];
  for (let i = 0; i < rows; i++) lines.push(`${100000 + i},"${label} ${i}, desk",user${i}@bench.example,${SECRET}-${i},active,${i % 2 === 0}`);
  return lines.join("\r\n") + "\r\n";
}

/**
 * Runs `work` while sampling heapUsed every 5 ms; answers the wall time, this process's CPU time (the
 * server's and the small client's: steadier than wall time on a loaded machine) and the peak heap growth.
 */
async function measure<T>(work: () => Promise<T>): Promise<{ value: T; ms: number; cpuMs: number; heapMiB: number }> {
  global.gc?.();
  const base = process.memoryUsage().heapUsed;
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5);
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  try {
    const value = await work();
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const used = process.cpuUsage(cpu);
    peak = Math.max(peak, process.memoryUsage().heapUsed);
    return { value, ms, cpuMs: (used.user + used.system) / 1000, heapMiB: (peak - base) / 2 ** 20 };
  } finally {
    clearInterval(sampler);
  }
}

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const schema = `bench_import_${randomBytes(4).toString("hex")}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-bench-import-"));
  const admin = databaseUrl ? new pg.Client({ connectionString: databaseUrl }) : null;
  await admin?.connect();
  await admin?.query(`CREATE SCHEMA ${schema}`);
  const key = `bench-${randomBytes(16).toString("hex")}`;
  const config = loadConfig({
    ...process.env,
    PORT: "0",
    HOST: "127.0.0.1",
    ADMIN_API_KEY: key,
    DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    ...(databaseUrl ? { DATABASE_SCHEMA: schema } : {}),
  });
  let server: RunningServer | undefined;
  try {
    server = await startServer(config, { log: createLogger("warn") });
    const base = server.url;
    const call = async (method: string, pathname: string, body?: string, type = "text/csv") => {
      const res = await fetch(base + pathname, { method, headers: { authorization: `Bearer ${key}`, "content-type": type }, body });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${method} ${pathname}: ${res.status} ${text.slice(0, 300)}`);
      return text;
    };
    const tenantOf = async (slug: string) => {
      const text = await call(
        "POST",
        "/graphql",
        JSON.stringify({
          query: `mutation($i: CreateTenantInput!) { createTenant(input: $i) { id } }`,
          variables: { i: { name: slug, slug, sipDomain: `${slug}.bench.example`, maxExtensions: ROWS } },
        }),
        "application/json",
      );
      return (JSON.parse(text) as { data: { createTenant: { id: string } } }).data.createTenant.id;
    };
    const summary = (text: string) => {
      const { data } = JSON.parse(text) as { data: Record<string, unknown> };
      return `created ${data.created}, updated ${data.updated}, unchanged ${data.unchanged}, failed ${data.failed}`;
    };

    process.stdout.write(
      `Bulk import on ${databaseUrl ? "PostgreSQL (DATABASE_URL)" : "embedded PGlite"}; node ${process.version}, ${os.cpus().length} CPUs, ` +
        `load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}\n\n`,
    );
    const table: string[][] = [["rows", "step", "ms", "rows/s", "node CPU ms", "peak heap growth MiB", "result"]];
    for (const rows of [Math.max(1, Math.round(ROWS / 10)), ROWS]) {
      const tenant = await tenantOf(`bench-${rows}-${randomBytes(3).toString("hex")}`);
      const file = csv(rows, "Desk");
      const changed = csv(rows, "Phone");
      const steps: Array<[string, () => Promise<string>]> = [
        ["dry run", async () => summary(await call("POST", `/api/extensions/import?tenant_id=${tenant}&dry_run=true`, file))],
        ["import (create)", async () => summary(await call("POST", `/api/extensions/import?tenant_id=${tenant}`, file))],
        ["same file, upsert", async () => summary(await call("POST", `/api/extensions/import?tenant_id=${tenant}&mode=upsert`, file))],
        ["every row changed, upsert", async () => summary(await call("POST", `/api/extensions/import?tenant_id=${tenant}&mode=upsert`, changed))],
        ["export", async () => `${(await call("GET", `/api/extensions/export?tenant_id=${tenant}`)).split("\r\n").length - 2} rows`],
      ];
      for (const [name, work] of steps) {
        const m = await measure(work);
        table.push([String(rows), name, m.ms.toFixed(0), ((rows / m.ms) * 1000).toFixed(0), m.cpuMs.toFixed(0), m.heapMiB.toFixed(1), m.value]);
      }
      const [{ n }] = (await server.db.dataSource.query(`SELECT count(*)::int AS n FROM audit_entry WHERE tenant_id = $1`, [Number(tenant)])) as Array<{ n: number }>;
      table.push([String(rows), "audit entries left", "", "", "", "", String(n)]);
    }
    const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
    process.stdout.write(table.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ")).join("\n") + "\n");
    process.stdout.write(`\nFile size at ${ROWS} rows: ${(Buffer.byteLength(csv(ROWS, "Desk")) / 2 ** 20).toFixed(2)} MiB. Peak heap growth includes the client's own copy of the file.\n`);
  } finally {
    await server?.stop();
    await admin?.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin?.end();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
