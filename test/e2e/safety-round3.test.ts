import { createExtension, createKey, createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";

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
