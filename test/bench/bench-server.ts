import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import path from "node:path";
import pg from "pg";

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface BenchServer {
  port: number;
  adminKey: string;
  /** The PostgreSQL schema and Redis key prefix of this run only. */
  schema: string;
  prefix: string;
  child: ChildProcess;
  /** An admin connection to the database (search_path not set: name `${schema}.table`). */
  db: pg.Client;
  /** Stops the server (SIGTERM), drops the schema and closes the connection. */
  stop(): Promise<void>;
}

/**
 * Starts the built server (dist/src/main.js) with DATABASE_URL and REDIS_URL (both required) in a
 * schema and Redis prefix of its own, as `npm start` runs it (NODE_ENV=production unless told
 * otherwise), logging at warn. BENCH_NODE_ARGS passes node options to it (e.g. `--cpu-prof`).
 */
export async function startBenchServer(name: string): Promise<BenchServer> {
  const databaseUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!databaseUrl || !redisUrl) throw new Error(`bench:${name} needs DATABASE_URL and REDIS_URL`);
  const run = randomBytes(3).toString("hex");
  const schema = `bench_${name}_${run}`;
  const prefix = `bench:${run}:`;
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  await db.query(`CREATE SCHEMA ${schema}`);
  const port = await freePort();
  const adminKey = `bench-${randomBytes(16).toString("hex")}`;
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, path.resolve(__dirname, "../../src/main.js")], {
    env: {
      ...process.env,
      NODE_ENV: process.env.NODE_ENV ?? "production",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATABASE_SCHEMA: schema,
      REDIS_PREFIX: prefix,
      ADMIN_API_KEY: adminKey,
      LOG_LEVEL: "warn",
      SECRET_ENCRYPTION_KEY: randomBytes(32).toString("hex"),
    },
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
  return {
    port,
    adminKey,
    schema,
    prefix,
    child,
    db,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      await db.query(`DROP SCHEMA ${schema} CASCADE`);
      await db.end();
    },
  };
}
