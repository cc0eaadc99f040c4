import type { Pool } from "pg";
import { pgErrorCode } from "../common/errors";
import type { DataSource, EntityManager } from "typeorm";
import { isDatabaseUnavailable, type DbScope } from "./replica";

/** Statement names by SQL text: each connection then parses and plans a read once, not per request. */
const names = new Map<string, string>();
/** Read texts are a small fixed set; past this something builds SQL per value, so stop naming it. */
const MAX_NAMED = 1000;
/**
 * Named statements live in a server session. Behind pgbouncer in transaction mode (1.18, Debian 12:
 * no prepared-statement tracking) the next statement may run in another session, which answers
 * 26000 "prepared statement does not exist" or 42P05 "already exists": then the process stops
 * naming statements for good and runs the read again unnamed, which any pooler carries.
 */
let naming = true;
const SESSION_STATEMENT_ERRORS = new Set(["26000", "42P05"]);

function nameOf(text: string): string | undefined {
  if (!naming) return undefined;
  let name = names.get(text);
  if (name === undefined && names.size < MAX_NAMED) names.set(text, (name = `pbx_read_${names.size}`));
  return name;
}

/**
 * Runs a read on the hot path (loaders, list pages) straight on the driver's pool as a named prepared
 * statement: no TypeORM query runner per statement, and the server keeps the plan per connection.
 * Inside a transaction it uses the transaction's own connection, as everything there must.
 */
export async function readRows<T>(ctx: { dataSource: DataSource; manager: EntityManager; db?: DbScope }, text: string, values: unknown[] = []): Promise<T[]> {
  if (ctx.manager.queryRunner) return ctx.manager.query(text, values);
  // TypeORM's logger still sees every statement (its logging settings, and tests that count them).
  ctx.dataSource.logger.logQuery(text, values);
  // A request that writes nothing may read on the replica (src/db/replica.ts); it falls back here when the replica fails.
  const replica = ctx.db ? await ctx.db.replicaPool() : null;
  if (replica) {
    try {
      return await query<T>(replica, text, values);
    } catch (error) {
      if (!isDatabaseUnavailable(error) && pgErrorCode(error) !== "40001") throw error;
      // Unreachable, or a read cancelled by a conflict with recovery: the primary answers it.
      ctx.db!.replicaFailed(error);
    }
  }
  return query<T>((ctx.dataSource.driver as unknown as { master: Pool }).master, text, values);
}

async function query<T>(pool: Pool, text: string, values: unknown[]): Promise<T[]> {
  const name = nameOf(text);
  try {
    return (await pool.query<T & object>({ name, text, values })).rows;
  } catch (error) {
    if (name === undefined || !SESSION_STATEMENT_ERRORS.has(pgErrorCode(error) ?? "")) throw error;
    naming = false;
    return (await pool.query<T & object>({ text, values })).rows;
  }
}
