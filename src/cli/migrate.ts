import "reflect-metadata";
import { createLogger } from "../common/logger";
import { ConfigError, loadConfig } from "../config/config";
import { openDatabase } from "../db/data-source";
import { migrate } from "../db/migrate";
import { StartupError } from "../common/startup-error";
import { cliArgs } from "./args";

const USAGE = `usage: npm run migrate

Applies pending migrations to DATABASE_URL (or the embedded database in DATA_DIR, which no server
may be using meanwhile) and exits. Reads .env like npm start. No options besides --help.
`;

/** `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database in DATA_DIR) and exits. */
async function main(): Promise<void> {
  cliArgs(USAGE, {});
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const db = await openDatabase(config);
  try {
    const applied = await migrate(db);
    log.info({ database: db.engine, applied: applied.map((m) => m.name) }, applied.length ? "applied migrations" : "no pending migrations");
  } finally {
    await db.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof ConfigError || error instanceof StartupError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
