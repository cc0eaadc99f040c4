import "reflect-metadata";
import { PGlite } from "@electric-sql/pglite";
import { createPgConfig } from "@electric-sql/pglite/node-postgres";
import fs from "node:fs";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { DataSource } from "typeorm";
import { loadConfig } from "../../src/config/config";
import { baseDataSourceOptions, openDatabase, type Database } from "../../src/db/data-source";
import { entities } from "../../src/db/entities";
import { databaseUrl, pgliteDumpPath } from "../support/env";

/**
 * Two independent checks that the entities (TypeORM metadata) and the hand-written migrations
 * describe the same schema:
 * 1. TypeORM's own diff (`createSchemaBuilder().log()`) of the migrated schema is empty.
 * 2. The catalog of the migrated schema equals the catalog of a schema that TypeORM created from
 *    the entities alone (synchronize). This catches what TypeORM's diff does not compare (measured):
 *    partial-index predicates, CHECK expressions, foreign-key column lists and DEFERRABLE.
 *    Only what TypeORM metadata cannot declare at all is normalised away (see EXPRESSIBLE).
 */

const url = databaseUrl();
const suffix = randomBytes(3).toString("hex");
const migratedSchema = url ? `parity_mig_${suffix}` : "public";
const syncedSchema = `parity_syn_${suffix}`;

let migrated: Database;
let synced: DataSource;
let pglite: PGlite | undefined;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  if (url) {
    await admin(`CREATE SCHEMA ${migratedSchema}; CREATE SCHEMA ${syncedSchema}`);
    migrated = await openDatabase(loadConfig({ DATABASE_URL: url, DATABASE_SCHEMA: migratedSchema }));
    synced = new DataSource({ ...baseDataSourceOptions(), url, schema: syncedSchema, extra: { options: `-c search_path=${syncedSchema}` } });
  } else {
    // The global setup's dump is the migrated embedded database; one PGlite holds both schemas.
    pglite = await PGlite.create({ loadDataDir: new Blob([fs.readFileSync(pgliteDumpPath())]) });
    await pglite.exec(`CREATE SCHEMA ${syncedSchema}`);
    migrated = await openDatabase(loadConfig({}), { pglite });
    synced = new DataSource({ ...baseDataSourceOptions(), schema: syncedSchema, poolSize: 1, extra: { ...createPgConfig(pglite) } });
  }
  await migrated.dataSource.runMigrations({ transaction: "each" });
  await synced.initialize();
  await synced.synchronize();
});

afterAll(async () => {
  await synced?.destroy();
  await migrated?.close();
  await pglite?.close();
  if (url) await admin(`DROP SCHEMA IF EXISTS ${migratedSchema} CASCADE; DROP SCHEMA IF EXISTS ${syncedSchema} CASCADE`);
});

/**
 * PostgreSQL features that entity metadata has no way to declare, so the synchronized schema can
 * never have them: table partitioning (indexes on a partitioned table print as "ON ONLY"),
 * per-column index order (TypeORM's IndexOptions has no DESC), and PostgreSQL 15's column list on
 * ON DELETE SET NULL. Constraint triggers (the engine's change signal, src/engine/engine-sync.ts)
 * are left out of the comparison: entities cannot declare triggers. Everything else must match exactly.
 */
const EXPRESSIBLE: Array<[RegExp, string]> = [
  [/ ON ONLY /g, " ON "],
  [/ DESC\b/g, ""],
  [/ON DELETE SET NULL \([^)]*\)/g, "ON DELETE SET NULL"],
];

interface CatalogEntry {
  kind: string;
  name: string;
  def: string;
}

/** Columns, constraints and indexes of the entity tables in one schema, with the schema name taken out. */
async function catalog(schema: string): Promise<CatalogEntry[]> {
  const tables = entities.map((entity) => migrated.dataSource.getMetadata(entity).tableName);
  const rows: CatalogEntry[] = await migrated.dataSource.query(
    `SELECT 'column' AS kind, c.table_name || '.' || c.column_name AS name,
            concat_ws(' ', c.data_type, c.character_maximum_length, c.is_nullable, c.column_default, c.is_identity, c.identity_generation) AS def
       FROM information_schema.columns c WHERE c.table_schema = $1 AND c.table_name = ANY($2)
     UNION ALL
     SELECT 'constraint', r.relname || '.' || con.conname, pg_get_constraintdef(con.oid)
       FROM pg_constraint con JOIN pg_class r ON r.oid = con.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
      WHERE n.nspname = $1 AND r.relname = ANY($2) AND con.contype <> 't'
     UNION ALL
     SELECT 'index', i.tablename || '.' || i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = $1 AND i.tablename = ANY($2)
     ORDER BY 1, 2`,
    [schema, tables],
  );
  const qualified = new RegExp(`"?${schema}"?\\.`, "g");
  return rows.map((row) => ({
    ...row,
    def: EXPRESSIBLE.reduce((def, [pattern, replacement]) => def.replace(pattern, replacement), row.def.replace(qualified, "")),
  }));
}

describe("entity metadata and migrations describe the same schema", () => {
  it("TypeORM's schema diff after all migrations is empty", async () => {
    const sql = await migrated.dataSource.driver.createSchemaBuilder().log();
    expect(sql.upQueries.map((q) => q.query)).toEqual([]);
  });

  it("the migrated catalog equals the catalog TypeORM builds from the entities", async () => {
    const fromMigrations = await catalog(migratedSchema);
    const fromEntities = await catalog(syncedSchema);
    expect(fromMigrations.length).toBeGreaterThan(50);
    expect(fromMigrations).toEqual(fromEntities);
  });

  it("the comparison sees the details TypeORM's diff ignores", async () => {
    const before = await catalog(migratedSchema);
    await migrated.dataSource.query(`DROP INDEX ix_device__expires_at`);
    await migrated.dataSource.query(`CREATE INDEX ix_device__expires_at ON device (expires_at)`);
    try {
      expect((await migrated.dataSource.driver.createSchemaBuilder().log()).upQueries).toEqual([]);
      expect(await catalog(migratedSchema)).not.toEqual(before);
    } finally {
      await migrated.dataSource.query(`DROP INDEX ix_device__expires_at`);
      await migrated.dataSource.query(`CREATE INDEX "ix_device__expires_at" ON "device" ("expires_at") WHERE "unregistered_at" IS NULL`);
    }
    expect(await catalog(migratedSchema)).toEqual(before);
  });
});
