import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createKey, createTenant, tenantWithKeys } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { OPENAPI_DOCUMENT } from "../../src/rest/openapi";
import { documentedResponses, restClient, seen, type Rest } from "./rest-support";

let ts: TestServer;
let rest: Rest;
const logLines: string[] = [];
beforeAll(async () => {
  ts = await startTestServer({ logSink: (line) => void logLines.push(line) });
  rest = restClient(ts);
});
afterAll(() => ts?.stop());

const sql = <T = any>(text: string, params: unknown[] = []): Promise<T[]> => ts.server.db.dataSource.query(text, params);
const secretOf = async (id: number): Promise<string> => (await sql(`SELECT secret_ciphertext AS c FROM extension WHERE id = $1`, [id]))[0].c;

const SECRET = "s3cur3p@ss";
const body = (tenantId: number | string, over: Record<string, unknown> = {}) => ({
  tenant_id: Number(tenantId),
  extension_number: String(1000 + Math.floor(Math.random() * 8000)),
  secret: SECRET,
  ...over,
});

async function createVia(key: string, tenantId: number | string, over: Record<string, unknown> = {}) {
  const r = await rest("POST", "/api/extensions", { key, json: body(tenantId, over) });
  expect(r.status).toBe(201);
  return r.body.data as Record<string, any>;
}

async function countIn(tenantId: number | string): Promise<number> {
  return (await sql(`SELECT count(*)::int AS n FROM extension WHERE tenant_id = $1`, [Number(tenantId)]))[0].n;
}

async function enrol(tenantId: number, extensionId: number, name: string, number: string): Promise<number> {
  const [queue] = await sql(`INSERT INTO queue (tenant_id, name, number) VALUES ($1, $2, $3) RETURNING id`, [tenantId, name, number]);
  await sql(`INSERT INTO queue_agent (tenant_id, queue_id, extension_id) VALUES ($1, $2, $3)`, [tenantId, queue.id, extensionId]);
  return queue.id;
}

describe("POST /api/extensions", () => {
  it("creates an extension: 201, the data wrapper, snake_case, integer ids, defaults, never the secret", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const r = await rest("POST", "/api/extensions", { key: adminKey, json: { tenant_id: Number(tenant.id), extension_number: "1001", secret: SECRET } });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      data: {
        id: expect.any(Number),
        tenant_id: Number(tenant.id),
        extension_number: "1001",
        display_name: null,
        email: null,
        status: "active",
        voicemail_enabled: false,
        created_at: expect.any(String),
        updated_at: expect.any(String),
      },
    });
    expect(new Date(r.body.data.created_at).toISOString()).toBe(r.body.data.created_at);
    expect(r.headers.get("location")).toBe(`/api/extensions/${r.body.data.id}`);
    expect(r.text).not.toContain(SECRET);
    expect(r.text).not.toContain("secret");
    expect(await secretOf(r.body.data.id)).not.toContain(SECRET);
  });

  it("accepts every field, and ignores fields it does not know (id, created_at, ...)", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const r = await rest("POST", "/api/extensions", {
      key: adminKey,
      json: { ...body(tenant.id, { extension_number: "2001" }), display_name: "Bob", email: "bob@acme.example.com", status: "disabled", voicemail_enabled: true, id: 999999, created_at: "1999-01-01T00:00:00Z", bogus: 1 },
    });
    expect(r.status).toBe(201);
    expect(r.body.data).toMatchObject({ extension_number: "2001", display_name: "Bob", email: "bob@acme.example.com", status: "disabled", voicemail_enabled: true });
    expect(r.body.data.id).not.toBe(999999);
    expect(r.body.data.created_at).not.toBe("1999-01-01T00:00:00.000Z");
  });

  it("an empty body is refused with every required field named", async () => {
    const { adminKey } = await tenantWithKeys(ts);
    const r = await rest("POST", "/api/extensions", { key: adminKey, json: {} });
    expect(r.status).toBe(422);
    expect(r.body.message).toBe("The given data was invalid.");
    expect(Object.keys(r.body.errors).sort()).toEqual(["extension_number", "secret", "tenant_id"]);
    // A missing value fails the type rule and the format rule, which share one message.
    expect(new Set(r.body.errors.tenant_id)).toEqual(new Set(["The tenant id field is required."]));
    expect(new Set(r.body.errors.extension_number)).toEqual(new Set(["The extension number must be 1 to 20 digits."]));
    expect(new Set(r.body.errors.secret)).toEqual(new Set(["The secret must be a string of 8 to 128 characters."]));
    const none = await rest("POST", "/api/extensions", { key: adminKey });
    expect(none.status).toBe(422);
    expect(Object.keys(none.body.errors).sort()).toEqual(["extension_number", "secret", "tenant_id"]);
  });

  it.each([
    [{ extension_number: "12ab" }, "extension_number", "The extension number must be 1 to 20 digits."],
    [{ extension_number: "1".repeat(21) }, "extension_number", "The extension number must be 1 to 20 digits."],
    [{ extension_number: 1001 }, "extension_number", "The extension number must be 1 to 20 digits."],
    [{ display_name: "x".repeat(256) }, "display_name", "The display name must be a string of at most 255 characters."],
    [{ email: "not-an-email" }, "email", "The email must be a valid email address of at most 255 characters."],
    [{ secret: "short" }, "secret", "The secret must be a string of 8 to 128 characters."],
    [{ secret: "x".repeat(129) }, "secret", "The secret must be a string of 8 to 128 characters."],
    [{ status: "ACTIVE" }, "status", "The status must be active or disabled."],
    [{ voicemail_enabled: "yes" }, "voicemail_enabled", "The voicemail enabled field must be true or false."],
  ])("refuses %j: 422 naming %s, and creates nothing", async (over, field, message) => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const r = await rest("POST", "/api/extensions", { key: adminKey, json: body(tenant.id, over) });
    expect(r.status).toBe(422);
    expect(r.body).toEqual({ message: "The given data was invalid.", errors: { [field]: expect.arrayContaining([message]) } });
    expect(new Set(r.body.errors[field])).toEqual(new Set([message]));
    expect(await countIn(tenant.id)).toBe(0);
  });

  it("refuses a taken number with 422 on extension_number; the same number in another tenant is fine", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    await createVia(adminKey, tenant.id, { extension_number: "3001" });
    const r = await rest("POST", "/api/extensions", { key: adminKey, json: body(tenant.id, { extension_number: "3001" }) });
    expect(r.status).toBe(422);
    expect(r.body.errors).toEqual({ extension_number: ["The extension number has already been taken."] });
    expect(await countIn(tenant.id)).toBe(1);
    const other = await tenantWithKeys(ts);
    await createVia(other.adminKey, other.tenant.id, { extension_number: "3001" });
  });

  it("refuses a tenant at its max_extensions with 422 on tenant_id", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts, { maxExtensions: 1 });
    await createVia(adminKey, tenant.id);
    const r = await rest("POST", "/api/extensions", { key: adminKey, json: body(tenant.id) });
    expect(r.status).toBe(422);
    expect(r.body).toEqual({
      message: "The tenant has reached its limit of 1 extensions.",
      errors: { tenant_id: ["The tenant has reached its limit of 1 extensions."] },
    });
    expect(await countIn(tenant.id)).toBe(1);
  });

  it("a tenant that does not exist is 422 on tenant_id (Laravel's exists rule)", async () => {
    const r = await rest("POST", "/api/extensions", { json: body(2_000_000_000) });
    expect(r.status).toBe(422);
    expect(r.body.errors).toEqual({ tenant_id: ["The selected tenant does not exist."] });
  });

  it("a body that is not a JSON object is 400; malformed JSON is 400; nothing is created", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const array = await rest("POST", "/api/extensions", { key: adminKey, json: [body(tenant.id)] });
    expect(array.status).toBe(400);
    expect(array.body).toEqual({ message: "The request body must be a JSON object." });
    const malformed = await rest("POST", "/api/extensions", { key: adminKey, raw: '{"tenant_id": 1,', headers: { "content-type": "application/json" } });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toEqual({ message: "The request body is not valid JSON." });
    const scalar = await rest("POST", "/api/extensions", { key: adminKey, raw: '"text"', headers: { "content-type": "application/json" } });
    expect(scalar.status).toBe(400);
    expect(await countIn(tenant.id)).toBe(0);
  });

  it("an oversize body is 413, a non-JSON body 415; nothing is created", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const huge = await rest("POST", "/api/extensions", { key: adminKey, json: body(tenant.id, { display_name: "x".repeat(1024 * 1024 + 10) }) });
    expect(huge.status).toBe(413);
    expect(huge.body).toEqual({ message: "The request body is too large." });
    const form = await rest("POST", "/api/extensions", {
      key: adminKey,
      raw: `tenant_id=${tenant.id}&extension_number=1001&secret=${SECRET}`,
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(form.status).toBe(415);
    expect(form.body).toEqual({ message: "The request body must be JSON (Content-Type: application/json)." });
    expect(await countIn(tenant.id)).toBe(0);
  });
});

describe("GET /api/extensions/{id}", () => {
  it("answers the extension in a data wrapper", async () => {
    const { tenant, adminKey, viewerKey } = await tenantWithKeys(ts);
    const created = await createVia(adminKey, tenant.id, { display_name: "Alice", email: "alice@x.example.com" });
    const r = await rest("GET", `/api/extensions/${created.id}`, { key: viewerKey });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ data: created });
  });

  it.each(["999999999", "abc", "0", "-1", "1.5", "99999999999"])("an id that names nothing (%s) is 404 with a message", async (id) => {
    const r = await rest("GET", `/api/extensions/${id}`);
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ message: "Extension not found." });
  });
});

describe("GET /api/extensions", () => {
  let tenant: { id: string };
  let key: string;
  let ids: number[];
  beforeAll(async () => {
    ({ tenant, adminKey: key } = await tenantWithKeys(ts, { maxExtensions: 100 }));
    ids = [];
    for (let i = 0; i < 20; i++) {
      const e = await createVia(key, tenant.id, {
        extension_number: String(5000 + i),
        display_name: i === 3 ? "Alice Smith" : `User ${i}`,
        email: i === 7 ? "ALICE.jones@acme.example.com" : `u${i}@acme.example.com`,
        status: i % 4 === 0 ? "disabled" : "active",
      });
      ids.push(e.id);
    }
  });

  it("pages with Laravel's defaults: 15 per page, links and meta", async () => {
    const r = await rest("GET", "/api/extensions", { key });
    expect(r.status).toBe(200);
    expect(r.body.data.map((e: { id: number }) => e.id)).toEqual(ids.slice(0, 15));
    const base = `${ts.url}/api/extensions`;
    expect(r.body.meta).toEqual({ current_page: 1, from: 1, last_page: 2, path: base, per_page: 15, to: 15, total: 20 });
    expect(r.body.links).toEqual({ first: `${base}?per_page=15&page=1`, last: `${base}?per_page=15&page=2`, prev: null, next: `${base}?per_page=15&page=2` });
    const next = await rest("GET", new URL(r.body.links.next).pathname + new URL(r.body.links.next).search, { key });
    expect(next.body.data.map((e: { id: number }) => e.id)).toEqual(ids.slice(15));
    expect(next.body.meta).toMatchObject({ current_page: 2, from: 16, to: 20, last_page: 2 });
    expect(next.body.links).toMatchObject({ prev: `${base}?per_page=15&page=1`, next: null });
  });

  it("page and per_page select rows by id; a page past the end is empty", async () => {
    const r = await rest("GET", "/api/extensions?per_page=5&page=3", { key });
    expect(r.body.data.map((e: { id: number }) => e.id)).toEqual(ids.slice(10, 15));
    expect(r.body.meta).toMatchObject({ current_page: 3, per_page: 5, total: 20, last_page: 4, from: 11, to: 15 });
    const past = await rest("GET", "/api/extensions?per_page=5&page=9", { key });
    expect(past.status).toBe(200);
    expect(past.body.data).toEqual([]);
    expect(past.body.meta).toMatchObject({ current_page: 9, from: null, to: null, total: 20, last_page: 4 });
  });

  it("search matches number, display name or email, case-insensitively, and the links keep the filters", async () => {
    const byName = await rest("GET", "/api/extensions?search=alice", { key });
    expect(byName.body.data.map((e: { id: number }) => e.id)).toEqual([ids[3], ids[7]]);
    expect(byName.body.meta.total).toBe(2);
    expect(byName.body.links.first).toBe(`${ts.url}/api/extensions?search=alice&per_page=15&page=1`);
    const byNumber = await rest("GET", "/api/extensions?search=5019", { key });
    expect(byNumber.body.data.map((e: { id: number }) => e.id)).toEqual([ids[19]]);
    const byEmail = await rest("GET", "/api/extensions?search=U12%40ACME", { key });
    expect(byEmail.body.data.map((e: { id: number }) => e.id)).toEqual([ids[12]]);
    const literal = await rest("GET", "/api/extensions?search=%25", { key });
    expect(literal.body.data).toEqual([]);
  });

  it("status and tenant_id filter; empty parameters count as absent", async () => {
    const disabled = await rest("GET", `/api/extensions?status=disabled&tenant_id=${tenant.id}&per_page=100&search=`, { key });
    expect(disabled.body.data.map((e: { id: number }) => e.id)).toEqual(ids.filter((_, i) => i % 4 === 0));
    expect(disabled.body.data.every((e: { status: string }) => e.status === "disabled")).toBe(true);
    expect(disabled.body.links.first).toBe(`${ts.url}/api/extensions?tenant_id=${tenant.id}&status=disabled&per_page=100&page=1`);
  });

  it("an ADMIN without tenant_id lists every tenant; with it, one tenant", async () => {
    const other = await tenantWithKeys(ts);
    const theirs = await createVia(other.adminKey, other.tenant.id);
    const all = await rest("GET", "/api/extensions?per_page=100");
    const tenantsSeen = new Set(all.body.data.map((e: { tenant_id: number }) => e.tenant_id));
    expect(tenantsSeen.has(Number(tenant.id))).toBe(true);
    expect(all.body.meta.total).toBeGreaterThanOrEqual(21);
    const one = await rest("GET", `/api/extensions?tenant_id=${other.tenant.id}`);
    expect(one.body.data).toEqual([theirs]);
  });

  it.each([
    ["per_page=0", "per_page", "The per page must be a whole number from 1 to 100."],
    ["per_page=101", "per_page", "The per page must be a whole number from 1 to 100."],
    ["per_page=ten", "per_page", "The per page must be a whole number from 1 to 100."],
    ["page=0", "page", "The page must be a whole number from 1 to 1000000."],
    ["page=-2", "page", "The page must be a whole number from 1 to 1000000."],
    ["page=1.5", "page", "The page must be a whole number from 1 to 1000000."],
    ["status=ACTIVE", "status", "The status must be active or disabled."],
    ["search=a&search=b", "search", "The search must be a string."],
    ["tenant_id=2000000000", "tenant_id", "The selected tenant does not exist."],
    ["tenant_id=abc", "tenant_id", "The selected tenant does not exist."],
  ])("refuses %s with 422 on %s", async (query, field, message) => {
    const r = await rest("GET", `/api/extensions?${query}`, { key: ts.adminKey });
    expect(r.status).toBe(422);
    expect(r.body.errors).toEqual({ [field]: [message] });
  });
});

describe("PUT /api/extensions/{id}: the whole resource", () => {
  it("replaces every field; the secret changes when given", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id, { extension_number: "1001", display_name: "Alice Smith" });
    const before = await secretOf(e.id);
    const r = await rest("PUT", `/api/extensions/${e.id}`, {
      key: adminKey,
      json: { tenant_id: Number(tenant.id), extension_number: "1002", display_name: "Alice Johnson", email: "alice.johnson@acme.example.com", secret: "n3wp@ssw0rd", status: "disabled", voicemail_enabled: true },
    });
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({
      ...e,
      extension_number: "1002",
      display_name: "Alice Johnson",
      email: "alice.johnson@acme.example.com",
      status: "disabled",
      voicemail_enabled: true,
      updated_at: expect.any(String),
    });
    expect(r.text).not.toContain("n3wp@ssw0rd");
    expect(await secretOf(e.id)).not.toBe(before);
  });

  it("keeps the secret when absent; absent optional fields take the create defaults", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id, { display_name: "Alice", email: "a@x.example.com", status: "disabled", voicemail_enabled: true });
    const before = await secretOf(e.id);
    const r = await rest("PUT", `/api/extensions/${e.id}`, { key: adminKey, json: { tenant_id: Number(tenant.id), extension_number: e.extension_number } });
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({ display_name: null, email: null, status: "active", voicemail_enabled: false });
    expect(await secretOf(e.id)).toBe(before);
  });

  it("requires tenant_id and extension_number, and changes nothing when refused", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id, { display_name: "Keep" });
    const r = await rest("PUT", `/api/extensions/${e.id}`, { key: adminKey, json: { display_name: "Changed" } });
    expect(r.status).toBe(422);
    expect(Object.keys(r.body.errors).sort()).toEqual(["extension_number", "tenant_id"]);
    expect(r.body.errors.tenant_id).toEqual(["The tenant id field is required."]);
    expect(new Set(r.body.errors.extension_number)).toEqual(new Set(["The extension number must be 1 to 20 digits."]));
    const bad = await rest("PUT", `/api/extensions/${e.id}`, { key: adminKey, json: { tenant_id: Number(tenant.id), extension_number: "1", secret: "short", email: "nope" } });
    expect(bad.status).toBe(422);
    expect(Object.keys(bad.body.errors).sort()).toEqual(["email", "secret"]);
    expect((await rest("GET", `/api/extensions/${e.id}`, { key: adminKey })).body.data).toEqual(e);
  });

  it("refuses moving an extension to another tenant", async () => {
    const a = await tenantWithKeys(ts);
    const b = await createTenant(ts);
    const e = await createVia(a.adminKey, a.tenant.id);
    for (const key of [a.adminKey, ts.adminKey]) {
      const r = await rest("PUT", `/api/extensions/${e.id}`, { key, json: { tenant_id: Number(b.id), extension_number: e.extension_number } });
      expect(r.status).toBe(422);
      expect(r.body.errors).toEqual({ tenant_id: ["The tenant of an extension cannot be changed."] });
    }
    expect((await rest("GET", `/api/extensions/${e.id}`)).body.data).toEqual(e);
  });

  it("refuses a number taken in the tenant with 422", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const first = await createVia(adminKey, tenant.id, { extension_number: "4001" });
    const second = await createVia(adminKey, tenant.id, { extension_number: "4002" });
    const r = await rest("PUT", `/api/extensions/${second.id}`, { key: adminKey, json: { tenant_id: Number(tenant.id), extension_number: first.extension_number } });
    expect(r.status).toBe(422);
    expect(r.body.errors).toEqual({ extension_number: ["The extension number has already been taken."] });
  });

  it("an unknown id is 404 before the body is judged", async () => {
    const r = await rest("PUT", "/api/extensions/999999999", { json: {} });
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ message: "Extension not found." });
  });
});

describe("PATCH /api/extensions/{id}: the given fields only", () => {
  it("changes what is given and keeps the rest, secret included", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id, { display_name: "Alice", email: "a@x.example.com", status: "disabled" });
    const before = await secretOf(e.id);
    const r = await rest("PATCH", `/api/extensions/${e.id}`, { key: adminKey, json: { display_name: "Alicia" } });
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ ...e, display_name: "Alicia", updated_at: expect.any(String) });
    expect(await secretOf(e.id)).toBe(before);
    const cleared = await rest("PATCH", `/api/extensions/${e.id}`, { key: adminKey, json: { email: null, tenant_id: Number(tenant.id), secret: "an0ther-secret" } });
    expect(cleared.body.data).toMatchObject({ display_name: "Alicia", email: null, status: "disabled" });
    expect(await secretOf(e.id)).not.toBe(before);
    const empty = await rest("PATCH", `/api/extensions/${e.id}`, { key: adminKey, json: {} });
    expect(empty.status).toBe(200);
    expect(empty.body.data).toEqual(cleared.body.data);
  });

  it.each([
    [{ extension_number: null }, "extension_number"],
    [{ status: null }, "status"],
    [{ voicemail_enabled: null }, "voicemail_enabled"],
    [{ secret: "" }, "secret"],
    [{ email: "@" }, "email"],
  ])("refuses %j with 422 and changes nothing", async (patch, field) => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id);
    const r = await rest("PATCH", `/api/extensions/${e.id}`, { key: adminKey, json: patch });
    expect(r.status).toBe(422);
    expect(Object.keys(r.body.errors)).toEqual([field]);
    expect((await rest("GET", `/api/extensions/${e.id}`)).body.data).toEqual(e);
  });

  it("refuses a tenant_id that is not the extension's own", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id);
    const r = await rest("PATCH", `/api/extensions/${e.id}`, { key: adminKey, json: { tenant_id: null, display_name: "x" } });
    expect(r.status).toBe(422);
    expect(r.body.errors).toEqual({ tenant_id: ["The tenant of an extension cannot be changed."] });
    expect((await rest("GET", `/api/extensions/${e.id}`)).body.data).toEqual(e);
  });

  it("an unknown id is 404", async () => {
    const r = await rest("PATCH", "/api/extensions/999999999", { json: { display_name: "x" } });
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ message: "Extension not found." });
  });
});

describe("DELETE /api/extensions/{id}", () => {
  it("deletes: 204 without a body, then 404", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id);
    const r = await rest("DELETE", `/api/extensions/${e.id}`, { key: adminKey });
    expect(r.status).toBe(204);
    expect(r.text).toBe("");
    expect((await rest("GET", `/api/extensions/${e.id}`)).status).toBe(404);
    expect((await rest("DELETE", `/api/extensions/${e.id}`, { key: adminKey })).status).toBe(404);
  });

  it("refuses while the extension is a queue agent: 409 naming the queues; nothing changes", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id);
    const sales = await enrol(Number(tenant.id), e.id, "Sales", "600");
    const support = await enrol(Number(tenant.id), e.id, "Support", "601");
    const r = await rest("DELETE", `/api/extensions/${e.id}`, { key: adminKey });
    expect(r.status).toBe(409);
    expect(r.body).toEqual({
      message: "The extension is an agent of queues Sales, Support; remove it from them first or pass force.",
      queues: [
        { id: sales, name: "Sales", number: "600" },
        { id: support, name: "Support", number: "601" },
      ],
    });
    for (const force of ["false", "0"]) {
      expect((await rest("DELETE", `/api/extensions/${e.id}?force=${force}`, { key: adminKey })).status).toBe(409);
    }
    expect((await rest("GET", `/api/extensions/${e.id}`)).body.data).toEqual(e);
    expect((await sql(`SELECT count(*)::int AS n FROM queue_agent WHERE extension_id = $1`, [e.id]))[0].n).toBe(2);
  });

  it("force=true unenrols and deletes in one go", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id);
    const queue = await enrol(Number(tenant.id), e.id, "Sales", "600");
    const r = await rest("DELETE", `/api/extensions/${e.id}?force=true`, { key: adminKey });
    expect(r.status).toBe(204);
    expect((await sql(`SELECT count(*)::int AS n FROM queue_agent WHERE extension_id = $1`, [e.id]))[0].n).toBe(0);
    expect((await sql(`SELECT count(*)::int AS n FROM queue WHERE id = $1`, [queue]))[0].n).toBe(1);
    expect((await rest("GET", `/api/extensions/${e.id}`)).status).toBe(404);
  });

  it("refuses a force that is not a boolean, and deletes nothing", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id);
    const r = await rest("DELETE", `/api/extensions/${e.id}?force=maybe`, { key: adminKey });
    expect(r.status).toBe(422);
    expect(r.body.errors).toEqual({ force: ["The force field must be true or false."] });
    expect((await rest("GET", `/api/extensions/${e.id}`)).status).toBe(200);
  });
});

describe("authentication and roles", () => {
  let tenant: { id: string };
  let adminKey: string;
  let viewerKey: string;
  let ingestKey: string;
  let ext: Record<string, any>;
  beforeAll(async () => {
    ({ tenant, adminKey, viewerKey } = await tenantWithKeys(ts));
    ingestKey = await createKey(ts, "INGEST", tenant.id);
    ext = await createVia(adminKey, tenant.id);
  });

  const routes = (id: number | string): Array<[string, string, unknown?]> => [
    ["GET", "/api/extensions"],
    ["POST", "/api/extensions", body(1)],
    ["GET", `/api/extensions/${id}`],
    ["PUT", `/api/extensions/${id}`, body(1)],
    ["PATCH", `/api/extensions/${id}`, { display_name: "x" }],
    ["DELETE", `/api/extensions/${id}`],
  ];

  it.each([
    ["no header", null, undefined],
    ["an unknown key", "pbx_not-a-key", undefined],
    ["a key that is not Bearer", null, { authorization: "Basic dXNlcjpwYXNz" }],
  ])("with %s every route is 401 Unauthenticated.", async (_label, key, headers) => {
    for (const [method, path, json] of routes(ext.id)) {
      const r = await rest(method, path, { key, json, headers });
      expect([method, path, r.status]).toEqual([method, path, 401]);
      expect(r.body).toEqual({ message: "Unauthenticated." });
      expect(r.headers.get("www-authenticate")).toBe("Bearer");
    }
    expect((await rest("GET", `/api/extensions/${ext.id}`)).body.data).toEqual(ext);
  });

  it("a VIEWER reads, and every write is 403 whatever it names or sends", async () => {
    expect((await rest("GET", "/api/extensions", { key: viewerKey })).body.data).toEqual([ext]);
    expect((await rest("GET", `/api/extensions/${ext.id}`, { key: viewerKey })).status).toBe(200);
    for (const id of [ext.id, 999999999]) {
      for (const [method, path] of routes(id).filter(([m]) => m !== "GET")) {
        for (const json of [method === "DELETE" ? undefined : body(tenant.id), method === "DELETE" ? undefined : {}]) {
          const r = await rest(method, path, { key: viewerKey, json });
          expect([method, path, r.status]).toEqual([method, path, 403]);
          expect(r.body).toEqual({ message: "This action is not allowed for your API key." });
        }
      }
    }
    expect((await rest("GET", `/api/extensions/${ext.id}`)).body.data).toEqual(ext);
    expect(await countIn(tenant.id)).toBe(1);
  });

  it("an INGEST key reads nothing and writes nothing: 403", async () => {
    for (const id of [ext.id, 999999999]) {
      for (const [method, path, json] of routes(id)) {
        const r = await rest(method, path, { key: ingestKey, json });
        expect([method, path, r.status]).toEqual([method, path, 403]);
      }
    }
  });

  it("the OpenAPI document needs no key", async () => {
    const r = await rest("GET", "/api/openapi.json", { key: null });
    expect(r.status).toBe(200);
  });
});

describe("routing and failures", () => {
  it.each([
    ["GET", "/api/nope"],
    ["GET", "/api/extensions/1/devices"],
    ["POST", "/api/extension"],
    ["GET", "/api"],
  ])("an unknown route (%s %s) is 404 in JSON, with or without a key", async (method, path) => {
    for (const key of [ts.adminKey, null]) {
      const r = await rest(method, path, { key });
      expect(r.status).toBe(404);
      expect(r.headers.get("content-type")).toContain("application/json");
      expect(r.body).toEqual({ message: "Not Found" });
    }
  });

  it.each([
    ["DELETE", "/api/extensions", "GET, HEAD, POST, OPTIONS"],
    ["PUT", "/api/extensions", "GET, HEAD, POST, OPTIONS"],
    ["POST", "/api/extensions/1", "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"],
    ["POST", "/api/openapi.json", "GET, HEAD, OPTIONS"],
  ])("a known route with a wrong method (%s %s) is 405 in JSON with Allow", async (method, path, allow) => {
    const r = await rest(method, path, { key: null });
    expect(r.status).toBe(405);
    expect(r.headers.get("allow")).toBe(allow);
    expect(r.body).toEqual({ message: expect.stringContaining(`The ${method} method is not supported`) });
    const options = await rest("OPTIONS", path, { key: null });
    expect(options.status).toBe(204);
    expect(options.headers.get("allow")).toBe(allow);
  });

  it("the body checks (400, 413, 415) hold for PUT and PATCH too, and change nothing", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id);
    for (const method of ["PUT", "PATCH"]) {
      const path = `/api/extensions/${e.id}`;
      const malformed = await rest(method, path, { key: adminKey, raw: "{", headers: { "content-type": "application/json" } });
      expect(malformed.status).toBe(400);
      const array = await rest(method, path, { key: adminKey, json: [] });
      expect(array.status).toBe(400);
      const huge = await rest(method, path, { key: adminKey, json: body(tenant.id, { display_name: "x".repeat(1024 * 1024 + 10) }) });
      expect(huge.status).toBe(413);
      const text = await rest(method, path, { key: adminKey, raw: "display_name=x", headers: { "content-type": "text/plain" } });
      expect(text.status).toBe(415);
    }
    expect((await rest("GET", `/api/extensions/${e.id}`)).body.data).toEqual(e);
  });

  it("an unexpected failure is 500 Server Error on every route: logged, never leaking SQL or stacks", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const e = await createVia(adminKey, tenant.id);
    const service = ts.server.services.extensions;
    const calls: Array<[keyof typeof service, string, string, unknown?]> = [
      ["paginate", "GET", "/api/extensions"],
      ["createInTenant", "POST", "/api/extensions", body(tenant.id)],
      ["get", "GET", `/api/extensions/${e.id}`],
      ["replace", "PUT", `/api/extensions/${e.id}`, body(tenant.id)],
      ["updateInTenant", "PATCH", `/api/extensions/${e.id}`, {}],
      ["delete", "DELETE", `/api/extensions/${e.id}`],
    ];
    for (const [name, method, path, json] of calls) {
      const spy = jest.spyOn(service, name as "get").mockRejectedValueOnce(new Error('relation "extension" does not exist: SELECT secret_ciphertext FROM extension'));
      try {
        const r = await rest(method, path, { key: adminKey, json });
        expect([method, r.status]).toEqual([method, 500]);
        expect(r.body).toEqual({ message: "Server Error" });
        expect(r.text).not.toMatch(/SELECT|relation|\.ts/);
        const requestId = r.headers.get("x-request-id");
        const logged = logLines.map((l) => JSON.parse(l)).find((l) => l.msg === "unexpected error in REST request" && l.requestId === requestId);
        expect(logged?.err?.message).toContain("SELECT secret_ciphertext");
      } finally {
        spy.mockRestore();
      }
    }
    expect((await rest("GET", `/api/extensions/${e.id}`)).body.data).toEqual(e);
  });
});

describe("OpenAPI 3.1 document", () => {
  it("is served at GET /api/openapi.json and is valid by a real OpenAPI validator", async () => {
    const r = await rest("GET", "/api/openapi.json", { key: null });
    expect(r.body).toEqual(JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)));
    expect(r.body.openapi).toBe("3.1.0");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-openapi-"));
    try {
      const file = path.join(dir, "openapi.json");
      fs.writeFileSync(file, r.text);
      const cli = require.resolve("@seriousme/openapi-schema-validator/bin/validate-api-cli.js");
      const { stdout } = await promisify(execFile)(process.execPath, [cli, file]);
      expect(JSON.parse(stdout)).toMatchObject({ valid: true });
      // The same validator refuses a broken document, so the check above can fail.
      fs.writeFileSync(file, JSON.stringify({ ...r.body, paths: { "/x": { get: { responses: { "200": { content: 5 } } } } } }));
      const broken = await promisify(execFile)(process.execPath, [cli, file]).catch((error: { stdout: string }) => error);
      expect(JSON.parse(broken.stdout)).toMatchObject({ valid: false });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("every documented status of every operation was answered, and matched its schema, in this suite", () => {
    // The engine's path (engine-credentials.test.ts), the bulk import and export (extension-import.test.ts) and voicemail's
    // routes (voicemail.test.ts) have their own suites, as have call handling and the greeting (rest-extension-settings.test.ts).
    const own = (template: string) =>
      !template.startsWith("/api/engine/") && !template.startsWith("/api/extensions/import") && !template.startsWith("/api/extensions/export") && !template.includes("voicemail") &&
      !template.endsWith("/call-handling");
    const missing = documentedResponses(own).filter((r) => !seen.has(r));
    expect(missing).toEqual([]);
  });
});
