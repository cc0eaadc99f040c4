import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { createExtension, createKey, createTenant } from "../support/factories";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { spawnServer, type ServerProcess } from "../support/process";
import { createTestSchema, dropTestSchema, startTestServer, type TestServer } from "../support/server";

/**
 * Safety round 3 (issue 19), the API process: one request must never end the process, freeze the
 * instance or echo what it should not.
 */
let ts: TestServer;
let tenantId: string;
let otherTenantId: string;
let keys: Record<string, string | null>;
const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);

beforeAll(async () => {
  process.on("unhandledRejection", onRejection);
  ts = await startTestServer();
  tenantId = (await createTenant(ts)).id;
  otherTenantId = (await createTenant(ts)).id;
  await createExtension(ts, tenantId);
  keys = {
    none: null,
    admin: ts.adminKey,
    viewer: await createKey(ts, "VIEWER", tenantId),
    otherViewer: await createKey(ts, "VIEWER", otherTenantId),
    tenantAdmin: await createKey(ts, "TENANT_ADMIN", tenantId),
    ingest: await createKey(ts, "INGEST", null),
  };
}, 60_000);
afterAll(async () => {
  process.off("unhandledRejection", onRejection);
  await ts?.stop();
});

/** POST /graphql as plain JSON (the compiled path) and as graphql-response+json (Apollo's resolvers). */
async function bothPaths(query: string, key: string | null): Promise<{ compiled: unknown; resolved: unknown; status: number }> {
  const post = async (accept: string) => {
    const res = await ts.http("/graphql", { method: "POST", key, headers: { "content-type": "application/json", accept }, body: JSON.stringify({ query }) });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  const compiled = await post("application/json");
  const resolved = await post("application/graphql-response+json");
  return { compiled: compiled.body, resolved: resolved.body, status: compiled.status };
}

describe("compiled reads with several roots (item 1)", () => {
  it("every failing root of every multi-root document is caught: the resolvers' answer, the process alive", async () => {
    const roots = (t: string, o: string) => [
      `cdrs(tenantId: ${t}) { nodes { id } }`,
      `cdrs(tenantId: ${o}, first: 2) { totalCount }`,
      `cdrs(tenantId: ${t}, after: "not-a-cursor") { nodes { id } }`,
      `tenant(id: "x") { id }`,
      `tenant(id: ${t}) { id name }`,
      `tenant(id: ${o}) { id }`,
      `tenant(id: "999999999") { id }`,
      `extensions(tenantId: ${o}) { totalCount }`,
      `extensions(tenantId: ${t}, after: "zz") { nodes { id } }`,
    ];
    const list = roots(tenantId, otherTenantId);
    const documents: string[] = [];
    for (let i = 0; i < list.length; i++) for (let j = 0; j < list.length; j++) if (i !== j) documents.push(`{ a: ${list[i]} b: ${list[j]} }`);
    // The probe's exact request, and a three-root variant.
    documents.unshift(`{ a: cdrs(tenantId: 1) { nodes { id } } b: tenant(id: "x") { id } }`, `{ a: cdrs(tenantId: ${tenantId}) { nodes { id } } b: tenant(id: "x") { id } c: cdrs(tenantId: ${otherTenantId}) { totalCount } }`);
    for (const who of ["none", "viewer", "otherViewer", "ingest"]) {
      for (const query of documents) {
        const { compiled, resolved } = await bothPaths(query, keys[who]);
        expect({ who, query, body: compiled }).toEqual({ who, query, body: resolved });
      }
    }
    // A late rejection shows up within a tick or two; let it, then check none was left unhandled.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(rejections).toEqual([]);
    expect((await ts.http("/healthz", { key: null })).status).toBe(200);
  }, 120_000);
});

/** The server as `npm start` runs it (one process, or a cluster), with the test-only fault routes. */
async function startProcess(env: Record<string, string>): Promise<{ server: ServerProcess; adminKey: string; cleanup: () => Promise<void> }> {
  const adminKey = `test-admin-${randomBytes(12).toString("hex")}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-guard-"));
  const schema = databaseUrl() ? await createTestSchema() : undefined;
  const server = await spawnServer({
    ADMIN_API_KEY: adminKey,
    DATA_DIR: dataDir,
    SECRET_ENCRYPTION_KEY: randomBytes(32).toString("hex"),
    TEST_FAULT_ROUTES: "1",
    DATABASE_URL: databaseUrl() ?? "",
    ...(schema ? { DATABASE_SCHEMA: schema } : {}),
    REDIS_URL: redisUrl() ?? "",
    REDIS_PREFIX: `test:guard:${randomBytes(4).toString("hex")}:`,
    ...env,
  });
  const cleanup = async () => {
    await server.stop();
    if (schema) await dropTestSchema(schema);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  return { server, adminKey, cleanup };
}

/** Fresh connections (a cluster spreads them over its workers), each request's answer. */
async function hitCrashingShapes(url: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const headers = { "content-type": "application/json", connection: "close" };
    const graphql = await fetch(`${url}/graphql`, { method: "POST", headers, body: JSON.stringify({ query: `{ a: cdrs(tenantId: ${i + 1}) { nodes { id } } b: tenant(id: "x") { id } }` }) });
    expect(graphql.status).toBe(200);
    expect(((await graphql.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0].extensions.code).toBe("UNAUTHENTICATED");
    for (const fault of ["rejection", "exception"]) {
      const requestId = `guard-${fault}-${i}`;
      const res = await fetch(`${url}/__faults/${fault}`, { method: "POST", headers: { ...headers, "x-request-id": requestId } });
      expect({ status: res.status, body: await res.json() }).toEqual({ status: 500, body: { message: "Server Error" } });
    }
  }
}

describe("the process guard (item 1): a failure in a request never ends the process", () => {
  it("one process: unhandled rejections and uncaught exceptions of requests answer 500, are logged with the request id, and it keeps serving", async () => {
    const { server, cleanup } = await startProcess({ LOG_LEVEL: "error" });
    try {
      await hitCrashingShapes(server.url, 3);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      expect(server.child.exitCode).toBeNull();
      const lines = server.output().split("\n").filter((line) => line.startsWith("{"));
      const logged = lines.map((line) => JSON.parse(line) as { requestId?: string; msg?: string }).filter((l) => l.requestId?.startsWith("guard-"));
      expect(logged.map((l) => l.requestId).sort()).toEqual(["guard-exception-0", "guard-exception-1", "guard-exception-2", "guard-rejection-0", "guard-rejection-1", "guard-rejection-2"]);
      // The compiled-read crash of item 1 is fixed at its root: nothing unhandled reached the guard.
      expect(lines.filter((line) => line.includes("Unauthenticated"))).toEqual([]);
    } finally {
      await cleanup();
    }
  }, 120_000);

  const real = requireReal("redis") && requireReal("postgres");
  (real ? it : it.skip)("WEB_CONCURRENCY=2: both workers survive the same requests, no worker is replaced", async () => {
    const { server, cleanup } = await startProcess({ WEB_CONCURRENCY: "2", LOG_LEVEL: "error" });
    try {
      await hitCrashingShapes(server.url, 6);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      expect(server.output()).not.toContain("a worker exited");
      expect(server.child.exitCode).toBeNull();
    } finally {
      await cleanup();
    }
  }, 150_000);
});
