import { tenantWithKeys } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { restClient, type Rest } from "./rest-support";

let ts: TestServer;
let rest: Rest;
beforeAll(async () => {
  ts = await startTestServer();
  rest = restClient(ts);
});
afterAll(() => ts?.stop());

const SECRET = "s3cur3p@ss";
const sql = <T = any>(text: string, params: unknown[] = []): Promise<T[]> => ts.server.db.dataSource.query(text, params);

describe("invariant 4 through REST: another tenant's extension answers exactly like a missing one", () => {
  let a: Awaited<ReturnType<typeof tenantWithKeys>>;
  let b: Awaited<ReturnType<typeof tenantWithKeys>>;
  let theirs: Record<string, any>;
  let theirSecret: string;
  const MISSING = 2_000_000_000;

  beforeAll(async () => {
    a = await tenantWithKeys(ts);
    b = await tenantWithKeys(ts);
    const r = await rest("POST", "/api/extensions", {
      key: a.adminKey,
      json: { tenant_id: Number(a.tenant.id), extension_number: "1001", display_name: "Hidden Alice", email: "hidden@a.example.com", secret: SECRET },
    });
    theirs = r.body.data;
    const [queue] = await sql(`INSERT INTO queue (tenant_id, name, number) VALUES ($1, 'A sales', '600') RETURNING id`, [Number(a.tenant.id)]);
    await sql(`INSERT INTO queue_agent (tenant_id, queue_id, extension_id) VALUES ($1, $2, $3)`, [Number(a.tenant.id), queue.id, theirs.id]);
    [{ c: theirSecret }] = await sql(`SELECT secret_ciphertext AS c FROM extension WHERE id = $1`, [theirs.id]);
    await rest("POST", "/api/extensions", { key: b.adminKey, json: { tenant_id: Number(b.tenant.id), extension_number: "1001", secret: SECRET } });
  });

  afterEach(async () => {
    expect((await rest("GET", `/api/extensions/${theirs.id}`, { key: a.viewerKey })).body.data).toEqual(theirs);
    expect((await sql(`SELECT secret_ciphertext AS c FROM extension WHERE id = $1`, [theirs.id]))[0].c).toBe(theirSecret);
    expect((await sql(`SELECT count(*)::int AS n FROM queue_agent WHERE extension_id = $1`, [theirs.id]))[0].n).toBe(1);
    expect((await sql(`SELECT count(*)::int AS n FROM extension WHERE tenant_id = $1`, [Number(a.tenant.id)]))[0].n).toBe(1);
  });

  const replaceBody = () => ({ tenant_id: Number(b.tenant.id), extension_number: "1001", display_name: "Mine now", secret: "t4ken-over" });

  it.each([
    ["GET", "", undefined],
    ["PUT", "", "replace"],
    ["PATCH", "", "patch"],
    ["DELETE", "", undefined],
    ["DELETE", "?force=true", undefined],
  ])("%s%s by tenant B is 404, identical to a missing id, and changes nothing", async (method, query, kind) => {
    const json = kind === "replace" ? replaceBody() : kind === "patch" ? { display_name: "Mine now" } : undefined;
    for (const key of [b.adminKey, b.viewerKey].slice(0, method === "GET" ? 2 : 1)) {
      const foreign = await rest(method, `/api/extensions/${theirs.id}${query}`, { key, json });
      const missing = await rest(method, `/api/extensions/${MISSING}${query}`, { key, json });
      expect(foreign.status).toBe(404);
      expect(foreign.text).toBe(missing.text);
      expect(foreign.body).toEqual({ message: "Extension not found." });
    }
  });

  it("a PUT naming tenant A's own id from tenant B is still 404", async () => {
    const r = await rest("PUT", `/api/extensions/${theirs.id}`, { key: b.adminKey, json: { ...replaceBody(), tenant_id: Number(a.tenant.id) } });
    expect(r.status).toBe(404);
  });

  it("tenant B's list never shows tenant A's rows, whatever it searches", async () => {
    for (const key of [b.adminKey, b.viewerKey]) {
      const all = await rest("GET", "/api/extensions?per_page=100", { key });
      expect(all.body.data.map((e: { tenant_id: number }) => e.tenant_id)).toEqual([Number(b.tenant.id)]);
      expect(all.body.meta.total).toBe(1);
      const search = await rest("GET", "/api/extensions?search=hidden", { key });
      expect(search.body.data).toEqual([]);
      expect(search.body.meta.total).toBe(0);
    }
  });

  it("tenant B naming tenant A in a list is refused exactly like a tenant that does not exist", async () => {
    const foreign = await rest("GET", `/api/extensions?tenant_id=${a.tenant.id}`, { key: b.viewerKey });
    const missing = await rest("GET", `/api/extensions?tenant_id=${MISSING}`, { key: b.viewerKey });
    expect(foreign.status).toBe(422);
    expect(foreign.body).toEqual({ message: "Tenant not found.", errors: { tenant_id: ["The selected tenant does not exist."] } });
    expect(foreign.text).toBe(missing.text);
  });

  it("tenant B creating in tenant A is refused exactly like a tenant that does not exist (and as an ADMIN naming a missing one)", async () => {
    const body = (tenantId: number) => ({ tenant_id: tenantId, extension_number: "7777", secret: SECRET });
    const foreign = await rest("POST", "/api/extensions", { key: b.adminKey, json: body(Number(a.tenant.id)) });
    const missing = await rest("POST", "/api/extensions", { key: b.adminKey, json: body(MISSING) });
    const adminMissing = await rest("POST", "/api/extensions", { json: body(MISSING) });
    expect(foreign.status).toBe(422);
    expect(foreign.body).toEqual({ message: "Tenant not found.", errors: { tenant_id: ["The selected tenant does not exist."] } });
    expect(missing.text).toBe(foreign.text);
    expect(adminMissing.text).toBe(foreign.text);
  });

  it("a tenant key may omit tenant_id in a list (its own is meant); an ADMIN sees both tenants", async () => {
    const own = await rest("GET", `/api/extensions?tenant_id=${a.tenant.id}`, { key: a.viewerKey });
    expect(own.body.data).toEqual([theirs]);
    const admin = await rest("GET", "/api/extensions?per_page=100");
    const tenants = new Set(admin.body.data.map((e: { tenant_id: number }) => e.tenant_id));
    expect(tenants).toEqual(new Set([Number(a.tenant.id), Number(b.tenant.id)]));
  });
});

describe("invariants 1 and 2 under concurrent REST requests", () => {
  it("12 parallel POSTs at a tenant with room for 5 create exactly 5; the rest are 422 on tenant_id", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts, { maxExtensions: 5 });
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        rest("POST", "/api/extensions", { key: adminKey, json: { tenant_id: Number(tenant.id), extension_number: String(2000 + i), secret: SECRET } }),
      ),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(5);
    const refused = results.filter((r) => r.status === 422);
    expect(refused).toHaveLength(7);
    for (const r of refused) expect(r.body.errors).toEqual({ tenant_id: ["The tenant has reached its limit of 5 extensions."] });
    const list = await rest("GET", "/api/extensions?per_page=100", { key: adminKey });
    expect(list.body.meta.total).toBe(5);
    expect(list.body.data.map((e: { id: number }) => e.id).sort()).toEqual(
      results.filter((r) => r.status === 201).map((r) => r.body.data.id).sort(),
    );
  });

  it("8 parallel POSTs of one number create it once; the rest are 422 on extension_number", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts, { maxExtensions: 20 });
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        rest("POST", "/api/extensions", { key: adminKey, json: { tenant_id: Number(tenant.id), extension_number: "3001", secret: SECRET } }),
      ),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 201)) {
      expect(r.status).toBe(422);
      expect(r.body.errors).toEqual({ extension_number: ["The extension number has already been taken."] });
    }
  });

  it("parallel PUTs moving two extensions onto one number leave it on exactly one", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const make = (n: string) => rest("POST", "/api/extensions", { key: adminKey, json: { tenant_id: Number(tenant.id), extension_number: n, secret: SECRET } });
    const [x, y] = await Promise.all([make("4001"), make("4002")]);
    const results = await Promise.all(
      [x, y].map((e) => rest("PUT", `/api/extensions/${e.body.data.id}`, { key: adminKey, json: { tenant_id: Number(tenant.id), extension_number: "4999" } })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 422]);
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM extension WHERE tenant_id = $1 AND extension_number = '4999'`, [Number(tenant.id)]);
    expect(n).toBe(1);
  });
});
