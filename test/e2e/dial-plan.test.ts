import "reflect-metadata";
import {
  CreateExtensionDocument,
  CreateQueueDocument,
  DeleteQueueDocument,
  ImportExtensionsDocument,
  UpdateExtensionDocument,
  UpdateQueueDocument,
} from "../graphql/generated";
import { tenantWithKeys } from "../support/factories";
import { startTestServer, type GraphQLResponse, type TestServer } from "../support/server";

/**
 * Contract §12, one dial plan per tenant: extension and queue numbers (and ring-group numbers, see
 * ring-groups.test.ts) share one namespace, on every path and under concurrent writes.
 */
let ts: TestServer;
let a: Awaited<ReturnType<typeof tenantWithKeys>>;
let b: Awaited<ReturnType<typeof tenantWithKeys>>;

beforeAll(async () => {
  ts = await startTestServer();
  a = await tenantWithKeys(ts, { maxExtensions: 100 });
  b = await tenantWithKeys(ts, { maxExtensions: 100 });
});
afterAll(() => ts?.stop());

const err = (r: GraphQLResponse<unknown>) => r.errors?.[0];
const ext = (tenantId: string, extensionNumber: string, key = a.adminKey) =>
  ts.gql(CreateExtensionDocument, { input: { tenantId, extensionNumber, secret: "dial-plan-secret", displayName: `Ext ${extensionNumber}` } }, key);
const queue = (tenantId: string, number: string, name = `Queue ${number}`, key = a.adminKey) =>
  ts.gql(CreateQueueDocument, { input: { tenantId, name, number } }, key);
const count = async (table: string, tenantId: string, column: string, value: string) =>
  (await ts.server.db.dataSource.query(`SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1 AND ${column} = $2`, [Number(tenantId), value]))[0].n as number;

describe("one dial plan per tenant", () => {
  it("refuses a queue the number of an extension, and an extension the number of a queue, with CONFLICT naming the holder", async () => {
    expect((await ext(a.tenant.id, "7001")).errors).toBeUndefined();
    const taken = await queue(a.tenant.id, "7001");
    expect(err(taken)?.extensions?.code).toBe("CONFLICT");
    expect(err(taken)?.message).toBe("The number 7001 is already used by extension 7001 (Ext 7001).");
    expect(err(taken)?.extensions?.fields).toEqual({ number: ["The number 7001 is already used by extension 7001 (Ext 7001)."] });
    expect(await count("queue", a.tenant.id, "number", "7001")).toBe(0);

    expect((await queue(a.tenant.id, "7002", "Sales")).errors).toBeUndefined();
    const refused = await ext(a.tenant.id, "7002");
    expect(err(refused)?.extensions?.code).toBe("CONFLICT");
    expect(err(refused)?.message).toBe('The number 7002 is already used by queue "Sales".');
    expect(await count("extension", a.tenant.id, "extension_number", "7002")).toBe(0);

    // Another tenant's plan is its own: the same numbers are free there, and nothing of ours is named.
    expect((await ext(b.tenant.id, "7002", b.adminKey)).errors).toBeUndefined();
    expect((await queue(b.tenant.id, "7001", "Theirs", b.adminKey)).errors).toBeUndefined();
  });

  it("judges renames the same way, and frees a number when its holder is renamed or deleted", async () => {
    const e = (await ext(a.tenant.id, "7101")).data!.createExtension;
    const q = (await queue(a.tenant.id, "7102", "Support")).data!.createQueue;
    const renameExt = await ts.gql(UpdateExtensionDocument, { id: e.id, input: { extensionNumber: "7102" } }, a.adminKey);
    expect([err(renameExt)?.extensions?.code, err(renameExt)?.message]).toEqual(["CONFLICT", 'The number 7102 is already used by queue "Support".']);
    const renameQueue = await ts.gql(UpdateQueueDocument, { id: q.id, input: { number: "7101" } }, a.adminKey);
    expect(err(renameQueue)?.extensions?.code).toBe("CONFLICT");
    expect(err(renameQueue)?.extensions?.fields?.number?.[0]).toMatch(/extension 7101/);

    // The queue moves to 7103: 7102 is free for the extension, 7103 is not.
    expect((await ts.gql(UpdateQueueDocument, { id: q.id, input: { number: "7103" } }, a.adminKey)).errors).toBeUndefined();
    expect((await ts.gql(UpdateExtensionDocument, { id: e.id, input: { extensionNumber: "7102" } }, a.adminKey)).errors).toBeUndefined();
    expect(err(await ext(a.tenant.id, "7103"))?.extensions?.code).toBe("CONFLICT");
    // 7101, left by the extension, is free again; a deleted queue's number too.
    expect((await queue(a.tenant.id, "7101", "Reuse")).errors).toBeUndefined();
    await ts.ok(DeleteQueueDocument, { id: q.id }, a.adminKey);
    expect((await ext(a.tenant.id, "7103")).errors).toBeUndefined();
  });

  it("REST answers 422 on extension_number naming the holder, and changes nothing", async () => {
    await queue(a.tenant.id, "7201", "Front desk");
    const res = await ts.http("/api/extensions", {
      method: "POST",
      key: a.adminKey,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenant_id: Number(a.tenant.id), extension_number: "7201", secret: "dial-plan-secret" }),
    });
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({
      message: 'The number 7201 is already used by queue "Front desk".',
      errors: { extension_number: ['The number 7201 is already used by queue "Front desk".'] },
    });
    expect(await count("extension", a.tenant.id, "extension_number", "7201")).toBe(0);
  });

  it("an import names every line whose number a queue holds, and writes nothing", async () => {
    await queue(a.tenant.id, "7301", "Billing");
    const data = ["extension_number,secret", "7300,import-secret-1", "7301,import-secret-2"].join("\n");
    const { importExtensions } = await ts.ok(ImportExtensionsDocument, { tenantId: a.tenant.id, format: "CSV", data }, a.adminKey);
    expect(importExtensions.failed).toBe(1);
    expect(importExtensions.rows.find((r) => r.line === 3)).toMatchObject({
      status: "FAILED",
      errors: [{ field: "extension_number", messages: ['The number 7301 is already used by queue "Billing".'] }],
    });
    expect(await count("extension", a.tenant.id, "extension_number", "7300")).toBe(0);
  });

  it("under parallel creates and renames of one number, exactly one holder wins and the others get CONFLICT or a taken-number refusal", async () => {
    const [e1, e2] = [(await ext(a.tenant.id, "7401")).data!.createExtension, (await ext(a.tenant.id, "7402")).data!.createExtension];
    const q1 = (await queue(a.tenant.id, "7403", "Parallel")).data!.createQueue;
    const attempts = await Promise.all([
      ext(a.tenant.id, "7499"),
      queue(a.tenant.id, "7499", "Q1"),
      ext(a.tenant.id, "7499"),
      queue(a.tenant.id, "7499", "Q2"),
      ts.gql(UpdateExtensionDocument, { id: e1.id, input: { extensionNumber: "7499" } }, a.adminKey),
      ts.gql(UpdateExtensionDocument, { id: e2.id, input: { extensionNumber: "7499" } }, a.adminKey),
      ts.gql(UpdateQueueDocument, { id: q1.id, input: { number: "7499" } }, a.adminKey),
    ]);
    const won = attempts.filter((r) => !r.errors);
    expect(won).toHaveLength(1);
    for (const r of attempts.filter((x) => x.errors)) expect(["CONFLICT", "BAD_USER_INPUT"]).toContain(err(r)?.extensions?.code);
    const holders = (await ts.server.db.dataSource.query(
      `SELECT (SELECT count(*) FROM extension WHERE tenant_id = $1 AND extension_number = '7499') + (SELECT count(*) FROM queue WHERE tenant_id = $1 AND number = '7499') AS n`,
      [Number(a.tenant.id)],
    ))[0].n;
    expect(Number(holders)).toBe(1);
  });
});
