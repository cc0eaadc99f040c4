import "reflect-metadata";
import { PGlite } from "@electric-sql/pglite";
import fs from "node:fs";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { loadConfig } from "../../src/config/config";
import { openDatabase } from "../../src/db/data-source";
import { pgliteDumpPath } from "./env";
import { createRunDir, RUN_DIR_ENV, stopRun } from "./run";

/**
 * The run's temp folder first (test/support/run.ts): the workers start after this, with it as their
 * TMPDIR. A run stopped by a signal stops its processes and removes the folder before it goes, as
 * the global teardown does at a normal end.
 *
 * Then, without DATABASE_URL: migrate one embedded PostgreSQL once and dump it, so each test server
 * starts from the dump in under a second instead of running initdb (4-8 s) itself.
 */
export default async function globalSetup(): Promise<void> {
  process.env.PBX_TEST_RUN_ID = randomUUID();
  const runDir = createRunDir();
  process.env[RUN_DIR_ENV] = runDir;
  process.env.TMPDIR = runDir;
  const onSignal = (signal: NodeJS.Signals) => {
    stopRun(runDir);
    fs.rmSync(path.resolve(__dirname, "../../.test-build"), { recursive: true, force: true });
    // The default action now: the run ends as the signal asked.
    process.kill(process.pid, signal);
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, onSignal);

  if (process.env.DATABASE_URL) return;
  const pglite = await PGlite.create();
  const db = await openDatabase(loadConfig({}), { pglite });
  await db.dataSource.runMigrations({ transaction: "each" });
  await db.close();
  const dump = await pglite.dumpDataDir("gzip");
  await pglite.close();
  fs.writeFileSync(pgliteDumpPath(), Buffer.from(await dump.arrayBuffer()));
}
