import {
  ApiKeysDocument,
  CreateApiKeyDocument,
  CreateExtensionDocument,
  DeleteExtensionDocument,
  DeleteTenantDocument,
  ExtensionDocument,
  ExtensionsDocument,
  MeDocument,
  RevokeApiKeyDocument,
  RotateExtensionSecretDocument,
  TenantDocument,
  TenantExtensionsDocument,
  TenantsDocument,
  UpdateExtensionDocument,
  UpdateTenantDocument,
} from "../graphql/generated";
import { createExtension, tenantWithKeys } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";

/** Invariant 4: a key of tenant B can neither read, change nor learn of tenant A's data. */
let ts: TestServer;
let a: Awaited<ReturnType<typeof tenantWithKeys>>;
let b: Awaited<ReturnType<typeof tenantWithKeys>>;
let extA: Awaited<ReturnType<typeof createExtension>>;
let keyOfA: string;

beforeAll(async () => {
  ts = await startTestServer();
  a = await tenantWithKeys(ts, { name: "Tenant A" });
  b = await tenantWithKeys(ts, { name: "Tenant B" });
  extA = await createExtension(ts, a.tenant.id, { extensionNumber: "1001", displayName: "Alice of A", email: "alice@a.test" });
  await createExtension(ts, b.tenant.id, { extensionNumber: "2001", displayName: "Bob of B" });
  const { apiKeys } = await ts.ok(ApiKeysDocument, { tenantId: a.tenant.id });
  keyOfA = apiKeys[0].id;
});
afterAll(() => ts?.stop());

const codeOf = (r: { errors?: Array<{ extensions?: { code?: string } }> }) => r.errors?.[0]?.extensions?.code;
const missingId = "2147483000";

describe.each([
  ["TENANT_ADMIN", () => b.adminKey],
  ["VIEWER", () => b.viewerKey],
])("a %s key of tenant B", (_role, key) => {
  it("reads tenant A as NOT_FOUND, exactly like an id that does not exist", async () => {
    const foreign = await ts.gql(TenantDocument, { id: a.tenant.id }, key());
    const missing = await ts.gql(TenantDocument, { id: missingId }, key());
    expect(codeOf(foreign)).toBe("NOT_FOUND");
    expect(foreign.errors![0].message).toBe(missing.errors![0].message);
    expect(codeOf(await ts.gql(TenantExtensionsDocument, { id: a.tenant.id }, key()))).toBe("NOT_FOUND");
  });

  it("reads A's extension as NOT_FOUND and lists none of A's extensions", async () => {
    const foreign = await ts.gql(ExtensionDocument, { id: extA.id }, key());
    const missing = await ts.gql(ExtensionDocument, { id: missingId }, key());
    expect(codeOf(foreign)).toBe("NOT_FOUND");
    expect(foreign.errors![0].message).toBe(missing.errors![0].message);
    expect(codeOf(await ts.gql(ExtensionsDocument, { tenantId: a.tenant.id }, key()))).toBe("NOT_FOUND");
    const own = await ts.ok(ExtensionsDocument, { first: 100 }, key());
    expect(own.extensions.nodes.map((e) => e.tenantId)).toEqual([b.tenant.id]);
    const searched = await ts.ok(ExtensionsDocument, { search: "alice" }, key());
    expect(searched.extensions.totalCount).toBe(0);
  });

  it("sees only its own tenant in `tenants`", async () => {
    const { tenants } = await ts.ok(TenantsDocument, {}, key());
    expect(tenants.map((t) => t.id)).toEqual([b.tenant.id]);
  });
});

describe("a TENANT_ADMIN key of tenant B cannot change tenant A", () => {
  it("cannot create an extension in A (NOT_FOUND), and A is unchanged", async () => {
    const r = await ts.gql(CreateExtensionDocument, { input: { tenantId: a.tenant.id, extensionNumber: "1999", secret: "s3cur3p@ss-long" } }, b.adminKey);
    expect(codeOf(r)).toBe("NOT_FOUND");
    const list = await ts.ok(ExtensionsDocument, { tenantId: a.tenant.id, first: 100 });
    expect(list.extensions.nodes.map((e) => e.extensionNumber)).toEqual(["1001"]);
  });

  it("cannot update, rotate or delete A's extension, and it is unchanged", async () => {
    for (const r of [
      await ts.gql(UpdateExtensionDocument, { id: extA.id, input: { displayName: "pwned" } }, b.adminKey),
      await ts.gql(RotateExtensionSecretDocument, { id: extA.id }, b.adminKey),
      await ts.gql(DeleteExtensionDocument, { id: extA.id, force: true }, b.adminKey),
    ]) {
      expect(codeOf(r)).toBe("NOT_FOUND");
    }
    const { extension } = await ts.ok(ExtensionDocument, { id: extA.id });
    expect(extension).toMatchObject({ displayName: "Alice of A", updatedAt: extA.updatedAt });
  });

  it("cannot touch tenants at all (platform operations are ADMIN-only)", async () => {
    expect(codeOf(await ts.gql(UpdateTenantDocument, { id: a.tenant.id, input: { name: "x" } }, b.adminKey))).toBe("FORBIDDEN");
    expect(codeOf(await ts.gql(DeleteTenantDocument, { id: a.tenant.id, force: true }, b.adminKey))).toBe("FORBIDDEN");
    const { tenant } = await ts.ok(TenantDocument, { id: a.tenant.id });
    expect(tenant.name).toBe("Tenant A");
  });

  it("cannot list, create or revoke A's API keys", async () => {
    expect(codeOf(await ts.gql(ApiKeysDocument, { tenantId: a.tenant.id }, b.adminKey))).toBe("NOT_FOUND");
    expect(codeOf(await ts.gql(CreateApiKeyDocument, { input: { name: "x", role: "VIEWER", tenantId: a.tenant.id } }, b.adminKey))).toBe("NOT_FOUND");
    expect(codeOf(await ts.gql(RevokeApiKeyDocument, { id: keyOfA }, b.adminKey))).toBe("NOT_FOUND");
    const me = await ts.ok(MeDocument, {}, a.adminKey);
    expect(me.me).toEqual({ role: "TENANT_ADMIN", tenantId: a.tenant.id });
  });
});

describe("refusals by role reveal nothing about existence", () => {
  it("a VIEWER changing an existing or a missing extension gets the same FORBIDDEN", async () => {
    for (const id of [extA.id, missingId]) {
      expect(codeOf(await ts.gql(UpdateExtensionDocument, { id, input: { displayName: "x" } }, b.viewerKey))).toBe("FORBIDDEN");
      expect(codeOf(await ts.gql(DeleteExtensionDocument, { id }, b.viewerKey))).toBe("FORBIDDEN");
    }
  });

  it("an INGEST key reading an existing or a missing extension gets the same FORBIDDEN", async () => {
    const { createApiKey } = await ts.ok(CreateApiKeyDocument, { input: { name: "engine", role: "INGEST" } });
    for (const id of [extA.id, missingId]) expect(codeOf(await ts.gql(ExtensionDocument, { id }, createApiKey.key))).toBe("FORBIDDEN");
  });
});

describe("a VIEWER key", () => {
  it("reads its tenant but cannot write (FORBIDDEN) and changes nothing", async () => {
    const r = await ts.gql(CreateExtensionDocument, { input: { tenantId: b.tenant.id, extensionNumber: "2999", secret: "s3cur3p@ss-long" } }, b.viewerKey);
    expect(codeOf(r)).toBe("FORBIDDEN");
    expect(codeOf(await ts.gql(CreateApiKeyDocument, { input: { name: "x", role: "VIEWER" } }, b.viewerKey))).toBe("FORBIDDEN");
    const list = await ts.ok(ExtensionsDocument, { first: 100 }, b.viewerKey);
    expect(list.extensions.nodes.map((e) => e.extensionNumber)).toEqual(["2001"]);
  });
});
