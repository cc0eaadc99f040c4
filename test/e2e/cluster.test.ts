import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import WebSocket from "ws";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { buildServer, spawnServer, type ServerProcess } from "../support/process";
import { createTestSchema, dropTestSchema } from "../support/server";

/**
 * WEB_CONCURRENCY=2: one primary, two worker processes on one port. Connections are spread over the
 * workers, events still reach every subscriber (through Redis), and SIGTERM drains them all.
 */
const real = requireReal("redis") && requireReal("postgres");

(real ? describe : describe.skip)("WEB_CONCURRENCY=2", () => {
  const adminKey = `test-admin-${randomBytes(12).toString("hex")}`;
  let schema: string;
  let server: ServerProcess;
  const prefix = `test:${randomBytes(4).toString("hex")}:`;

  const gql = async (query: string) => {
    const res = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminKey}` },
      body: JSON.stringify({ query }),
    });
    return (await res.json()) as { data: any; errors?: unknown };
  };

  beforeAll(async () => {
    schema = await createTestSchema();
    server = await spawnServer({
      WEB_CONCURRENCY: "2",
      DATABASE_URL: databaseUrl()!,
      DATABASE_SCHEMA: schema,
      REDIS_URL: redisUrl()!,
      REDIS_PREFIX: prefix,
      ADMIN_API_KEY: adminKey,
      SECRET_ENCRYPTION_KEY: randomBytes(32).toString("hex"),
      LOG_LEVEL: "info",
    });
  }, 90_000);

  afterAll(async () => {
    if (server && server.child.exitCode === null) await server.stop();
    if (schema) await dropTestSchema(schema);
  });

  it("serves from two workers, migrated once, announced once", async () => {
    expect(server.output()).toContain("(2 worker processes)");
    expect(server.output().match(/PBX control plane listening/g)).toHaveLength(1);
    // New connections are spread over the workers; each answers /metrics with its own pid.
    const pids = new Set<string>();
    for (let i = 0; i < 20 && pids.size < 2; i++) {
      const metrics = await (await fetch(`${server.url}/metrics`, { headers: { connection: "close" } })).text();
      pids.add(/^pbx_instance_info\{pid="(\d+)"\} 1/m.exec(metrics)?.[1] ?? "none");
    }
    expect([...pids].filter((pid) => pid !== "none")).toHaveLength(2);
    expect(pids.has(String(server.child.pid))).toBe(false);
    const created = await gql(`mutation { createTenant(input: { name: "C", slug: "cluster", sipDomain: "cluster.pbx.test", maxExtensions: 2 }) { id } }`);
    expect(created.errors).toBeUndefined();
  });

  it("a SIGTERM drains every worker: sockets close with 1001 and the primary exits 0", async () => {
    const sockets = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const socket = new WebSocket(server.wsUrl, "graphql-transport-ws");
        await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
        socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${adminKey}` } }));
        await new Promise((resolve) => socket.once("message", resolve));
        // Wrapped, so that Promise.all waits for the handshakes, not for the closes.
        return { closed: new Promise<number>((resolve) => socket.once("close", (code) => resolve(code))) };
      }),
    );
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    expect(await Promise.all(sockets.map((s) => s.closed))).toEqual([1001, 1001, 1001, 1001]);
  });
});

describe("WEB_CONCURRENCY refusals", () => {
  it("refuses several workers on the embedded defaults, with a clear message and exit 78", async () => {
    const outDir = await buildServer();
    const env: Record<string, string> = { ...(process.env as Record<string, string>), WEB_CONCURRENCY: "2" };
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    const child = spawn(process.execPath, [path.join(outDir, "src/main.js")], { env });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(78);
    expect(stderr).toContain("WEB_CONCURRENCY > 1 needs DATABASE_URL and REDIS_URL");
  });
});
