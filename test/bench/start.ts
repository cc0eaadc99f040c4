/**
 * Start benchmark of the embedded default: how long `node dist/src/main.js` takes to answer
 * `GET /readyz` 200, and its resident memory then, on a fresh DATA_DIR (initdb + migrations) and on
 * an existing one.
 *
 *   npm run bench:start -- [--tries 3] [--settle 5]
 *
 * Each try: a fresh DATA_DIR start, then a restart on it. RSS is read from /proc at ready, and again
 * --settle seconds later (PGlite's WASM memory and V8's heap settle after the first requests), with
 * the peak (VmHWM). The CPU time the server (and the set-up process it waited for) used until ready
 * is read from /proc too: on a shared machine the wall time mostly measures the others' load, the
 * CPU time what a start costs. Prints one line per start, a summary with the median of each figure,
 * and the load average before and after.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { tries: { type: "string", default: "3" }, settle: { type: "string", default: "5" }, help: { type: "boolean", short: "h" } },
  strict: true,
});
if (values.help) {
  process.stdout.write("usage: npm run bench:start -- [--tries N (3)] [--settle SECONDS (5)]\n");
  process.exit(0);
}
const tries = Number(values.tries);
const settleMs = Number(values.settle) * 1000;
// Compiled to dist/test/bench/start.js: the server is dist/src/main.js, run from the checkout.
const main = path.resolve(__dirname, "../../src/main.js");
const root = path.resolve(__dirname, "../../..");

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ: 100 on Linux). */
const TICKS = 100;
function cpuMsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime stime cutime cstime: fields 14–17 of the line, 12–15 after the command.
  return fields.slice(11, 15).reduce((sum, x) => sum + Number(x), 0) * (1000 / TICKS);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function statusKiB(pid: number, field: string): number {
  const match = new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) : NaN;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

interface Figures {
  readyMs: number;
  /** utime + stime of the server and of its waited-for children (the fresh DATA_DIR's set-up), until ready. */
  cpuMs: number;
  rssReadyMiB: number;
  rssSettledMiB: number;
  peakMiB: number;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

async function startOnce(dataDir: string): Promise<Figures> {
  const port = await freePort();
  const env: Record<string, string> = { ...(process.env as Record<string, string>) };
  for (const name of ["DATABASE_URL", "REDIS_URL", "DATABASE_SCHEMA", "WEB_CONCURRENCY", "NODE_OPTIONS"]) delete env[name];
  Object.assign(env, { PORT: String(port), HOST: "127.0.0.1", NODE_ENV: "production", DATA_DIR: dataDir, ADMIN_API_KEY: "bench-start-admin-key-0123456789", LOG_LEVEL: "warn" });
  const t0 = nowMs();
  const child = spawn(process.execPath, [main], { cwd: root, env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}:\n${stderr}`);
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        async (res) => (await res.text(), res.status === 200),
        () => false,
      );
      if (ok) break;
      if (nowMs() - t0 > 180_000) throw new Error(`not ready after 180 s:\n${stderr}`);
      await sleep(10);
    }
    const readyMs = nowMs() - t0;
    const cpuMs = cpuMsOf(child.pid!);
    const rssReadyMiB = statusKiB(child.pid!, "VmRSS") / 1024;
    await sleep(settleMs);
    return { readyMs, cpuMs, rssReadyMiB, rssSettledMiB: statusKiB(child.pid!, "VmRSS") / 1024, peakMiB: statusKiB(child.pid!, "VmHWM") / 1024 };
  } finally {
    await stop(child);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const line = (f: Figures) =>
  `ready ${f.readyMs.toFixed(0).padStart(6)} ms, CPU ${f.cpuMs.toFixed(0).padStart(5)} ms   RSS ${f.rssReadyMiB.toFixed(0)} MiB at ready, ${f.rssSettledMiB.toFixed(0)} MiB ${settleMs / 1000} s later, peak ${f.peakMiB.toFixed(0)} MiB`;

async function run(): Promise<void> {
  if (!fs.existsSync(main)) throw new Error("dist/src/main.js is missing: run npm ci (or npm run build)");
  const loadBefore = fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const fresh: Figures[] = [];
  const existing: Figures[] = [];
  for (let i = 1; i <= tries; i++) {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-bench-start-"));
    try {
      const a = await startOnce(dataDir);
      fresh.push(a);
      process.stdout.write(`try ${i}  fresh DATA_DIR     ${line(a)}\n`);
      const b = await startOnce(dataDir);
      existing.push(b);
      process.stdout.write(`try ${i}  existing DATA_DIR  ${line(b)}\n`);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }
  const summary = (name: string, xs: Figures[]) =>
    `${name.padEnd(9)} median ready ${median(xs.map((x) => x.readyMs)).toFixed(0)} ms, CPU ${median(xs.map((x) => x.cpuMs)).toFixed(0)} ms, RSS ${median(xs.map((x) => x.rssReadyMiB)).toFixed(0)} MiB at ready / ${median(xs.map((x) => x.rssSettledMiB)).toFixed(0)} MiB settled, peak ${median(xs.map((x) => x.peakMiB)).toFixed(0)} MiB`;
  process.stdout.write(`\n${summary("fresh", fresh)}\n${summary("existing", existing)}\n`);
  process.stdout.write(`node ${process.version}, loadavg before ${loadBefore}, after ${fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}\n`);
}

run().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
