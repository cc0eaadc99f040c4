import { PGlite } from "@electric-sql/pglite";
import { createPgConfig } from "@electric-sql/pglite/node-postgres";
import fs from "node:fs";
import { DataSource } from "typeorm";
import { baseDataSourceOptions } from "./data-source";
import { EMBEDDED_START_PARAMS } from "./embedded";
import { pgTypes } from "./pg-types";

/**
 * First-time setup of an embedded data directory, in the short-lived child process that
 * `openEmbedded` starts: loads the initdb template into `dir` and (with `migrate`) applies every
 * migration, then shuts the engine down cleanly. Loading the template and running ~all migrations
 * grows the WASM heap by ~120 MiB that a WASM instance never gives back; doing it here keeps it out
 * of the server, which then opens the prepared directory like any existing one.
 */
export async function setupEmbeddedDir(dir: string, template: string, migrate: boolean): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const pglite = await PGlite.create({ dataDir: dir, startParams: [...EMBEDDED_START_PARAMS], loadDataDir: new Blob([fs.readFileSync(template)]) });
  try {
    if (!migrate) return;
    const dataSource = new DataSource({ ...baseDataSourceOptions(), poolSize: 1, extra: { ...createPgConfig(pglite), types: pgTypes } });
    await dataSource.initialize();
    try {
      await dataSource.runMigrations({ transaction: "each" });
    } finally {
      await dataSource.destroy();
    }
  } finally {
    await pglite.close();
  }
}
