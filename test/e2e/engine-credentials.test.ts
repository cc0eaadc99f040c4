import { createHash } from "node:crypto";
import { createLogger } from "../../src/common/logger";
import {
  DeleteExtensionDocument,
  DeleteTenantDocument,
  RotateExtensionSecretDocument,
  UpdateExtensionDocument,
  UpdateTenantDocument,
} from "../graphql/generated";
import { createExtension, createKey, createTenant, uniq } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { documentedResponses, restClient, seen, type Rest } from "./rest-support";

/**
 * Contract §7: the digests kept with every secret, the engine's view sip_subscriber and
 * GET /api/engine/credentials. The digests are recomputed here, independently of the product.
 */
let ts: TestServer;
let rest: Rest;
beforeAll(async () => {
  ts = await startTestServer();
  rest = restClient(ts);
});
afterAll(() => ts?.stop());

const md5 = (t: string) => createHash("md5").update(t).digest("hex");
const expected = (number: string, domain: string, secret: string) => ({
  ha1: md5(`${number}:${domain}:${secret}`),
  ha1b: md5(`${number}@${domain}:${domain}:${secret}`),
  ha1_sha256: createHash("sha256").update(`${number}:${domain}:${secret}`).digest("hex"),
});

interface ViewRow {
  username: string;
  domain: string;
  ha1: string;
  ha1b: string;
  ha1_sha256: string;
  tenant_id: number;
  extension_id: number;
  voicemail_enabled: boolean;
}
const view = async (tenantId: string): Promise<ViewRow[]> =>
  ts.server.db.dataSource.query(`SELECT * FROM sip_subscriber WHERE tenant_id = $1 ORDER BY username`, [Number(tenantId)]);

describe("digests and the view sip_subscriber", () => {
  it("hold lowercase-hex digests of the secret under the number and the tenant's domain, from create to rotate", async () => {
    const tenant = await createTenant(ts);
    const e = await createExtension(ts, tenant.id, { extensionNumber: "2001", secret: "first-secret-2001", voicemailEnabled: true });
    expect(await view(tenant.id)).toEqual([
      { username: "2001", domain: tenant.sipDomain, ...expected("2001", tenant.sipDomain, "first-secret-2001"), tenant_id: Number(tenant.id), extension_id: Number(e.id), voicemail_enabled: true },
    ]);

    await ts.ok(UpdateExtensionDocument, { id: e.id, input: { secret: "second-secret-2001" } });
    expect((await view(tenant.id))[0]).toMatchObject(expected("2001", tenant.sipDomain, "second-secret-2001"));

    // A new number alone: the stored secret is opened and the digests follow the number.
    await ts.ok(UpdateExtensionDocument, { id: e.id, input: { extensionNumber: "2002" } });
    expect((await view(tenant.id))[0]).toMatchObject({ username: "2002", ...expected("2002", tenant.sipDomain, "second-secret-2001") });

    const { rotateExtensionSecret: rotated } = await ts.ok(RotateExtensionSecretDocument, { id: e.id });
    expect((await view(tenant.id))[0]).toMatchObject(expected("2002", tenant.sipDomain, rotated));

    // A refused change leaves them as they were.
    const before = await view(tenant.id);
    const refused = await ts.gql(UpdateExtensionDocument, { id: e.id, input: { extensionNumber: "2003", email: "not-an-address" } });
    expect(refused.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(await view(tenant.id)).toEqual(before);
  });

  it("follow the tenant's domain, which is kept lower-case: every extension of the tenant is recomputed", async () => {
    const tenant = await createTenant(ts);
    const secrets = ["tenant-secret-a1", "tenant-secret-b2", "tenant-secret-c3"];
    for (const [i, secret] of secrets.entries()) await createExtension(ts, tenant.id, { extensionNumber: `30${i}`, secret });
    const other = await createTenant(ts);
    await createExtension(ts, other.id, { extensionNumber: "300", secret: "other-tenant-300" });
    const otherBefore = await view(other.id);

    const domain = `Renamed-${uniq()}.PBX.test`;
    const { updateTenant } = await ts.ok(UpdateTenantDocument, { id: tenant.id, input: { sipDomain: domain } });
    expect(updateTenant.sipDomain).toBe(domain.toLowerCase());
    const rows = await view(tenant.id);
    expect(rows.map((r) => ({ username: r.username, domain: r.domain, ha1: r.ha1, ha1b: r.ha1b, ha1_sha256: r.ha1_sha256 }))).toEqual(
      secrets.map((secret, i) => ({ username: `30${i}`, domain: domain.toLowerCase(), ...expected(`30${i}`, domain.toLowerCase(), secret) })),
    );
    expect(await view(other.id)).toEqual(otherBefore);
  });

  it("stay consistent when a domain change and extension changes of the tenant run at once", async () => {
    const tenant = await createTenant(ts);
    const exts = await Promise.all([0, 1, 2, 3].map((i) => createExtension(ts, tenant.id, { extensionNumber: `40${i}`, secret: `parallel-secret-${i}` })));
    const domain = `parallel-${uniq()}.pbx.test`;
    const results = await Promise.all([
      ts.gql(UpdateTenantDocument, { id: tenant.id, input: { sipDomain: domain } }),
      ...exts.map((e, i) => ts.gql(UpdateExtensionDocument, { id: e.id, input: i % 2 ? { extensionNumber: `41${i}` } : { secret: `changed-secret-${i}` } })),
    ]);
    for (const r of results) expect(r.errors).toBeUndefined();
    const rows = await view(tenant.id);
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      const i = exts.findIndex((e) => Number(e.id) === row.extension_id);
      const secret = i % 2 ? `parallel-secret-${i}` : `changed-secret-${i}`;
      expect(row).toMatchObject({ domain, username: i % 2 ? `41${i}` : `40${i}`, ...expected(row.username, domain, secret) });
    }
  });

  it("holds active extensions only: a disabled, deleted or deleted tenant's extension is gone once its change commits", async () => {
    const tenant = await createTenant(ts);
    const [a, b, c] = await Promise.all(["501", "502", "503"].map((n) => createExtension(ts, tenant.id, { extensionNumber: n })));
    await createExtension(ts, tenant.id, { extensionNumber: "504", status: "DISABLED" });
    expect((await view(tenant.id)).map((r) => r.username)).toEqual(["501", "502", "503"]);
    await ts.ok(UpdateExtensionDocument, { id: a.id, input: { status: "DISABLED" } });
    await ts.ok(DeleteExtensionDocument, { id: b.id });
    expect((await view(tenant.id)).map((r) => r.username)).toEqual(["503"]);
    await ts.ok(UpdateExtensionDocument, { id: a.id, input: { status: "ACTIVE" } });
    expect((await view(tenant.id)).map((r) => r.username)).toEqual(["501", "503"]);
    await ts.ok(DeleteTenantDocument, { id: tenant.id, force: true });
    expect(await view(tenant.id)).toEqual([]);
    expect(c.id).toBeDefined();
  });

  it("are filled at start-up for extensions stored without them (before the digest columns existed)", async () => {
    const tenant = await createTenant(ts);
    const e = await createExtension(ts, tenant.id, { extensionNumber: "601", secret: "backfilled-601" });
    const ds = ts.server.db.dataSource;
    await ds.query(`UPDATE extension SET ha1 = NULL, ha1b = NULL, ha1_sha256 = NULL WHERE id = $1`, [e.id]);
    expect(await view(tenant.id)).toEqual([]);
    const filled = await ts.server.services.credentials.backfill(ds, createLogger("silent"));
    expect(filled).toBeGreaterThanOrEqual(1);
    expect((await view(tenant.id))[0]).toMatchObject({ username: "601", ...expected("601", tenant.sipDomain, "backfilled-601") });
    expect(await ts.server.services.credentials.backfill(ds, createLogger("silent"))).toBe(0);
  });
});

describe("GET /api/engine/credentials", () => {
  let tenant: Awaited<ReturnType<typeof createTenant>>;
  let other: Awaited<ReturnType<typeof createTenant>>;
  let ext: Awaited<ReturnType<typeof createExtension>>;
  let keys: Record<"ingest" | "boundIngest" | "otherIngest" | "viewer" | "tenantAdmin", string>;
  const path = (domain: string, username: string) => `/api/engine/credentials?domain=${encodeURIComponent(domain)}&username=${encodeURIComponent(username)}`;

  beforeAll(async () => {
    tenant = await createTenant(ts);
    other = await createTenant(ts);
    ext = await createExtension(ts, tenant.id, { extensionNumber: "7001", secret: "http-secret-7001" });
    await createExtension(ts, other.id, { extensionNumber: "7001", secret: "other-secret-7001" });
    const [ingest, boundIngest, otherIngest, viewer, tenantAdmin] = await Promise.all([
      createKey(ts, "INGEST", null),
      createKey(ts, "INGEST", tenant.id),
      createKey(ts, "INGEST", other.id),
      createKey(ts, "VIEWER", tenant.id),
      createKey(ts, "TENANT_ADMIN", tenant.id),
    ]);
    keys = { ingest, boundIngest, otherIngest, viewer, tenantAdmin };
  });

  it("answers an INGEST or ADMIN key with the view's row", async () => {
    const data = {
      username: "7001",
      domain: tenant.sipDomain,
      ...expected("7001", tenant.sipDomain, "http-secret-7001"),
      tenant_id: Number(tenant.id),
      extension_id: Number(ext.id),
      voicemail_enabled: false,
    };
    for (const key of [keys.ingest, keys.boundIngest, ts.adminKey]) {
      const r = await rest("GET", path(tenant.sipDomain, "7001"), { key });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ data });
      expect(r.headers.get("cache-control")).toBe("no-store");
    }
    // A domain is a DNS name: its case carries no meaning.
    expect((await rest("GET", path(tenant.sipDomain.toUpperCase(), "7001"), { key: keys.ingest })).body).toEqual({ data });
  });

  it("answers 404 for another tenant's domain to a tenant-bound INGEST key, exactly as for no extension at all", async () => {
    const theirs = await rest("GET", path(other.sipDomain, "7001"), { key: keys.boundIngest });
    const none = await rest("GET", path(tenant.sipDomain, "7999"), { key: keys.boundIngest });
    const noDomain = await rest("GET", path(`nowhere-${uniq()}.pbx.test`, "7001"), { key: keys.boundIngest });
    for (const r of [theirs, none, noDomain]) {
      expect(r.status).toBe(404);
      expect(r.body).toEqual(theirs.body);
      expect(typeof r.body.message).toBe("string");
    }
    expect((await rest("GET", path(other.sipDomain, "7001"), { key: keys.otherIngest })).status).toBe(200);
    expect((await rest("GET", path(tenant.sipDomain, "7001"), { key: keys.otherIngest })).status).toBe(404);
  });

  it("answers 404 for a disabled extension, and 200 again once it is active", async () => {
    const e = await createExtension(ts, tenant.id, { extensionNumber: "7002" });
    await ts.ok(UpdateExtensionDocument, { id: e.id, input: { status: "DISABLED" } });
    expect((await rest("GET", path(tenant.sipDomain, "7002"), { key: keys.ingest })).status).toBe(404);
    await ts.ok(UpdateExtensionDocument, { id: e.id, input: { status: "ACTIVE" } });
    expect((await rest("GET", path(tenant.sipDomain, "7002"), { key: keys.ingest })).status).toBe(200);
  });

  it("refuses VIEWER and TENANT_ADMIN keys with 403, no key with 401, whatever they name", async () => {
    for (const key of [keys.viewer, keys.tenantAdmin]) {
      for (const p of [path(tenant.sipDomain, "7001"), path(other.sipDomain, "7001"), "/api/engine/credentials"]) {
        const r = await rest("GET", p, { key });
        expect(r.status).toBe(403);
        expect(JSON.stringify(r.body)).not.toMatch(/[0-9a-f]{32}/);
      }
    }
    const anonymous = await rest("GET", path(tenant.sipDomain, "7001"), { key: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toEqual({ message: "Unauthenticated." });
    expect((await rest("GET", path(tenant.sipDomain, "7001"), { key: "not-a-key" })).status).toBe(401);
  });

  it("answers 422 naming each missing parameter, and 405 for other methods", async () => {
    const r = await rest("GET", "/api/engine/credentials", { key: keys.ingest });
    expect(r.status).toBe(422);
    expect(Object.keys(r.body.errors).sort()).toEqual(["domain", "username"]);
    const repeated = await rest("GET", "/api/engine/credentials?domain=a&domain=b&username=1", { key: keys.ingest });
    expect(repeated.status).toBe(422);
    expect(Object.keys(repeated.body.errors)).toEqual(["domain"]);
    const post = await rest("POST", path(tenant.sipDomain, "7001"), { key: keys.ingest });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD, OPTIONS");
  });

  it("answers an unexpected failure with a bare 500", async () => {
    const spy = jest.spyOn(ts.server.services.credentials, "subscriber").mockRejectedValueOnce(new Error("SELECT ha1 FROM sip_subscriber failed"));
    try {
      const r = await rest("GET", path(tenant.sipDomain, "7001"), { key: keys.ingest });
      expect(r.status).toBe(500);
      expect(r.body).toEqual({ message: "Server Error" });
    } finally {
      spy.mockRestore();
    }
  });

  it("is documented: every status it lists was answered in this suite and matched the OpenAPI document", () => {
    const documented = documentedResponses((template) => template.startsWith("/api/engine/"));
    expect(documented.length).toBeGreaterThan(0);
    expect(documented.filter((r) => !seen.has(r))).toEqual([]);
  });
});
