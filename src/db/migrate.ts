import type { Migration } from "typeorm";
import type { Database } from "./data-source";

/**
 * Applies pending migrations. On PostgreSQL a session advisory lock (per schema) makes instances
 * that start together take turns: the first migrates, the others then find nothing pending.
 * The embedded engine is one process with one connection, so it needs no lock (and holding a
 * connection for it would starve the migrations themselves).
 */
export async function migrate(db: Database): Promise<Migration[]> {
  if (db.engine === "pglite") return db.dataSource.runMigrations({ transaction: "each" });
  const runner = db.dataSource.createQueryRunner();
  await runner.connect();
  const key = `hashtext('pbx-migrations:' || current_schema())`;
  try {
    await runner.query(`SELECT pg_advisory_lock(${key})`);
    return await db.dataSource.runMigrations({ transaction: "each" });
  } finally {
    await runner.query(`SELECT pg_advisory_unlock(${key})`).catch(() => undefined);
    await runner.release();
  }
}
