/**
 * How the engine notices changes by itself (contract §11: within 2 s, without the product knowing
 * where the engine runs). Every table the engine reads through a view carries a trigger that bumps
 * the one row of `engine_config_version` when a transaction that wrote it commits; the engine reads
 * `engine_config(version)` every second and reloads its module caches when the value moved.
 *
 * The bump is a deferred constraint trigger, so the row lock is taken at commit and held only for
 * the commit itself: writers of unrelated tenants never wait on each other's whole transaction, and
 * no writer can deadlock on it (the holder waits for nothing else). A transaction-local flag makes
 * it one update per transaction, however many rows it wrote.
 *
 * These helpers return SQL for migrations; a concern adds its tables with one line each:
 *   await q.query(engineWatchTrigger("trunk"));
 */

/** The function every watch trigger runs (created by the EngineSync migration). */
export const ENGINE_BUMP_FUNCTION = "engine_config_bump";

/** The trigger that makes commits writing `table` bump the engine's version. */
export function engineWatchTrigger(table: string): string {
  return `CREATE CONSTRAINT TRIGGER "engine_watch_${table}" AFTER INSERT OR UPDATE OR DELETE ON "${table}"
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${ENGINE_BUMP_FUNCTION}()`;
}

/** The `down` of engineWatchTrigger. */
export function dropEngineWatchTrigger(table: string): string {
  return `DROP TRIGGER IF EXISTS "engine_watch_${table}" ON "${table}"`;
}

/**
 * Kamailio modules check the version of the table they read in a table named `version`; the view of
 * that name reads `engine_module_version`, where a concern's migration declares its tables:
 *   await q.query(engineModuleVersion({ uacreg: 5, dispatcher: 4 }));
 */
export function engineModuleVersion(versions: Record<string, number>): string {
  const rows = Object.entries(versions).map(([name, version]) => `('${name.replace(/'/g, "''")}', ${Math.trunc(version)})`);
  return `INSERT INTO engine_module_version (table_name, table_version) VALUES ${rows.join(", ")}
    ON CONFLICT (table_name) DO UPDATE SET table_version = excluded.table_version`;
}

/** The `down` of engineModuleVersion. */
export function dropEngineModuleVersion(names: string[]): string {
  return `DELETE FROM engine_module_version WHERE table_name IN (${names.map((n) => `'${n.replace(/'/g, "''")}'`).join(", ")})`;
}
