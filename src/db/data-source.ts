import { PGlite } from "@electric-sql/pglite";
import { createPgConfig } from "@electric-sql/pglite/node-postgres";
import { DataSource } from "typeorm";
import type { PostgresDataSourceOptions } from "typeorm/driver/postgres/PostgresDataSourceOptions";
import type { AppConfig } from "../config/config";
import { migrations } from "../../migrations";
import { entities } from "./entities";
import { SnakeNamingStrategy } from "./naming-strategy";
import { pgTypes } from "./pg-types";
import { StartupError } from "../common/startup-error";
import { DataDirLock, EMBEDDED_START_PARAMS, openEmbedded } from "./embedded";
import { ReplicaRouter } from "./replica";
import type { Logger } from "../common/logger";

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
  /** With DATABASE_REPLICA_URL: the replica that answers the reads of requests that write nothing. */
  replica?: ReplicaRouter;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Use this embedded instance instead of one in DATA_DIR; the caller owns it and closes it. */
  pglite?: PGlite;
  /** Start an in-memory embedded engine from a dump made by PGlite's dumpDataDir (tests use this to skip initdb). */
  pgliteLoadDataDir?: Blob;
  /** Where the replica reports that it failed (with DATABASE_REPLICA_URL). */
  log?: Logger;
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
      // While the primary is lost (a failover behind HAProxy or pgbouncer) a request must fail fast
      // with 503, not wait on a connection that cannot come: 5 s to connect (or to get a pooled
      // connection under load), then the error. HAProxy without a live server refuses at once.
      connectTimeoutMS: 5_000,
      extra: {
        // UTC sessions: date arithmetic does not depend on the server's zone, and timestamps print ISO-like.
        options: [`-c statement_timeout=${config.statementTimeoutMs}`, "-c TimeZone=UTC", schema ? `-c search_path=${schema}` : ""].join(" "),
        types: pgTypes,
      },
    });
    try {
      await dataSource.initialize();
    } catch (error) {
      throw databaseStartupError(error, config.databaseUrl);
    }
    const replica = config.databaseReplicaUrl
      ? new ReplicaRouter({ url: config.databaseReplicaUrl, schema, statementTimeoutMs: config.statementTimeoutMs, waitMs: config.replicaWaitMs, log: options.log ?? silentLog })
      : undefined;
    return {
      dataSource,
      engine: "postgres",
      replica,
      close: async () => {
        await replica?.close().catch(() => undefined);
        await dataSource.destroy();
      },
    };
  }

  const ownsPglite = !options.pglite;
  let pglite = options.pglite;
  let lock: DataDirLock | undefined;
  if (!pglite && options.pgliteLoadDataDir) {
    pglite = await PGlite.create({ loadDataDir: options.pgliteLoadDataDir, startParams: [...EMBEDDED_START_PARAMS] });
  } else if (!pglite) {
    lock = DataDirLock.acquire(config.dataDir);
    try {
      pglite = await openEmbedded(config.dataDir, { migrate: config.migrateOnStart });
    } catch (error) {
      lock.release();
      throw error;
    }
  }
  const engine = pglite;
  const dataSource = new DataSource({
    ...baseDataSourceOptions(),
    // One WASM backend: a pool of one serializes transactions, which keeps row locks meaningful.
    poolSize: 1,
    extra: { ...createPgConfig(engine), types: pgTypes },
  });
  try {
    await dataSource.initialize();
  } catch (error) {
    if (ownsPglite) await engine.close().catch(() => undefined);
    lock?.release();
    throw error;
  }
  return {
    dataSource,
    engine: "pglite",
    close: async () => {
      try {
        await dataSource.destroy();
        if (ownsPglite) await engine.close();
      } finally {
        lock?.release();
      }
    },
  };
}

const silentLog = { warn: () => undefined } as unknown as Logger;

/** Why the first connection failed, as one line that names DATABASE_URL (never its password) and the fix. */
function databaseStartupError(error: unknown, databaseUrl: string): StartupError {
  const parsed = new URL(databaseUrl);
  const where = `${parsed.hostname || "localhost"}:${parsed.port || 5432}${parsed.pathname}`;
  const e = error as { code?: string; message?: string };
  const reason =
    e.code === "ENOTFOUND" || e.code === "EAI_AGAIN"
      ? `the host "${parsed.hostname}" does not resolve`
      : e.code === "ECONNREFUSED"
        ? "nothing accepts connections there"
        : e.code === "ETIMEDOUT"
          ? "the connection timed out"
          : e.code === "28P01" || e.code === "28000"
            ? "the user or password is refused"
            : e.code === "3D000"
              ? "that database does not exist (create it first)"
              : (e.message ?? String(error)).split("\n")[0];
  return new StartupError(
    `cannot connect to the database in DATABASE_URL (${where}): ${reason}. Check that PostgreSQL runs there and the URL is right, or unset DATABASE_URL for the embedded database.`,
  );
}
