import { CreateExtensionDocument, ExtensionsDocument, TenantDocument, UpdateTenantDocument } from "../graphql/generated";
import { createExtension, tenantWithKeys } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
});
afterAll(() => ts?.stop());

describe("invariant 1: a tenant never holds more than maxExtensions extensions", () => {
  it("12 parallel creates at a tenant with room for 5 create exactly 5", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts, { maxExtensions: 5 });
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        ts.gql(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: String(2000 + i), secret: "s3cur3p@ss-long" } }, adminKey),
      ),
    );
    const created = results.filter((r) => r.data?.createExtension);
    const refused = results.filter((r) => r.errors?.[0]?.extensions?.code === "EXTENSION_LIMIT_REACHED");
    expect(created).toHaveLength(5);
    expect(refused).toHaveLength(7);
    const list = await ts.ok(ExtensionsDocument, { tenantId: tenant.id, first: 100 }, adminKey);
    expect(list.extensions.totalCount).toBe(5);
  });

  it("parallel creates of one number in one tenant create it once; the rest are told it is taken", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts, { maxExtensions: 20 });
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        ts.gql(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "3001", secret: "s3cur3p@ss-long" } }, adminKey),
      ),
    );
    expect(results.filter((r) => r.data?.createExtension)).toHaveLength(1);
    for (const r of results.filter((x) => x.errors)) {
      expect(r.errors![0].extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        fields: { extensionNumber: ["The extension number has already been taken."] },
      });
    }
  });

  it("the same number may exist in two tenants", async () => {
    const a = await tenantWithKeys(ts);
    const b = await tenantWithKeys(ts);
    await createExtension(ts, a.tenant.id, { extensionNumber: "100" });
    await expect(createExtension(ts, b.tenant.id, { extensionNumber: "100" })).resolves.toMatchObject({ extensionNumber: "100" });
  });

  it("refuses lowering maxExtensions below the current count, and changes nothing", async () => {
    const { tenant } = await tenantWithKeys(ts, { maxExtensions: 3 });
    await createExtension(ts, tenant.id);
    await createExtension(ts, tenant.id);
    const refused = await ts.gql(UpdateTenantDocument, { id: tenant.id, input: { maxExtensions: 1, name: "renamed" } });
    expect(refused.errors?.[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", fields: { maxExtensions: [expect.stringContaining("2")] } });
    const ok = await ts.ok(UpdateTenantDocument, { id: tenant.id, input: { maxExtensions: 2 } });
    expect(ok.updateTenant).toMatchObject({ maxExtensions: 2, name: tenant.name });
  });

  it("parallel limit-lowering and creates never leave more extensions than the limit", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts, { maxExtensions: 10 });
    await createExtension(ts, tenant.id, {}, adminKey);
    const lowering = ts.gql(UpdateTenantDocument, { id: tenant.id, input: { maxExtensions: 3 } });
    const creates = Array.from({ length: 6 }, (_, i) =>
        ts.gql(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: String(4000 + i), secret: "s3cur3p@ss-long" } }, adminKey),
      );
    const [lower] = await Promise.all([lowering, ...creates]);
    const after = await ts.ok(TenantDocument, { id: tenant.id });
    const list = await ts.ok(ExtensionsDocument, { tenantId: tenant.id, first: 100 }, adminKey);
    // Whichever order the database chose, the final count never exceeds the final limit,
    // and the lowering either applied (limit 3) or was refused for a count already above 3.
    expect(list.extensions.totalCount).toBeLessThanOrEqual(after.tenant.maxExtensions);
    if (lower.data?.updateTenant) expect(after.tenant.maxExtensions).toBe(3);
    else expect(lower.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
  });
});
