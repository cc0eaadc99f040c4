import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import { trackChild } from "../support/run";
import { freeTcpPort } from "../support/ports";

/**
 * The README's quick start as a user runs it: `npm start` on the embedded defaults (no DATABASE_URL,
 * no REDIS_URL), the admin key printed once, data kept across restarts, and a clean SIGTERM.
 */
const root = path.resolve(__dirname, "../..");
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-process-"));

const freePort = freeTcpPort;

interface Started {
  child: ChildProcessWithoutNullStreams;
  url: string;
  stdout: () => string;
  exited: Promise<number | null>;
}

async function npmStart(port: number, extraEnv: Record<string, string> = {}): Promise<Started> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: "info", ...extraEnv };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.ADMIN_API_KEY;
  delete env.NODE_OPTIONS;
  // Jest sets NODE_ENV=test, which changes library behaviour (Apollo's signal handlers); run as a user would.
  delete env.NODE_ENV;
  const child = trackChild(spawn("npm", ["start"], { cwd: root, env }));
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const deadline = Date.now() + 150_000;
  while (!out.includes("PBX control plane listening on")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, url: `http://127.0.0.1:${port}`, stdout: () => out, exited };
}

const gql = async (url: string, key: string, query: string) =>
  (await (await fetch(`${url}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: JSON.stringify({ query }) })).json()) as {
    data?: Record<string, any>;
    errors?: unknown[];
  };

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

it("npm start: embedded defaults, key printed once, data survives a restart, SIGTERM exits 0 closing sockets with 1001", async () => {
  const port = await freePort();
  const first = await npmStart(port);
  const key = /Admin API key \(shown once, store it now\): (pbx_\S+)/.exec(first.stdout())?.[1];
  expect(key).toBeDefined();
  expect(first.stdout()).toContain("embedded PostgreSQL");
  expect(first.stdout()).toContain("in-process");

  const created = await gql(first.url, key!, `mutation { createTenant(input: { name: "Acme", slug: "acme", sipDomain: "acme.pbx.test", maxExtensions: 5 }) { id } }`);
  expect(created.errors).toBeUndefined();
  const tenantId = created.data!.createTenant.id as string;
  const ext = await gql(first.url, key!, `mutation { createExtension(input: { tenantId: "${tenantId}", extensionNumber: "1001", secret: "s3cur3p@ss" }) { id } }`);
  expect(ext.errors).toBeUndefined();

  // A live WebSocket is closed with 1001 (going away) on shutdown.
  const socket = new WebSocket(`ws://127.0.0.1:${port}/graphql`, "graphql-transport-ws");
  await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
  socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${key}` } }));
  await new Promise((resolve) => socket.once("message", resolve));
  const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));

  first.child.kill("SIGTERM");
  expect(await first.exited).toBe(0);
  expect(await closed).toBe(1001);
  expect(first.stdout()).toMatch(/"msg":"stopped"/);

  const second = await npmStart(port);
  try {
    expect(second.stdout()).not.toContain("shown once");
    const listed = await gql(second.url, key!, `{ extensions(tenantId: "${tenantId}") { totalCount nodes { extensionNumber hasSecret } } }`);
    expect(listed.data).toEqual({ extensions: { totalCount: 1, nodes: [{ extensionNumber: "1001", hasSecret: true }] } });
  } finally {
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  }
}, 400_000);
