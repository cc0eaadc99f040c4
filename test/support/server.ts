import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Redis } from "ioredis";
import { print } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { loadConfig } from "../../src/config/config";
import { createLogger } from "../../src/common/logger";
import { startServer, type RunningServer } from "../../src/server/app";
import { databaseUrl, pgliteDumpPath, redisUrl } from "./env";

export interface GraphQLResponse<T> {
  data?: T | null;
  errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, unknown> & { code?: string; fields?: Record<string, string[]> } }>;
}

export interface TestServer {
  url: string;
  wsUrl: string;
  adminKey: string;
  server: RunningServer;
  /** The PostgreSQL schema it works in (DATABASE_URL), or undefined on the embedded database. */
  schema: string | undefined;
  /** Its Redis key prefix (REDIS_URL), or undefined without Redis: the stream is `${redisPrefix}pbx:events`. */
  redisPrefix: string | undefined;
  /** Runs a typed operation over HTTP as the holder of `key` (the admin key by default). */
  gql<TData, TVars>(doc: TypedDocumentNode<TData, TVars>, variables?: TVars, key?: string | null): Promise<GraphQLResponse<TData>>;
  /** Like gql, but fails the test on any error and returns data. */
  ok<TData, TVars>(doc: TypedDocumentNode<TData, TVars>, variables?: TVars, key?: string | null): Promise<TData>;
  /** fetch against this server with a Bearer key. */
  http(pathname: string, init?: RequestInit & { key?: string | null }): Promise<Response>;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  env?: Record<string, string>;
  /** Reuse another server's database schema (several instances on one database). */
  shareSchemaOf?: TestServer;
  /** Use Redis when REDIS_URL is set (default true). */
  redis?: boolean;
  /** Receives every log line (JSON) at LOG_LEVEL (debug by default when given). */
  logSink?: (line: string) => void;
}

let counter = 0;

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A fresh, empty PostgreSQL schema (DATABASE_URL) for one server or one group of servers. */
export async function createTestSchema(): Promise<string> {
  const schema = `t_${process.pid}_${++counter}_${randomBytes(3).toString("hex")}`;
  await adminQuery(`CREATE SCHEMA ${schema}`);
  return schema;
}

export async function dropTestSchema(schema: string): Promise<void> {
  await adminQuery(`DROP SCHEMA ${schema} CASCADE`);
}

/** Starts the real server on a random port with its own database (schema or embedded copy). */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const adminKey = `test-admin-${randomBytes(12).toString("hex")}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-test-data-"));
  const url = databaseUrl();
  let schema: string | undefined = options.shareSchemaOf ? (options.shareSchemaOf as TestServerInternal).schema : undefined;
  const ownsSchema = url !== undefined && schema === undefined;
  if (ownsSchema) schema = await createTestSchema();
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    ADMIN_API_KEY: options.shareSchemaOf?.adminKey ?? adminKey,
    DATA_DIR: options.shareSchemaOf ? (options.shareSchemaOf as TestServerInternal).dataDir : dataDir,
    LOG_LEVEL: options.logSink ? "debug" : (process.env.TEST_LOG_LEVEL ?? "silent"),
    ...(url ? { DATABASE_URL: url, DATABASE_SCHEMA: schema! } : {}),
    ...(options.redis !== false && redisUrl() ? { REDIS_URL: redisUrl()!, REDIS_PREFIX: `test:${process.env.PBX_TEST_RUN_ID ?? "x"}:${schema ?? process.pid}:` } : {}),
    ...options.env,
  });
  const server = await startServer(config, {
    log: createLogger(config.logLevel, options.logSink ? { write: (line: string) => options.logSink!(line) } : undefined),
    database: url ? undefined : { pgliteLoadDataDir: new Blob([fs.readFileSync(pgliteDumpPath())]) },
  });
  const key = options.shareSchemaOf?.adminKey ?? adminKey;
  const base = `http://127.0.0.1:${server.port}`;

  const http: TestServer["http"] = (pathname, init = {}) => {
    const { key: useKey = key, headers, ...rest } = init;
    const h = new Headers(headers);
    if (useKey) h.set("authorization", `Bearer ${useKey}`);
    return fetch(base + pathname, { ...rest, headers: h });
  };
  const gql: TestServer["gql"] = async (doc, variables, useKey = key) => {
    const res = await http("/graphql", {
      method: "POST",
      key: useKey,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: print(doc), variables }),
    });
    return (await res.json()) as GraphQLResponse<never>;
  };
  const ok: TestServer["ok"] = async (doc, variables, useKey) => {
    const result = await gql(doc, variables, useKey);
    if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
    return result.data as never;
  };
  const stop = async () => {
    await server.stop();
    if (ownsSchema) await dropTestSchema(schema!);
    // The consumer group's stream outlives the server in the shared Redis: remove this run's.
    if (config.redisUrl && !options.shareSchemaOf) {
      const redis = new Redis(config.redisUrl);
      await redis.del(`${config.redisPrefix}pbx:events`).finally(() => redis.quit());
    }
    if (!options.shareSchemaOf) fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const result: TestServerInternal = {
    url: base,
    wsUrl: base.replace(/^http/, "ws") + "/graphql",
    adminKey: key,
    server,
    schema,
    redisPrefix: config.redisUrl ? config.redisPrefix : undefined,
    gql,
    ok,
    http,
    stop,
    dataDir,
  };
  return result;
}

interface TestServerInternal extends TestServer {
  dataDir: string;
}
