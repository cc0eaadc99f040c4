import "reflect-metadata";
import { PGlite } from "@electric-sql/pglite";
import fs from "node:fs";
import { randomUUID } from "node:crypto";
import { loadConfig } from "../../src/config/config";
import { openDatabase } from "../../src/db/data-source";
import { pgliteDumpPath } from "./env";

/**
 * Without DATABASE_URL: migrate one embedded PostgreSQL once and dump it, so each test server
 * starts from the dump in under a second instead of running initdb (4-8 s) itself.
 */
export default async function globalSetup(): Promise<void> {
  process.env.PBX_TEST_RUN_ID = randomUUID();
  if (process.env.DATABASE_URL) return;
  const pglite = await PGlite.create();
  const db = await openDatabase(loadConfig({}), { pglite });
  await db.dataSource.runMigrations({ transaction: "each" });
  await db.close();
  const dump = await pglite.dumpDataDir("gzip");
  await pglite.close();
  fs.writeFileSync(pgliteDumpPath(), Buffer.from(await dump.arrayBuffer()));
}
