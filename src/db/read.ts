import type { Pool } from "pg";
import type { DataSource, EntityManager } from "typeorm";

/** Statement names by SQL text: each connection then parses and plans a read once, not per request. */
const names = new Map<string, string>();
/** Read texts are a small fixed set; past this something builds SQL per value, so stop naming it. */
const MAX_NAMED = 1000;

function nameOf(text: string): string | undefined {
  let name = names.get(text);
  if (name === undefined && names.size < MAX_NAMED) names.set(text, (name = `pbx_read_${names.size}`));
  return name;
}

/**
 * Runs a read on the hot path (loaders, list pages) straight on the driver's pool as a named prepared
 * statement: no TypeORM query runner per statement, and the server keeps the plan per connection.
 * Inside a transaction it uses the transaction's own connection, as everything there must.
 */
export async function readRows<T>(ctx: { dataSource: DataSource; manager: EntityManager }, text: string, values: unknown[] = []): Promise<T[]> {
  if (ctx.manager.queryRunner) return ctx.manager.query(text, values);
  // TypeORM's logger still sees every statement (its logging settings, and tests that count them).
  ctx.dataSource.logger.logQuery(text, values);
  const pool = (ctx.dataSource.driver as unknown as { master: Pool }).master;
  const result = await pool.query<T & object>({ name: nameOf(text), text, values });
  return result.rows;
}
