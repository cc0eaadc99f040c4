import { print } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import {
  AddQueueAgentDocument,
  AuditLogDocument,
  CreateApiKeyDocument,
  CreateExtensionDocument,
  CreateQueueDocument,
  DeleteExtensionDocument,
  DeleteTenantDocument,
  RemoveQueueAgentDocument,
  RevokeApiKeyDocument,
  RotateExtensionSecretDocument,
  UpdateExtensionDocument,
  UpdateQueueAgentDocument,
  UpdateQueueDocument,
  UpdateTenantDocument,
  type AuditFilter,
  type AuditLogQuery,
} from "../graphql/generated";
import { createExtension, createTenant, uniq } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { pruneAuditTrail } from "../../src/modules/audit/audit.service";
import { restClient, type Rest } from "./rest-support";

let ts: TestServer;
let rest: Rest;
beforeAll(async () => {
  ts = await startTestServer();
  rest = restClient(ts);
});
afterAll(() => ts?.stop());

type Entry = AuditLogQuery["auditLog"]["nodes"][number];
const SECRET = "Sup3r-s3cret-value";
const sql = <T = any>(text: string, params: unknown[] = []): Promise<T[]> => ts.server.db.dataSource.query(text, params);

/** A key with its id and name, for checking the actor of its changes. */
async function keyOf(role: "TENANT_ADMIN" | "VIEWER", tenantId: string) {
  const name = `${role} ${uniq()}`;
  const { createApiKey } = await ts.ok(CreateApiKeyDocument, { input: { name, role, tenantId } });
  return { key: createApiKey.key, id: createApiKey.apiKey.id, name };
}

async function tenantWithAdmin(maxExtensions = 50) {
  const tenant = await createTenant(ts, { maxExtensions });
  return { tenant, admin: await keyOf("TENANT_ADMIN", tenant.id) };
}

/** A GraphQL call that returns the answer's x-request-id too. */
async function gqlWithId<D, V>(doc: TypedDocumentNode<D, V>, variables: V, key: string) {
  const res = await ts.http("/graphql", { method: "POST", key, headers: { "content-type": "application/json" }, body: JSON.stringify({ query: print(doc), variables }) });
  const body = (await res.json()) as { data?: D; errors?: Array<{ extensions?: { code?: string } }> };
  return { ...body, requestId: res.headers.get("x-request-id") };
}

async function log(filter: AuditFilter = {}, key = ts.adminKey, tenantId?: string): Promise<Entry[]> {
  return (await ts.ok(AuditLogDocument, { tenantId, filter, first: 100 }, key)).auditLog.nodes;
}
const count = async () => (await sql(`SELECT count(*)::int AS n FROM audit_entry`))[0].n as number;

describe("audit entries: every field, for each action and transport", () => {
  it("a GraphQL create records actor, request id, transport, entity and the new values, the secret redacted", async () => {
    const { tenant, admin } = await tenantWithAdmin();
    const r = await gqlWithId(
      CreateExtensionDocument,
      { input: { tenantId: tenant.id, extensionNumber: "2001", displayName: "Alice", secret: SECRET } },
      admin.key,
    );
    const ext = r.data!.createExtension;
    const [entry] = await log({ entityType: "extension", entityId: ext.id }, admin.key);
    expect(entry).toEqual({
      id: expect.any(String),
      tenantId: tenant.id,
      occurredAt: ext.createdAt,
      action: "extension.created",
      entityType: "extension",
      entityId: ext.id,
      actor: { apiKeyId: admin.id, name: admin.name, role: "TENANT_ADMIN" },
      requestId: r.requestId,
      transport: "graphql",
      changes: {
        extensionNumber: [null, "2001"],
        displayName: [null, "Alice"],
        status: [null, "ACTIVE"],
        voicemailEnabled: [null, false],
        secret: [null, "[redacted]"],
      },
    });
  });

  it("a REST update records only the changed fields, with the x-request-id of the answer and transport rest", async () => {
    const { tenant, admin } = await tenantWithAdmin();
    const ext = await createExtension(ts, tenant.id, { displayName: "Bob", email: "bob@example.com" }, admin.key);
    const r = await rest("PATCH", `/api/extensions/${ext.id}`, {
      key: admin.key,
      json: { display_name: "Robert", email: "bob@example.com", voicemail_enabled: true, secret: SECRET },
      headers: { "x-request-id": "req-audit-rest-1" },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get("x-request-id")).toBe("req-audit-rest-1");
    const [entry] = await log({ entityType: "extension", entityId: ext.id, action: "extension.updated" }, admin.key);
    expect(entry).toMatchObject({
      requestId: "req-audit-rest-1",
      transport: "rest",
      actor: { apiKeyId: admin.id, name: admin.name, role: "TENANT_ADMIN" },
      changes: { displayName: ["Bob", "Robert"], voicemailEnabled: [false, true], secret: ["[redacted]", "[redacted]"] },
    });
    expect(Object.keys(entry.changes as object).sort()).toEqual(["displayName", "secret", "voicemailEnabled"]);
    // An update that changes nothing leaves no entry.
    const before = await count();
    expect((await rest("PATCH", `/api/extensions/${ext.id}`, { key: admin.key, json: { display_name: "Robert" } })).status).toBe(200);
    expect(await count()).toBe(before);
  });

  it("rotation, forced delete with its queue membership, and the environment's ADMIN key (no id)", async () => {
    const { tenant, admin } = await tenantWithAdmin();
    const ext = await createExtension(ts, tenant.id, {}, admin.key);
    await ts.ok(RotateExtensionSecretDocument, { id: ext.id });
    const [rotated] = await log({ entityId: ext.id, action: "extension.secret_rotated" });
    expect(rotated).toMatchObject({ actor: { apiKeyId: null, name: "ADMIN_API_KEY", role: "ADMIN" }, changes: { secret: ["[redacted]", "[redacted]"] } });

    const { createQueue: queue } = await ts.ok(CreateQueueDocument, { input: { tenantId: tenant.id, name: "Sales", number: "600" } }, admin.key);
    const { addQueueAgent: agent } = await ts.ok(AddQueueAgentDocument, { queueId: queue.id, extensionId: ext.id, penalty: 2 }, admin.key);
    await ts.ok(DeleteExtensionDocument, { id: ext.id, force: true }, admin.key);
    const entries = await log({}, admin.key);
    const removed = entries.find((e) => e.action === "queue_agent.removed" && e.entityId === agent.id);
    const deleted = entries.find((e) => e.action === "extension.deleted" && e.entityId === ext.id);
    expect(removed).toMatchObject({ entityType: "queue_agent", changes: { queueId: [queue.id, null], extensionId: [ext.id, null], penalty: [2, null], paused: [false, null] } });
    expect(deleted).toMatchObject({ entityType: "extension", changes: { extensionNumber: [ext.extensionNumber, null], secret: ["[redacted]", null] } });
    // Both in the deletion's transaction: one request id.
    expect(removed!.requestId).toBe(deleted!.requestId);
  });

  it("tenants, queues, queue agents and API keys each record their actions", async () => {
    const { tenant, admin } = await tenantWithAdmin();
    await ts.ok(UpdateTenantDocument, { id: tenant.id, input: { name: "Renamed", maxExtensions: 60 } });
    const ext = await createExtension(ts, tenant.id, {}, admin.key);
    const { createQueue: queue } = await ts.ok(CreateQueueDocument, { input: { tenantId: tenant.id, name: "Support", number: "700" } }, admin.key);
    await ts.ok(UpdateQueueDocument, { id: queue.id, input: { strategy: "ROUND_ROBIN" } }, admin.key);
    const { addQueueAgent: agent } = await ts.ok(AddQueueAgentDocument, { queueId: queue.id, extensionId: ext.id }, admin.key);
    await ts.ok(UpdateQueueAgentDocument, { id: agent.id, paused: true }, admin.key);
    await ts.ok(RemoveQueueAgentDocument, { id: agent.id }, admin.key);
    const viewer = await keyOf("VIEWER", tenant.id);
    await ts.ok(RevokeApiKeyDocument, { id: viewer.id }, admin.key);

    const entries = await log({}, admin.key);
    const find = (action: string, entityId: string) => entries.find((e) => e.action === action && e.entityId === entityId);
    expect(find("tenant.created", tenant.id)).toMatchObject({ entityType: "tenant", changes: { name: [null, tenant.name], slug: [null, tenant.slug], maxExtensions: [null, 50] } });
    expect(find("tenant.updated", tenant.id)?.changes).toEqual({ name: [tenant.name, "Renamed"], maxExtensions: [50, 60] });
    expect(find("api_key.created", admin.id)).toMatchObject({ entityType: "api_key", changes: { name: [null, admin.name], role: [null, "TENANT_ADMIN"], tenantId: [null, tenant.id] } });
    expect(find("queue.created", queue.id)).toMatchObject({ entityType: "queue", changes: { name: [null, "Support"], number: [null, "700"], strategy: [null, "RING_ALL"] } });
    expect(find("queue.updated", queue.id)?.changes).toEqual({ strategy: ["RING_ALL", "ROUND_ROBIN"] });
    expect(find("queue_agent.added", agent.id)).toMatchObject({ entityType: "queue_agent", changes: { queueId: [null, queue.id], extensionId: [null, ext.id], penalty: [null, 0] } });
    expect(find("queue_agent.updated", agent.id)?.changes).toEqual({ paused: [false, true] });
    expect(find("queue_agent.removed", agent.id)).toBeDefined();
    expect(find("api_key.revoked", viewer.id)).toMatchObject({ actor: { apiKeyId: admin.id }, changes: { revokedAt: [null, expect.any(String)] } });
    // The key hash never appears.
    const [{ hash }] = await sql(`SELECT key_hash AS hash FROM api_key WHERE id = $1`, [Number(viewer.id)]);
    expect(JSON.stringify(entries)).not.toContain(hash);

    await ts.ok(DeleteTenantDocument, { id: tenant.id, force: true });
    // The trail outlives the tenant: the ADMIN still reads it.
    expect((await log({ entityType: "tenant", entityId: tenant.id })).map((e) => e.action)).toEqual(["tenant.deleted", "tenant.updated", "tenant.created"]);
  });
});

describe("redaction and refusals", () => {
  it("the secret (and its ciphertext) appear nowhere in the audit log", async () => {
    const { tenant, admin } = await tenantWithAdmin();
    const ext = await createExtension(ts, tenant.id, { secret: SECRET }, admin.key);
    await ts.ok(UpdateExtensionDocument, { id: ext.id, input: { secret: `${SECRET}-2` } }, admin.key);
    const [{ c }] = await sql(`SELECT secret_ciphertext AS c FROM extension WHERE id = $1`, [Number(ext.id)]);
    const text = JSON.stringify(await log({}, admin.key));
    expect(text).toContain("[redacted]");
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(c);
    const raw = JSON.stringify(await sql(`SELECT * FROM audit_entry WHERE tenant_id = $1`, [Number(tenant.id)]));
    expect(raw).not.toContain(SECRET);
  });

  it("a refused change writes no entry, on GraphQL and REST", async () => {
    const { tenant, admin } = await tenantWithAdmin(1);
    const ext = await createExtension(ts, tenant.id, {}, admin.key);
    const { createQueue: queue } = await ts.ok(CreateQueueDocument, { input: { tenantId: tenant.id, name: "Q", number: "800" } }, admin.key);
    await ts.ok(AddQueueAgentDocument, { queueId: queue.id, extensionId: ext.id }, admin.key);
    const viewer = await keyOf("VIEWER", tenant.id);
    const before = await count();
    const refusals = await Promise.all([
      ts.gql(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "9", secret: SECRET } }, admin.key), // limit reached
      ts.gql(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "x", secret: "short" } }, admin.key), // bad input
      ts.gql(DeleteExtensionDocument, { id: ext.id }, admin.key), // still a queue agent
      ts.gql(UpdateExtensionDocument, { id: ext.id, input: { displayName: "x" } }, viewer.key), // forbidden
      ts.gql(UpdateTenantDocument, { id: tenant.id, input: { maxExtensions: 0 } }), // below the count
    ]);
    expect(refusals.map((r) => r.errors?.[0]?.extensions?.code)).toEqual(["EXTENSION_LIMIT_REACHED", "BAD_USER_INPUT", "CONFLICT", "FORBIDDEN", "BAD_USER_INPUT"]);
    const restRefusals = await Promise.all([
      rest("PATCH", `/api/extensions/${ext.id}`, { key: admin.key, json: { email: "not-an-email" } }),
      rest("DELETE", `/api/extensions/${ext.id}`, { key: admin.key }),
    ]);
    expect(restRefusals.map((r) => r.status)).toEqual([422, 409]);
    expect(await count()).toBe(before);
  });
});

describe("auditLog: access, isolation, filters and paging", () => {
  it("a TENANT_ADMIN sees its own tenant's entries only; another tenant is NOT_FOUND; VIEWER and INGEST are FORBIDDEN", async () => {
    const a = await tenantWithAdmin();
    const b = await tenantWithAdmin();
    const extB = await createExtension(ts, b.tenant.id, {}, b.admin.key);
    const own = await log({}, a.admin.key);
    expect(own.length).toBeGreaterThan(0);
    expect(new Set(own.map((e) => e.tenantId))).toEqual(new Set([a.tenant.id]));
    expect(await log({ entityType: "extension", entityId: extB.id }, a.admin.key)).toEqual([]);
    const other = await ts.gql(AuditLogDocument, { tenantId: b.tenant.id }, a.admin.key);
    expect(other.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    const viewer = await keyOf("VIEWER", a.tenant.id);
    expect((await ts.gql(AuditLogDocument, {}, viewer.key)).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    const { createApiKey: ingest } = await ts.ok(CreateApiKeyDocument, { input: { name: "engine", role: "INGEST", tenantId: null } });
    expect((await ts.gql(AuditLogDocument, {}, ingest.key)).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    // The ADMIN sees both, by tenant.
    expect((await log({ entityId: extB.id, entityType: "extension" }, ts.adminKey, b.tenant.id)).map((e) => e.action)).toEqual(["extension.created"]);
  });

  it("newest first, keyset pages without gap or repeat, and every filter narrows", async () => {
    const { tenant, admin } = await tenantWithAdmin();
    const other = await keyOf("TENANT_ADMIN", tenant.id);
    const t0 = new Date(Date.now() - 1000).toISOString();
    const exts = [];
    for (let i = 0; i < 5; i++) exts.push(await createExtension(ts, tenant.id, {}, i % 2 ? other.key : admin.key));
    const all = await log({ action: "extension.created" }, admin.key);
    expect(all.map((e) => e.entityId)).toEqual(exts.map((e) => e.id).reverse());
    const ids: string[] = [];
    let after: string | null | undefined;
    for (;;) {
      const page = (await ts.ok(AuditLogDocument, { filter: { action: "extension.created" }, first: 2, after }, admin.key)).auditLog;
      expect(page.totalCount).toBe(5);
      ids.push(...page.nodes.map((n) => n.entityId));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(ids).toEqual(exts.map((e) => e.id).reverse());
    expect((await log({ apiKeyId: other.id }, admin.key)).map((e) => e.entityId)).toEqual([exts[3].id, exts[1].id]);
    expect(await log({ entityType: "queue" }, admin.key)).toEqual([]);
    expect((await log({ from: t0, action: "extension.created" }, admin.key)).length).toBe(5);
    expect(await log({ to: t0, action: "extension.created" }, admin.key)).toEqual([]);
    const bad = await ts.gql(AuditLogDocument, { after: "nonsense", filter: { apiKeyId: "x" } }, admin.key);
    expect(bad.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });
});

describe("append-only", () => {
  it("the database refuses UPDATE, DELETE and TRUNCATE on the audit table", async () => {
    const { tenant, admin } = await tenantWithAdmin();
    await createExtension(ts, tenant.id, {}, admin.key);
    const before = await count();
    await expect(sql(`UPDATE audit_entry SET action = 'x' WHERE tenant_id = $1`, [Number(tenant.id)])).rejects.toThrow(/append-only/);
    await expect(sql(`DELETE FROM audit_entry WHERE tenant_id = $1`, [Number(tenant.id)])).rejects.toThrow(/append-only/);
    await expect(sql(`TRUNCATE audit_entry`)).rejects.toThrow(/append-only/);
    // Even the pruning switch cannot delete entries of the last day.
    await expect(
      ts.server.db.dataSource.transaction(async (m) => {
        await m.query(`SELECT set_config('pbx.audit_prune_before', $1, true)`, [new Date(Date.now() + 86_400_000).toISOString()]);
        await m.query(`DELETE FROM audit_entry WHERE tenant_id = $1`, [Number(tenant.id)]);
      }),
    ).rejects.toThrow(/append-only/);
    expect(await count()).toBe(before);
  });

  it("AUDIT_RETENTION pruning deletes only entries past the retention", async () => {
    const { tenant } = await tenantWithAdmin();
    await sql(
      `INSERT INTO audit_entry (tenant_id, occurred_at, action, entity_type, entity_id, actor_role, transport)
       SELECT $1, now() - make_interval(days => d), 'extension.created', 'extension', '1', 'ADMIN', 'graphql' FROM unnest(ARRAY[40, 31, 29, 2]) AS d`,
      [Number(tenant.id)],
    );
    const deleted = await pruneAuditTrail(ts.server.db.dataSource, 30);
    expect(deleted).toBeGreaterThanOrEqual(2);
    const left = await sql(`SELECT (now() - occurred_at) > interval '30 days' AS old FROM audit_entry WHERE tenant_id = $1`, [Number(tenant.id)]);
    expect(left.filter((r) => r.old)).toEqual([]);
    expect(left.length).toBeGreaterThanOrEqual(3); // 29 and 2 days old, and tenant.created
  });
});
