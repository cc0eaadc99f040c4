import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import path from "node:path";
import pg from "pg";

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface BenchServer {
  child: ChildProcess;
  port: number;
  base: string;
  adminKey: string;
  /** The Redis key and channel prefix the server uses. */
  prefix: string;
  redisUrl: string;
  /** Runs a GraphQL document as `key` (the admin key by default); fails on any error. */
  gql(query: string, key?: string): Promise<any>;
  stop(): Promise<void>;
}

/**
 * Starts the built server (dist/src/main.js) with DATABASE_URL and REDIS_URL (both required) on
 * its own schema and Redis prefix, logging at warn; stop() ends it and drops the schema.
 */
export async function startBenchServer(name: string): Promise<BenchServer> {
  const databaseUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!databaseUrl || !redisUrl) throw new Error(`bench:${name} needs DATABASE_URL and REDIS_URL`);
  const schema = `bench_${name}_${randomBytes(3).toString("hex")}`;
  const prefix = `bench:${randomBytes(3).toString("hex")}:`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const port = await freePort();
  const adminKey = `bench-${randomBytes(16).toString("hex")}`;
  const child = spawn(process.execPath, [path.resolve(__dirname, "../../src/main.js")], {
    env: { ...process.env, NODE_ENV: process.env.NODE_ENV ?? "production", PORT: String(port), HOST: "127.0.0.1", DATABASE_SCHEMA: schema, REDIS_PREFIX: prefix, ADMIN_API_KEY: adminKey, LOG_LEVEL: "warn", SECRET_ENCRYPTION_KEY: randomBytes(32).toString("hex") },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("listening on")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    child,
    port,
    base,
    adminKey,
    prefix,
    redisUrl,
    gql: async (query, key = adminKey) => {
      const res = await fetch(`${base}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: JSON.stringify({ query }) });
      const body = (await res.json()) as { data: any; errors?: unknown };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data;
    },
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
}
