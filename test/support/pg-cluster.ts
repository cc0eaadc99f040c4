import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { trackPid } from "./run";
import { waitFor } from "./wait";

/**
 * Throw-away PostgreSQL 15 clusters for the replica and failover suites (contract §14): a primary
 * made with initdb and a streaming replica made with `pg_basebackup -R`, each in its own folder
 * under the run's TMPDIR, on a port the suite names (554xx), started with pg_ctl and stopped by the
 * postmaster's PID. The machine's own PostgreSQL (5432) is never touched. As root (CI), the
 * clusters run as the `postgres` user: PostgreSQL refuses to run as root.
 */
const run = promisify(execFile);
export const PG_BIN = "/usr/lib/postgresql/15/bin";

export const pgBinariesPresent = (): boolean => fs.existsSync(path.join(PG_BIN, "pg_basebackup"));

/** Skips (saying so) without the binaries; with REQUIRE_REAL_SERVICES=1 their absence fails the run. */
export function requirePgBinaries(): boolean {
  if (pgBinariesPresent()) return true;
  if (process.env.REQUIRE_REAL_SERVICES === "1") throw new Error(`REQUIRE_REAL_SERVICES=1 but ${PG_BIN} has no pg_basebackup (postgresql-15)`);
  process.stderr.write(`SKIPPED: this suite needs PostgreSQL 15's binaries in ${PG_BIN}; it did not run.\n`);
  return false;
}

const asRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL binary, as `postgres` when we are root. */
async function pgRun(binary: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const file = path.join(PG_BIN, binary);
  const [cmd, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", "env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), file, ...args]] : [file, args];
  const { stdout } = await run(cmd, argv, { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** The uid/gid PostgreSQL's tools (and pgbouncer) run as: `postgres` when we are root, else ourselves. */
export function serviceIds(): { uid: number; gid: number } {
  return asRoot ? { uid: uidOf("postgres"), gid: gidOf("postgres") } : { uid: process.getuid!(), gid: process.getgid!() };
}

/** A folder the postgres user may own, under TMPDIR (whose run folder must then be traversable). */
export function clusterDir(name: string): string {
  const base = os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, `${name}-`));
  if (asRoot) {
    fs.chmodSync(base, fs.statSync(base).mode | 0o011);
    fs.chownSync(dir, uidOf("postgres"), gidOf("postgres"));
  }
  return dir;
}

function uidOf(user: string): number {
  const line = fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${user}:`));
  return Number(line!.split(":")[2]);
}
function gidOf(user: string): number {
  const line = fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${user}:`));
  return Number(line!.split(":")[3]);
}

/** Whether a process exists and is not a zombie. */
export const alive = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
};

export class PgNode {
  pid: number | undefined;
  constructor(
    readonly name: string,
    readonly dir: string,
    readonly port: number,
    private readonly serverOptions: string[],
  ) {}

  get data(): string {
    return path.join(this.dir, "data");
  }

  url(database = "postgres"): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    const options = [`-p ${this.port}`, `-k ${this.dir}`, "-c listen_addresses=127.0.0.1", ...this.serverOptions].join(" ");
    await pgRun("pg_ctl", ["-D", this.data, "-l", path.join(this.dir, "log"), "-w", "-t", "60", "-o", options, "start"]);
    this.pid = Number(fs.readFileSync(path.join(this.data, "postmaster.pid"), "utf8").split("\n")[0]);
    trackPid(this.pid);
  }

  /** Stops the postmaster by its PID with `signal` (SIGQUIT: immediate shutdown, as a crash looks to clients) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = "SIGINT"): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    if (alive(pid)) process.kill(pid, signal);
    await waitFor(`${this.name} (PID ${pid}) to exit`, () => !alive(pid), 60_000);
    this.pid = undefined;
  }

  async query<T extends object = Record<string, unknown>>(sql: string, values: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 2_000 });
    await client.connect();
    try {
      return (await client.query<T>(sql, values)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** `pg_ctl promote -w`: returns once the node accepts writes. */
  async promote(): Promise<void> {
    await pgRun("pg_ctl", ["-D", this.data, "-w", "-t", "60", "promote"]);
  }

  log(): string {
    try {
      return fs.readFileSync(path.join(this.dir, "log"), "utf8");
    } catch {
      return "";
    }
  }

  async stop(): Promise<void> {
    await this.kill("SIGINT").catch(() => undefined);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A small primary with WAL for streaming replicas; `serverOptions` are its own `-c` settings (not copied
 * to replicas). Give suites fixed ports below Linux's ephemeral range (32768-60999): a port inside it
 * may be held by any outgoing connection when PostgreSQL binds it.
 */
export async function startPrimary(name: string, port: number, serverOptions: string[] = []): Promise<PgNode> {
  const dir = clusterDir(name);
  const node = new PgNode(name, dir, port, serverOptions);
  await pgRun("initdb", ["-D", node.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]);
  fs.appendFileSync(
    path.join(node.data, "postgresql.conf"),
    ["wal_level = replica", "max_wal_senders = 5", "hot_standby = on", "fsync = off", "shared_buffers = 16MB", "max_connections = 60", "wal_keep_size = 64MB", ""].join("\n"),
  );
  await node.start();
  return node;
}

/** A streaming replica of `primary` (`pg_basebackup -R`), started and connected. */
export async function startReplica(primary: PgNode, name: string, port: number): Promise<PgNode> {
  const dir = clusterDir(name);
  const node = new PgNode(name, dir, port, []);
  await pgRun("pg_basebackup", ["-h", "127.0.0.1", "-p", String(primary.port), "-U", "postgres", "-D", node.data, "-R", "-X", "stream", "-c", "fast", "--no-sync"]);
  await node.start();
  await waitFor(`${name} streaming from ${primary.name}`, async () => {
    const rows = await primary.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'");
    return rows[0]!.n > 0;
  }, 60_000);
  return node;
}
