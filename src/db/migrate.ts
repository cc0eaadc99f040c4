import type { Migration } from "typeorm";
import type { Database } from "./data-source";

/**
 * Applies pending migrations. On PostgreSQL a session advisory lock (per schema) makes instances
 * that start together take turns: the first migrates, the others then find nothing pending.
 * The embedded engine is one process with one connection, so it needs no lock (and holding a
 * connection for it would starve the migrations themselves).
 */
export async function migrate(db: Database): Promise<Migration[]> {
  if (await upToDate(db)) return [];
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

/**
 * Whether every migration of this build is applied, and no other: one plain SELECT. TypeORM's own
 * check reads information_schema first (over half a second of an embedded start), so an existing
 * database skips it; anything else (a new migration, a missing table) goes the full way.
 */
async function upToDate(db: Database): Promise<boolean> {
  const ours = db.dataSource.migrations.map((m) => m.name ?? m.constructor.name);
  let applied: Array<{ name: string }>;
  try {
    applied = await db.dataSource.query(`SELECT name FROM typeorm_migrations`);
  } catch {
    return false;
  }
  const names = new Set(applied.map((row) => row.name));
  return names.size === ours.length && ours.every((name) => names.has(name));
}
