import { CreateExtensionDocument, UpdateExtensionDocument, type CreateExtensionInput, type UpdateExtensionInput } from "../graphql/generated";
import { tenantWithKeys } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { snakeCase } from "../../src/rest/errors";
import { restClient, type Rest } from "./rest-support";

/**
 * One place decides what a valid extension is: the same invalid input sent through GraphQL and
 * through REST is refused with the same messages, field by field (camelCase ↔ snake_case).
 */

let ts: TestServer;
let rest: Rest;
beforeAll(async () => {
  ts = await startTestServer();
  rest = restClient(ts);
});
afterAll(() => ts?.stop());

const SECRET = "s3cur3p@ss";
const snakeBody = (input: Record<string, unknown>) => Object.fromEntries(Object.entries(input).map(([k, v]) => [snakeCase(k), v]));
const snakeFields = (fields: Record<string, string[]>) => Object.fromEntries(Object.entries(fields).map(([k, v]) => [snakeCase(k), v]));

type CreateCase = [string, Omit<CreateExtensionInput, "tenantId">];
const createCases: CreateCase[] = [
  ["letters in the number", { extensionNumber: "12ab", secret: SECRET }],
  ["an empty number", { extensionNumber: "", secret: SECRET }],
  ["a 21-digit number", { extensionNumber: "1".repeat(21), secret: SECRET }],
  ["a short secret", { extensionNumber: "1001", secret: "short" }],
  ["a long secret", { extensionNumber: "1001", secret: "x".repeat(129) }],
  ["a bad email", { extensionNumber: "1001", secret: SECRET, email: "not-an-email" }],
  ["an email over 255 characters", { extensionNumber: "1001", secret: SECRET, email: `${"a".repeat(250)}@example.com` }],
  ["a display name over 255 characters", { extensionNumber: "1001", secret: SECRET, displayName: "x".repeat(256) }],
  ["a NUL in the display name", { extensionNumber: "1001", secret: SECRET, displayName: "a\u0000b" }],
  ["everything wrong at once", { extensionNumber: "x", secret: "s", email: "@", displayName: "y".repeat(300) }],
  ["a taken number", { extensionNumber: "5000", secret: SECRET }],
];

describe("GraphQL and REST refuse the same input with the same messages", () => {
  it.each(createCases)("create with %s", async (_label, input) => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const seed = await rest("POST", "/api/extensions", { key: adminKey, json: { tenant_id: Number(tenant.id), extension_number: "5000", secret: SECRET } });
    expect(seed.status).toBe(201);
    const gql = await ts.gql(CreateExtensionDocument, { input: { tenantId: tenant.id, ...input } }, adminKey);
    const r = await rest("POST", "/api/extensions", { key: adminKey, json: { tenant_id: Number(tenant.id), ...snakeBody(input) } });
    const error = gql.errors?.[0];
    expect(error?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(r.status).toBe(422);
    expect(r.body).toEqual({ message: error!.message, errors: snakeFields(error!.extensions!.fields!) });
    expect(Object.keys(r.body.errors).length).toBeGreaterThan(0);
    const count = await ts.server.db.dataSource.query(`SELECT count(*)::int AS n FROM extension WHERE tenant_id = $1`, [Number(tenant.id)]);
    expect(count[0].n).toBe(1);
  });

  it("create at a tenant's limit", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts, { maxExtensions: 0 });
    const gql = await ts.gql(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1001", secret: SECRET } }, adminKey);
    const r = await rest("POST", "/api/extensions", { key: adminKey, json: { tenant_id: Number(tenant.id), extension_number: "1001", secret: SECRET } });
    expect(gql.errors?.[0].extensions?.code).toBe("EXTENSION_LIMIT_REACHED");
    expect(r.status).toBe(422);
    expect(r.body).toEqual({ message: gql.errors![0].message, errors: snakeFields(gql.errors![0].extensions!.fields!) });
  });

  it("create in a tenant that does not exist (ADMIN)", async () => {
    const gql = await ts.gql(CreateExtensionDocument, { input: { tenantId: "2000000000", extensionNumber: "1001", secret: SECRET } });
    const r = await rest("POST", "/api/extensions", { json: { tenant_id: 2000000000, extension_number: "1001", secret: SECRET } });
    expect(gql.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    expect(r.status).toBe(422);
    expect(r.body).toEqual({ message: gql.errors![0].message, errors: snakeFields(gql.errors![0].extensions!.fields!) });
  });

  const updateCases: Array<[string, UpdateExtensionInput]> = [
    ["letters in the number", { extensionNumber: "12ab" }],
    ["an empty number", { extensionNumber: "" }],
    ["a short secret", { secret: "short" }],
    ["a bad email", { email: "nope", displayName: "ok" }],
    ["a display name over 255 characters", { displayName: "x".repeat(256) }],
    ["everything wrong at once", { extensionNumber: "x", secret: "s", email: "@" }],
    ["a taken number", { extensionNumber: "5000" }],
  ];

  it.each(updateCases)("update (PATCH) with %s", async (_label, input) => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const create = (n: string) => rest("POST", "/api/extensions", { key: adminKey, json: { tenant_id: Number(tenant.id), extension_number: n, secret: SECRET } });
    await create("5000");
    const target = (await create("5001")).body.data;
    const gql = await ts.gql(UpdateExtensionDocument, { id: String(target.id), input }, adminKey);
    const r = await rest("PATCH", `/api/extensions/${target.id}`, { key: adminKey, json: snakeBody(input as Record<string, unknown>) });
    const error = gql.errors?.[0];
    expect(error?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(r.status).toBe(422);
    expect(r.body).toEqual({ message: error!.message, errors: snakeFields(error!.extensions!.fields!) });
    expect((await rest("GET", `/api/extensions/${target.id}`, { key: adminKey })).body.data).toEqual(target);
  });

  it("valid input gives the same extension through both", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const input = { extensionNumber: "6001", displayName: "Same", email: "same@x.example.com", secret: SECRET, voicemailEnabled: true };
    const { createExtension: viaGql } = await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, ...input } }, adminKey);
    const viaRest = (await rest("POST", "/api/extensions", { key: adminKey, json: { tenant_id: Number(tenant.id), ...snakeBody({ ...input, extensionNumber: "6002" }) } })).body.data;
    const shown = (await rest("GET", `/api/extensions/${viaGql.id}`, { key: adminKey })).body.data;
    expect(shown).toEqual({
      id: Number(viaGql.id),
      tenant_id: Number(viaGql.tenantId),
      extension_number: viaGql.extensionNumber,
      display_name: viaGql.displayName,
      email: viaGql.email,
      status: viaGql.status.toLowerCase(),
      voicemail_enabled: viaGql.voicemailEnabled,
      created_at: viaGql.createdAt,
      updated_at: viaGql.updatedAt,
    });
    expect({ ...viaRest, id: 0, extension_number: "", created_at: "", updated_at: "" }).toEqual({ ...shown, id: 0, extension_number: "", created_at: "", updated_at: "" });
  });
});
