import { PGlite } from "@electric-sql/pglite";
import { createPgConfig } from "@electric-sql/pglite/node-postgres";
import fs from "node:fs";
import path from "node:path";
import { DataSource } from "typeorm";
import type { PostgresDataSourceOptions } from "typeorm/driver/postgres/PostgresDataSourceOptions";
import type { AppConfig } from "../config/config";
import { migrations } from "../../migrations";
import { entities } from "./entities";
import { SnakeNamingStrategy } from "./naming-strategy";
import { pgTypes } from "./pg-types";

/** Options shared by the server, the CLI scripts and ormconfig.ts: one description of the schema. */
export function baseDataSourceOptions(): PostgresDataSourceOptions {
  return {
    type: "postgres",
    entities,
    migrations,
    migrationsTransactionMode: "each",
    migrationsTableName: "typeorm_migrations",
    namingStrategy: new SnakeNamingStrategy(),
    // Never let TypeORM create extensions: PGlite cannot, and production roles should not need superuser.
    installExtensions: false,
    uuidExtension: "pgcrypto",
    synchronize: false,
  };
}

export interface Database {
  dataSource: DataSource;
  /** "postgres" for a real server, "pglite" for the embedded engine (single connection, serialized transactions). */
  engine: "postgres" | "pglite";
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Use this embedded instance instead of one in DATA_DIR; the caller owns it and closes it. */
  pglite?: PGlite;
  /** Start an in-memory embedded engine from a dump made by PGlite's dumpDataDir (tests use this to skip initdb). */
  pgliteLoadDataDir?: Blob;
}

export async function openDatabase(config: AppConfig, options: OpenDatabaseOptions = {}): Promise<Database> {
  if (config.databaseUrl) {
    const schema = config.databaseSchema;
    const dataSource = new DataSource({
      ...baseDataSourceOptions(),
      url: config.databaseUrl,
      schema,
      poolSize: 20,
      applicationName: "pbx-api",
      extra: {
        // UTC sessions: date arithmetic does not depend on the server's zone, and timestamps print ISO-like.
        options: [`-c statement_timeout=${config.statementTimeoutMs}`, "-c TimeZone=UTC", schema ? `-c search_path=${schema}` : ""].join(" "),
        types: pgTypes,
      },
    });
    await dataSource.initialize();
    return { dataSource, engine: "postgres", close: () => dataSource.destroy() };
  }

  const ownsPglite = !options.pglite;
  let pglite = options.pglite;
  if (!pglite && options.pgliteLoadDataDir) {
    pglite = await PGlite.create({ loadDataDir: options.pgliteLoadDataDir });
  } else if (!pglite) {
    const dataDir = path.join(config.dataDir, "pglite");
    fs.mkdirSync(dataDir, { recursive: true });
    pglite = await PGlite.create({ dataDir });
  }
  const dataSource = new DataSource({
    ...baseDataSourceOptions(),
    // One WASM backend: a pool of one serializes transactions, which keeps row locks meaningful.
    poolSize: 1,
    extra: { ...createPgConfig(pglite), types: pgTypes },
  });
  await dataSource.initialize();
  return {
    dataSource,
    engine: "pglite",
    close: async () => {
      await dataSource.destroy();
      if (ownsPglite) await pglite.close();
    },
  };
}
