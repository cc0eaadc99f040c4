import {
  CreateExtensionDocument,
  CreateTenantDocument,
  DeleteExtensionDocument,
  DeleteTenantDocument,
  ExtensionDocument,
  ExtensionsDocument,
  TenantExtensionsDocument,
  TenantDocument,
  AllTenantsExtensionsDocument,
  UpdateExtensionDocument,
  UpdateTenantDocument,
  type TenantExtensionsQuery,
} from "../graphql/generated";
import { createExtension, createTenant, tenantWithKeys, uniq } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
});
afterAll(() => ts?.stop());

const errorOf = (r: { errors?: Array<{ extensions?: Record<string, unknown> }> }) => r.errors?.[0]?.extensions;

describe("tenants", () => {
  it("creates a tenant, normalising the SIP domain to lower case", async () => {
    const u = uniq();
    const { createTenant: t } = await ts.ok(CreateTenantDocument, {
      input: { name: "Acme", slug: `acme-${u}`, sipDomain: `Acme-${u}.PBX.example.com`, maxExtensions: 10 },
    });
    expect(t).toMatchObject({ name: "Acme", slug: `acme-${u}`, sipDomain: `acme-${u}.pbx.example.com`, maxExtensions: 10 });
    expect(new Date(t.createdAt).toISOString()).toBe(t.createdAt);
  });

  it.each([
    [{ slug: "Not_A_Slug" }, "slug"],
    [{ slug: "x".repeat(64) }, "slug"],
    [{ sipDomain: "not a host" }, "sipDomain"],
    [{ sipDomain: "-bad.example.com" }, "sipDomain"],
    [{ maxExtensions: -1 }, "maxExtensions"],
    [{ name: "" }, "name"],
  ])("refuses %j with BAD_USER_INPUT on %s and creates nothing", async (override, field) => {
    const u = uniq();
    const input = { name: "X", slug: `ok-${u}`, sipDomain: `ok-${u}.test`, maxExtensions: 1, ...override };
    const r = await ts.gql(CreateTenantDocument, { input });
    expect(errorOf(r)).toMatchObject({ code: "BAD_USER_INPUT", fields: { [field]: [expect.any(String)] } });
    const { tenants } = await ts.ok(AllTenantsExtensionsDocument, {});
    expect(tenants.find((t) => t.slug === input.slug)).toBeUndefined();
  });

  it("refuses a taken slug or SIP domain", async () => {
    const t = await createTenant(ts);
    const slug = await ts.gql(CreateTenantDocument, { input: { name: "X", slug: t.slug, sipDomain: `${uniq()}.test`, maxExtensions: 1 } });
    expect(errorOf(slug)).toMatchObject({ code: "BAD_USER_INPUT", fields: { slug: ["The slug has already been taken."] } });
    const domain = await ts.gql(CreateTenantDocument, { input: { name: "X", slug: `s-${uniq()}`, sipDomain: t.sipDomain.toUpperCase(), maxExtensions: 1 } });
    expect(errorOf(domain)).toMatchObject({ code: "BAD_USER_INPUT", fields: { sipDomain: ["The SIP domain has already been taken."] } });
    const update = await ts.gql(UpdateTenantDocument, { id: (await createTenant(ts)).id, input: { slug: t.slug } });
    expect(errorOf(update)).toMatchObject({ code: "BAD_USER_INPUT", fields: { slug: ["The slug has already been taken."] } });
  });

  it("refuses deleting a tenant that has extensions unless force", async () => {
    const t = await createTenant(ts);
    await createExtension(ts, t.id);
    const refused = await ts.gql(DeleteTenantDocument, { id: t.id });
    expect(errorOf(refused)?.code).toBe("CONFLICT");
    expect((await ts.ok(TenantDocument, { id: t.id })).tenant.id).toBe(t.id);
    expect((await ts.ok(DeleteTenantDocument, { id: t.id, force: true })).deleteTenant).toBe(t.id);
    expect(errorOf(await ts.gql(TenantDocument, { id: t.id }))?.code).toBe("NOT_FOUND");
  });
});

describe("extensions", () => {
  it("creates with the contract's defaults and never returns the secret", async () => {
    const t = await createTenant(ts);
    const e = await createExtension(ts, t.id, { extensionNumber: "1001" });
    expect(e).toMatchObject({ tenantId: t.id, extensionNumber: "1001", status: "ACTIVE", voicemailEnabled: false, hasSecret: true, displayName: null, email: null });
    expect(JSON.stringify(e)).not.toContain("s3cur3p@ss-long");
  });

  it.each([
    [{ extensionNumber: "10a1" }, "extensionNumber", "The extension number must be 1 to 20 digits."],
    [{ extensionNumber: "" }, "extensionNumber", "The extension number must be 1 to 20 digits."],
    [{ extensionNumber: "1".repeat(21) }, "extensionNumber", "The extension number must be 1 to 20 digits."],
    [{ secret: "short" }, "secret", "The secret must be a string of 8 to 128 characters."],
    [{ secret: "x".repeat(129) }, "secret", "The secret must be a string of 8 to 128 characters."],
    [{ email: "not-an-email" }, "email", "The email must be a valid email address of at most 255 characters."],
    [{ displayName: "x".repeat(256) }, "displayName", "The display name must be a string of at most 255 characters."],
  ])("refuses %j with a clear message on %s and creates nothing", async (override, field, message) => {
    const t = await createTenant(ts);
    const r = await ts.gql(CreateExtensionDocument, { input: { tenantId: t.id, extensionNumber: "5000", secret: "s3cur3p@ss-long", ...override } });
    expect(errorOf(r)).toEqual({ code: "BAD_USER_INPUT", fields: { [field]: [message] } });
    expect((await ts.ok(ExtensionsDocument, { tenantId: t.id })).extensions.totalCount).toBe(0);
  });

  it("updates some fields, keeps the rest, and can clear optional ones with null", async () => {
    const t = await createTenant(ts);
    const e = await createExtension(ts, t.id, { displayName: "Alice", email: "alice@acme.test" });
    const { updateExtension: u } = await ts.ok(UpdateExtensionDocument, { id: e.id, input: { displayName: "Alice Johnson", status: "DISABLED", voicemailEnabled: true } });
    expect(u).toMatchObject({ displayName: "Alice Johnson", email: "alice@acme.test", status: "DISABLED", voicemailEnabled: true, extensionNumber: e.extensionNumber });
    expect(new Date(u.updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(e.updatedAt).getTime());
    const { updateExtension: cleared } = await ts.ok(UpdateExtensionDocument, { id: e.id, input: { email: null } });
    expect(cleared.email).toBeNull();
  });

  it("refuses an update to a taken number or invalid value, changing nothing", async () => {
    const t = await createTenant(ts);
    const a = await createExtension(ts, t.id, { extensionNumber: "1001" });
    const b = await createExtension(ts, t.id, { extensionNumber: "1002", displayName: "Bob" });
    const taken = await ts.gql(UpdateExtensionDocument, { id: b.id, input: { extensionNumber: a.extensionNumber, displayName: "changed" } });
    expect(errorOf(taken)).toEqual({ code: "BAD_USER_INPUT", fields: { extensionNumber: ["The extension number has already been taken."] } });
    const nulled = await ts.gql(UpdateExtensionDocument, { id: b.id, input: { extensionNumber: null } });
    expect(errorOf(nulled)?.code).toBe("BAD_USER_INPUT");
    expect((await ts.ok(ExtensionDocument, { id: b.id })).extension).toMatchObject({ extensionNumber: "1002", displayName: "Bob", updatedAt: b.updatedAt });
  });

  it("deletes an extension; a second delete is NOT_FOUND", async () => {
    const t = await createTenant(ts);
    const e = await createExtension(ts, t.id);
    expect((await ts.ok(DeleteExtensionDocument, { id: e.id })).deleteExtension).toBe(e.id);
    expect(errorOf(await ts.gql(DeleteExtensionDocument, { id: e.id }))?.code).toBe("NOT_FOUND");
    expect(errorOf(await ts.gql(ExtensionDocument, { id: "abc" }))?.code).toBe("NOT_FOUND");
  });
});

describe("extension connections", () => {
  it("pages with opaque cursors, no gaps or repeats, and counts only the filter", async () => {
    const { tenant, viewerKey } = await tenantWithKeys(ts, { maxExtensions: 100 });
    for (let i = 0; i < 25; i++) await createExtension(ts, tenant.id, { extensionNumber: String(7000 + i), status: i % 5 === 0 ? "DISABLED" : "ACTIVE" });
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: TenantExtensionsQuery = await ts.ok(TenantExtensionsDocument, { id: tenant.id, first: 10, after }, viewerKey);
      const conn = page.tenant.extensions;
      expect(conn.totalCount).toBe(25);
      expect(conn.edges.map((e) => e.node.id)).toEqual(conn.nodes.map((n) => n.id));
      seen.push(...conn.nodes.map((n) => n.extensionNumber));
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => String(7000 + i)));
    const disabled = await ts.ok(ExtensionsDocument, { status: "DISABLED", first: 100 }, viewerKey);
    expect(disabled.extensions.totalCount).toBe(5);
  });

  it("searches number, display name and email case-insensitively, treating wildcards literally", async () => {
    const { tenant, viewerKey } = await tenantWithKeys(ts);
    await createExtension(ts, tenant.id, { extensionNumber: "8101", displayName: "Alice Smith" });
    await createExtension(ts, tenant.id, { extensionNumber: "8102", email: "ALICE.j@acme.test" });
    await createExtension(ts, tenant.id, { extensionNumber: "8199", displayName: "Bob 100%" });
    const names = async (search: string) =>
      (await ts.ok(ExtensionsDocument, { search, first: 100 }, viewerKey)).extensions.nodes.map((n) => n.extensionNumber).sort();
    expect(await names("alice")).toEqual(["8101", "8102"]);
    expect(await names("819")).toEqual(["8199"]);
    expect(await names("%")).toEqual(["8199"]);
    expect(await names("_")).toEqual([]);
  });

  it("refuses first > 100 and a forged cursor with BAD_USER_INPUT", async () => {
    const r1 = await ts.gql(ExtensionsDocument, { first: 101 });
    expect(errorOf(r1)).toMatchObject({ code: "BAD_USER_INPUT", fields: { first: [expect.any(String)] } });
    const r2 = await ts.gql(ExtensionsDocument, { after: "bm90LWEtY3Vyc29y" });
    expect(errorOf(r2)).toMatchObject({ code: "BAD_USER_INPUT", fields: { after: ["The cursor is invalid."] } });
  });

  it("batches Tenant.extensions across tenants with per-tenant pages and counts", async () => {
    const t1 = await createTenant(ts);
    const t2 = await createTenant(ts);
    for (let i = 0; i < 3; i++) await createExtension(ts, t1.id);
    await createExtension(ts, t2.id);
    const { tenants } = await ts.ok(AllTenantsExtensionsDocument, { first: 2 });
    const one = tenants.find((t) => t.id === t1.id)!;
    const two = tenants.find((t) => t.id === t2.id)!;
    expect(one.extensions.totalCount).toBe(3);
    expect(one.extensions.nodes).toHaveLength(2);
    expect(one.extensions.nodes.every((n) => n.tenantId === t1.id)).toBe(true);
    expect(two.extensions.totalCount).toBe(1);
  });
});
