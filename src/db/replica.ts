import { Pool, type PoolConfig } from "pg";
import type { DataSource } from "typeorm";
import { AppError, ErrorCode, pgErrorCode } from "../common/errors";
import type { Logger } from "../common/logger";
import { pgTypes } from "./pg-types";

/**
 * Read replicas with read-your-writes (contract §14).
 *
 * Writes, transactions, subscriptions, ingestion and background jobs always use the primary
 * (DATABASE_URL). Only the reads of `readRows` (src/db/read.ts) made outside a transaction by an
 * HTTP request that writes nothing — a GraphQL query (compiled or not), a REST GET — may go to
 * DATABASE_REPLICA_URL: the list and statistics reads (extension lists and search, CDR pages and
 * cdrStats, audit log, queues, devices…) and every DataLoader batch behind them. One request
 * chooses once, so all its reads see one server.
 *
 * A request that sends `x-pbx-read-after: <LSN>` (an `x-pbx-write-lsn` it got from a mutation)
 * uses the replica only once `pg_last_wal_replay_lsn()` there has reached that LSN, waiting at
 * most REPLICA_WAIT_MS; past that, or when the replica is unreachable or no longer in recovery,
 * the primary answers. A client therefore always reads its own writes.
 */

/** A WAL position ("16/B374D848") as a number, for comparison. */
export function parseLsn(text: string): bigint | null {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!match) return null;
  return (BigInt(`0x${match[1]}`) << 32n) + BigInt(`0x${match[2]}`);
}

/** The request header naming the position a read must see (validated by the HTTP layer). */
export const READ_AFTER_HEADER = "x-pbx-read-after";
/** The response header of a mutation: the primary's WAL position after its commit. */
export const WRITE_LSN_HEADER = "x-pbx-write-lsn";

/** How long the replica is left alone after it failed, before a read tries it again. */
const REPLICA_RETRY_MS = 2_000;
/** How often a waiting read looks at the replica's replay position (shared by all waiters). */
const REPLAY_POLL_MS = 10;

/** Where a read went, for the `pbx_db_reads_total` metric and the tests. */
export type ReadTarget = "replica" | "primary_lagging" | "primary_replica_down";

/**
 * Errors that mean "the database cannot be reached right now" (a primary lost, a failover under
 * way, a standby not yet promoted behind the address): the request is answered 503 with
 * Retry-After, never 500, and the client may retry.
 */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "25006", "53300"]);
const UNAVAILABLE_ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
const UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection is closed|connection is not queryable|server closed the connection unexpectedly/i;

export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e = error as { driverError?: unknown; cause?: unknown; code?: unknown; message?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    const code = pgErrorCode(e);
    if (code && (UNAVAILABLE_SQLSTATES.has(code) || code.startsWith("08") || UNAVAILABLE_ERRNOS.has(code))) return true;
    if (typeof e.message === "string" && UNAVAILABLE_MESSAGES.test(e.message)) return true;
    e = (e.driverError ?? e.cause) as typeof e;
  }
  return false;
}

/** Seconds a client is told to wait (Retry-After) while the database is unreachable. */
export const DATABASE_RETRY_AFTER_S = 1;

export function databaseUnavailable(): AppError {
  return new AppError(ErrorCode.SERVICE_UNAVAILABLE, "The database is unreachable right now (failover in progress?); retry shortly.");
}

export interface ReplicaOptions {
  url: string;
  schema: string | undefined;
  statementTimeoutMs: number;
  waitMs: number;
  log: Logger;
}

/** The one replica of this process: its pool, its health, and its replay position. */
export class ReplicaRouter {
  readonly pool: Pool;
  readonly waitMs: number;
  private downUntil = 0;
  private replay: Promise<bigint | null> | undefined;
  private readonly log: Logger;
  /** Counted by the metrics (registered by the server) and visible to tests. */
  onRead: (target: ReadTarget) => void = () => undefined;

  constructor(options: ReplicaOptions) {
    this.waitMs = options.waitMs;
    this.log = options.log;
    const config: PoolConfig = {
      connectionString: options.url,
      max: 20,
      application_name: "pbx-api-replica",
      connectionTimeoutMillis: 2_000,
      idleTimeoutMillis: 30_000,
      options: [`-c statement_timeout=${options.statementTimeoutMs}`, "-c TimeZone=UTC", options.schema ? `-c search_path=${options.schema}` : ""].join(" "),
      types: pgTypes,
    };
    this.pool = new Pool(config);
    // An idle connection that breaks (the replica restarted) is dropped by the pool; the next read reconnects.
    this.pool.on("error", (error) => this.markDown(error));
  }

  /** Whether the replica is presumed reachable (it has not failed in the last REPLICA_RETRY_MS). */
  get up(): boolean {
    return Date.now() >= this.downUntil;
  }

  markDown(error: unknown): void {
    if (this.up) this.log.warn({ err: error }, "the read replica (DATABASE_REPLICA_URL) failed: reads go to the primary for now");
    this.downUntil = Date.now() + REPLICA_RETRY_MS;
  }

  /** The replica's replay position; null when it is no longer in recovery (promoted: not our replica any more). */
  private replayLsn(): Promise<bigint | null> {
    return (this.replay ??= (async () => {
      try {
        const { rows } = await this.pool.query<{ recovery: boolean; lsn: string | null }>("SELECT pg_is_in_recovery() AS recovery, pg_last_wal_replay_lsn()::text AS lsn");
        const row = rows[0];
        return row?.recovery && row.lsn ? parseLsn(row.lsn) : null;
      } finally {
        this.replay = undefined;
      }
    })());
  }

  /**
   * The pool a request's reads use: the replica's, or null for the primary's. With `readAfter`,
   * the replica only once it has replayed that position (waiting up to REPLICA_WAIT_MS).
   */
  async choose(readAfter: bigint | undefined): Promise<Pool | null> {
    if (!this.up) return this.count("primary_replica_down", null);
    if (readAfter === undefined) return this.count("replica", this.pool);
    const deadline = Date.now() + this.waitMs;
    try {
      for (;;) {
        const replayed = await this.replayLsn();
        if (replayed === null) {
          this.markDown(new Error("the replica is not in recovery"));
          return this.count("primary_replica_down", null);
        }
        if (replayed >= readAfter) return this.count("replica", this.pool);
        if (Date.now() + REPLAY_POLL_MS > deadline) return this.count("primary_lagging", null);
        await new Promise((resolve) => setTimeout(resolve, REPLAY_POLL_MS));
      }
    } catch (error) {
      this.markDown(error);
      return this.count("primary_replica_down", null);
    }
  }

  private count(target: ReadTarget, pool: Pool | null): Pool | null {
    this.onRead(target);
    return pool;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * What one HTTP request does with the database beyond its own work: whether its reads may go to
 * the replica (and after which LSN), and the WAL position after its last commit (answered as
 * `x-pbx-write-lsn`). Shared by every copy of the request's context (transactions copy it).
 */
export class DbScope {
  /** The primary's WAL position after this request's last commit. */
  writeLsn: string | undefined;
  private replicaAllowed = false;
  private chosen: Promise<Pool | null> | undefined;

  constructor(
    private readonly router: ReplicaRouter | undefined,
    readonly readAfter: bigint | undefined,
    /** Real PostgreSQL: commits record their WAL position. */
    readonly tracksWrites: boolean,
  ) {}

  /** The request writes nothing (a query, a GET): its reads outside transactions may use the replica. */
  allowReplica(): void {
    this.replicaAllowed = true;
  }

  /** The replica's pool for this request's reads, or null: the primary. Chosen once per request. */
  replicaPool(): Promise<Pool | null> {
    if (!this.router || !this.replicaAllowed) return Promise.resolve(null);
    return (this.chosen ??= this.router.choose(this.readAfter));
  }

  /** A read on the replica failed for want of the replica: this request and the next ones use the primary. */
  replicaFailed(error: unknown): void {
    if (isDatabaseUnavailable(error)) this.router?.markDown(error);
    this.chosen = Promise.resolve(null);
  }

  /** After a commit: remember the primary's WAL position (a failure to learn it leaves the last one). */
  async recordCommit(dataSource: DataSource): Promise<void> {
    if (!this.tracksWrites) return;
    try {
      this.writeLsn = await currentWalLsn(dataSource);
    } catch {
      // The commit succeeded; without a position the client's next read simply goes to the primary.
    }
  }
}

/**
 * The primary's WAL position now: after a commit it is at or past that commit's record. Read on
 * the driver's pool directly (not through TypeORM's logger: it is bookkeeping, not the request's SQL).
 */
export async function currentWalLsn(dataSource: DataSource): Promise<string> {
  const pool = (dataSource.driver as unknown as { master: Pool }).master;
  const { rows } = await pool.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
  return rows[0]!.lsn;
}
