import {
  ApiKeysDocument,
  CreateApiKeyDocument,
  CreateTenantDocument,
  ExtensionsDocument,
  MeDocument,
  RevokeApiKeyDocument,
  TenantsDocument,
} from "../graphql/generated";
import { createExtension, createKey, createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer({ env: { ENGINE_API_KEY: engineKey } });
});
afterAll(() => ts?.stop());

/** The SIP engine's key as `npm run pbx` hands it over: an INGEST key accepted as given. */
const engineKey = `engine-key-${Date.now().toString(36)}-0123456789`;

const codeOf = (r: { errors?: Array<{ extensions?: { code?: string } }> }) => r.errors?.[0]?.extensions?.code;

describe("authentication", () => {
  it.each([
    ["no key", null],
    ["a malformed key", "not a key"],
    ["an unknown key", "pbx_unknownunknownunknownunknownunknown00000"],
  ])("answers UNAUTHENTICATED to %s", async (_what, key) => {
    const r = await ts.gql(MeDocument, {}, key);
    expect(codeOf(r)).toBe("UNAUTHENTICATED");
    expect(r.data).toBeNull();
  });

  it("accepts the ADMIN_API_KEY as given", async () => {
    expect((await ts.ok(MeDocument, {})).me).toEqual({ role: "ADMIN", tenantId: null });
  });

  it("accepts the ENGINE_API_KEY as a platform-wide INGEST key: it asks for credentials, it reads nothing else", async () => {
    const tenant = await createTenant(ts);
    await createExtension(ts, tenant.id, { extensionNumber: "1001" });
    const ask = (key: string) => ts.http(`/api/engine/credentials?domain=${tenant.sipDomain}&username=1001`, { key });
    const found = await ask(engineKey);
    expect(found.status).toBe(200);
    expect(((await found.json()) as { data: { username: string } }).data.username).toBe("1001");
    expect((await ask(`${engineKey}x`)).status).toBe(401);
    expect((await ts.gql(MeDocument, {}, engineKey)).data?.me).toEqual({ role: "INGEST", tenantId: null });
    const list = await ts.http("/api/extensions", { key: engineKey });
    expect(list.status).toBe(403);
  });

  it("also refuses a key sent without the Bearer scheme", async () => {
    const res = await ts.http("/graphql", {
      key: null,
      method: "POST",
      headers: { "content-type": "application/json", authorization: ts.adminKey },
      body: JSON.stringify({ query: "{ me { role } }" }),
    });
    const body = (await res.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0].extensions.code).toBe("UNAUTHENTICATED");
  });
});

describe("API keys", () => {
  it("shows a new key once, stores only its hash, and the key works with its role", async () => {
    const tenant = await createTenant(ts);
    const { createApiKey } = await ts.ok(CreateApiKeyDocument, { input: { name: "wallboard", role: "VIEWER", tenantId: tenant.id } });
    expect(createApiKey.key).toMatch(/^pbx_[A-Za-z0-9_-]{43}$/);
    expect(createApiKey.apiKey).toMatchObject({ name: "wallboard", role: "VIEWER", tenantId: tenant.id, revokedAt: null });
    expect(createApiKey.key.startsWith(createApiKey.apiKey.prefix)).toBe(true);
    const rows = await ts.server.db.dataSource.query(`SELECT key_hash FROM api_key WHERE id = $1`, [createApiKey.apiKey.id]);
    expect(rows[0].key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0].key_hash).not.toContain(createApiKey.key);
    expect((await ts.ok(MeDocument, {}, createApiKey.key)).me).toEqual({ role: "VIEWER", tenantId: tenant.id });
    const listed = await ts.ok(ApiKeysDocument, { tenantId: tenant.id });
    expect(JSON.stringify(listed)).not.toContain(createApiKey.key);
  });

  it("a revoked key stops working at once", async () => {
    const tenant = await createTenant(ts);
    const { createApiKey } = await ts.ok(CreateApiKeyDocument, { input: { name: "temp", role: "TENANT_ADMIN", tenantId: tenant.id } });
    await ts.ok(ExtensionsDocument, {}, createApiKey.key);
    await ts.ok(RevokeApiKeyDocument, { id: createApiKey.apiKey.id });
    expect(codeOf(await ts.gql(ExtensionsDocument, {}, createApiKey.key))).toBe("UNAUTHENTICATED");
  });

  it("refuses keys whose tenant scope does not fit the role, creating nothing", async () => {
    const before = (await ts.ok(ApiKeysDocument, {})).apiKeys.length;
    const viewerWithoutTenant = await ts.gql(CreateApiKeyDocument, { input: { name: "x", role: "VIEWER" } });
    expect(viewerWithoutTenant.errors?.[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", fields: { tenantId: [expect.any(String)] } });
    const tenant = await createTenant(ts);
    const adminWithTenant = await ts.gql(CreateApiKeyDocument, { input: { name: "x", role: "ADMIN", tenantId: tenant.id } });
    expect(codeOf(adminWithTenant)).toBe("BAD_USER_INPUT");
    const unknownTenant = await ts.gql(CreateApiKeyDocument, { input: { name: "x", role: "VIEWER", tenantId: "999999" } });
    expect(codeOf(unknownTenant)).toBe("NOT_FOUND");
    const emptyName = await ts.gql(CreateApiKeyDocument, { input: { name: "", role: "INGEST" } });
    expect(emptyName.errors?.[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", fields: { name: [expect.any(String)] } });
    expect((await ts.ok(ApiKeysDocument, {})).apiKeys.length).toBe(before);
  });

  it("a TENANT_ADMIN creates keys for its own tenant only, never ADMIN keys", async () => {
    const tenant = await createTenant(ts);
    const tenantAdmin = await createKey(ts, "TENANT_ADMIN", tenant.id);
    const own = await ts.ok(CreateApiKeyDocument, { input: { name: "viewer", role: "VIEWER" } }, tenantAdmin);
    expect(own.createApiKey.apiKey.tenantId).toBe(tenant.id);
    expect(codeOf(await ts.gql(CreateApiKeyDocument, { input: { name: "root", role: "ADMIN" } }, tenantAdmin))).toBe("FORBIDDEN");
  });
});

describe("roles", () => {
  it("INGEST reads nothing", async () => {
    const ingest = await createKey(ts, "INGEST", null);
    expect(codeOf(await ts.gql(TenantsDocument, {}, ingest))).toBe("FORBIDDEN");
    expect(codeOf(await ts.gql(ExtensionsDocument, {}, ingest))).toBe("FORBIDDEN");
    expect((await ts.ok(MeDocument, {}, ingest)).me.role).toBe("INGEST");
  });

  it("only ADMIN creates tenants", async () => {
    const tenant = await createTenant(ts);
    const tenantAdmin = await createKey(ts, "TENANT_ADMIN", tenant.id);
    const r = await ts.gql(CreateTenantDocument, { input: { name: "x", slug: "x-forbidden", sipDomain: "x.forbidden.test", maxExtensions: 1 } }, tenantAdmin);
    expect(codeOf(r)).toBe("FORBIDDEN");
  });
});
