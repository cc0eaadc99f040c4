import type { MigrationInterface, QueryRunner } from "typeorm";
import { dropEngineWatchTrigger, ENGINE_BUMP_FUNCTION, engineWatchTrigger } from "../src/engine/engine-sync";

/**
 * The change signal the engine polls (contract §11; src/engine/engine-sync.ts explains it): the
 * one-row engine_config_version, the bump trigger on the tables the engine reads, the view
 * engine_config(version) and the view `version` that Kamailio modules check table versions in.
 * Views for Kamailio expose varchar and int4 only (db_postgres reads text as a blob).
 */
export class EngineSync1765200000000 implements MigrationInterface {
  name = "EngineSync1765200000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "engine_config_version" ("id" boolean PRIMARY KEY DEFAULT true CHECK ("id"), "version" bigint NOT NULL DEFAULT 1)`);
    await q.query(`INSERT INTO "engine_config_version" DEFAULT VALUES`);
    await q.query(`
      CREATE FUNCTION ${ENGINE_BUMP_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF current_setting('pbx.engine_bumped', true) IS DISTINCT FROM 'on' THEN
          PERFORM set_config('pbx.engine_bumped', 'on', true);
          UPDATE engine_config_version SET version = version + 1;
        END IF;
        RETURN NULL;
      END $$`);
    for (const table of ["tenant", "extension"]) await q.query(engineWatchTrigger(table));
    await q.query(`CREATE VIEW "engine_config" AS SELECT "version"::varchar AS "version" FROM "engine_config_version"`);
    await q.query(`CREATE TABLE "engine_module_version" ("table_name" varchar(32) PRIMARY KEY, "table_version" integer NOT NULL)`);
    await q.query(`CREATE VIEW "version" AS SELECT "table_name", "table_version" FROM "engine_module_version"`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP VIEW "version"`);
    await q.query(`DROP TABLE "engine_module_version"`);
    await q.query(`DROP VIEW "engine_config"`);
    for (const table of ["tenant", "extension"]) await q.query(dropEngineWatchTrigger(table));
    await q.query(`DROP FUNCTION ${ENGINE_BUMP_FUNCTION}()`);
    await q.query(`DROP TABLE "engine_config_version"`);
  }
}
