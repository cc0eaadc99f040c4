import {
  AuditLogDocument,
  CreateExtensionDocument,
  ImportExtensionsDocument,
  type ImportExtensionsMutation,
} from "../graphql/generated";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { sipDigests } from "../../src/modules/extension/extension-credentials";
import { documentedResponses, restClient, seen, type Rest } from "./rest-support";

const IMPORT_LIMIT = 512 * 1024;
let ts: TestServer;
let rest: Rest;
beforeAll(async () => {
  ts = await startTestServer({ env: { IMPORT_BODY_LIMIT_BYTES: String(IMPORT_LIMIT) } });
  rest = restClient(ts);
});
afterAll(() => ts?.stop());

const SECRET = "Imp0rt-secret-1";
const sql = <T = any>(text: string, params: unknown[] = []): Promise<T[]> => ts.server.db.dataSource.query(text, params);
const countIn = async (tenantId: string) => (await sql(`SELECT count(*)::int AS n FROM extension WHERE tenant_id = $1`, [Number(tenantId)]))[0].n as number;
const auditCount = async (tenantId: string) =>
  (await sql(`SELECT count(*)::int AS n FROM audit_entry WHERE tenant_id = $1 AND entity_type = 'extension'`, [Number(tenantId)]))[0].n as number;
const csv = (text: string) => ({ raw: text, headers: { "content-type": "text/csv" } });
const failedLines = (rows: Array<{ line: number; status: string }>) => rows.filter((r) => r.status.toUpperCase() === "FAILED").map((r) => r.line);
type GqlResult = ImportExtensionsMutation["importExtensions"];

async function exportOf(tenantId: string, key = ts.adminKey): Promise<string> {
  const r = await rest("GET", `/api/extensions/export?tenant_id=${tenantId}`, { key });
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toMatch(/^text\/csv/);
  return r.text;
}

describe("bulk import: refusals name every bad line, and write nothing", () => {
  it("a CSV with a BOM, CRLF and quoting: every failing line is named (header = line 1), nothing is written", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const file = [
      "\uFEFFextension_number,display_name,email,secret,status,voicemail_enabled",
      `100,"Smith, Alice",alice@example.com,${SECRET},active,true`, // 2 ok
      `101,Bob,not-an-email,${SECRET},,`, // 3 bad email
      `102,"Line one`, // 4-5: a quoted cell over two lines, duplicate number
      `line two",,${SECRET},,false`,
      `103,Carol,,short,,`, // 6 short secret
      `102,Dave,,${SECRET},,`, // 7 duplicate of line 4
      `104,Eve`, // 8 too few fields
      `105,Frank,,${SECRET},retired,maybe`, // 9 bad status and voicemail flag
      `,Nobody,,${SECRET},,`, // 10 no number
      "",
    ].join("\r\n");
    const r = await rest("POST", `/api/extensions/import?tenant_id=${tenant.id}`, { key: adminKey, ...csv(file) });
    expect(r.status).toBe(422);
    const result = r.body.data;
    expect(failedLines(result.rows)).toEqual([3, 4, 6, 7, 8, 9, 10]);
    expect(result).toMatchObject({ dry_run: false, created: 1, failed: 7 });
    const byLine = Object.fromEntries(result.rows.map((row: any) => [row.line, row]));
    expect(byLine[2]).toEqual({ line: 2, extension_number: "100", status: "created", errors: [] });
    expect(byLine[3].errors).toEqual([{ field: "email", messages: ["The email must be a valid email address of at most 255 characters."] }]);
    expect(byLine[4].errors).toEqual([{ field: "extension_number", messages: ["The extension number appears more than once in the file (lines 4, 7)."] }]);
    expect(byLine[6].errors).toEqual([{ field: "secret", messages: ["The secret must be a string of 8 to 128 characters."] }]);
    expect(byLine[8].errors).toEqual([{ field: "row", messages: ["The line has 2 fields; the header has 6."] }]);
    expect(byLine[9].errors.map((e: any) => e.field).sort()).toEqual(["status", "voicemail_enabled"]);
    expect(byLine[10].errors).toEqual([{ field: "extension_number", messages: ["The extension number must be 1 to 20 digits."] }]);
    expect(r.text).not.toContain(SECRET);
    expect(await countIn(tenant.id)).toBe(0);
    expect(await auditCount(tenant.id)).toBe(0);
  });

  it("JSON rows count from 1; a taken number fails in CREATE mode; the tenant's limit holds for the whole file", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts, { maxExtensions: 3 });
    await createExtension(ts, tenant.id, { extensionNumber: "200" }, adminKey);
    const rows = [
      { extension_number: "200", secret: SECRET },
      { extension_number: "201", secret: SECRET },
      { extension_number: "202", secret: SECRET },
      { extension_number: "203", secret: SECRET },
      "not an object",
      { extension_number: "205", secret: SECRET, colour: "red" },
    ];
    const { importExtensions: result } = await ts.ok(ImportExtensionsDocument, { tenantId: tenant.id, format: "JSON", data: JSON.stringify(rows) }, adminKey);
    expect(failedLines(result.rows)).toEqual([1, 4, 5, 6]);
    const errorsOf = (line: number) => result.rows.find((r) => r.line === line)!.errors;
    expect(errorsOf(1)).toEqual([{ field: "extension_number", messages: ["The extension number has already been taken."] }]);
    expect(errorsOf(4)).toEqual([{ field: "tenant_id", messages: ["The tenant has reached its limit of 3 extensions."] }]);
    expect(errorsOf(5)).toEqual([{ field: "row", messages: ["The row must be an object."] }]);
    expect(errorsOf(6)[0].field).toBe("colour");
    // The file itself refused, over GraphQL: malformed JSON, not an array, a CSV without its number column.
    for (const [format, data] of [["JSON", "[{"], ["JSON", "{}"], ["CSV", "display_name\nx\n"]] as const) {
      const refused = await ts.gql(ImportExtensionsDocument, { tenantId: tenant.id, format, data }, adminKey);
      expect(refused.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", fields: { data: [expect.any(String)] } });
    }
    expect(await countIn(tenant.id)).toBe(1);
  });

  it("the request itself: wrong type 415, over the import limit 413, malformed CSV, unknown columns, too many rows, bad mode 422", async () => {
    const { tenant, adminKey, viewerKey } = await tenantWithKeys(ts);
    const path = `/api/extensions/import?tenant_id=${tenant.id}`;
    expect((await rest("POST", path, { key: adminKey, raw: "x", headers: { "content-type": "text/plain" } })).status).toBe(415);
    const big = "extension_number,display_name\r\n" + "1,x\r\n".repeat(IMPORT_LIMIT / 5 + 10);
    expect((await rest("POST", path, { key: adminKey, ...csv(big) })).status).toBe(413);
    // Without a Content-Length (chunked), the limit is enforced as the stream arrives.
    const chunks = new ReadableStream({
      start(controller) {
        // Fewer rows than the row limit, more bytes than the body limit.
        controller.enqueue(new TextEncoder().encode("extension_number,display_name\r\n" + `1,${"x".repeat(200)}\r\n`.repeat(3000)));
        controller.close();
      },
    });
    const streamed = await ts.http(path, { method: "POST", key: adminKey, headers: { "content-type": "text/csv" }, body: chunks, duplex: "half" } as RequestInit);
    expect(streamed.status).toBe(413);
    expect((await rest("POST", path, { key: adminKey, raw: "[{", headers: { "content-type": "application/json" } })).status).toBe(400);
    const malformed = await rest("POST", path, { key: adminKey, ...csv(`extension_number,display_name\n1,"open`) });
    expect(malformed.status).toBe(422);
    expect(malformed.body.errors.data[0]).toMatch(/^The CSV is malformed/);
    const unknown = await rest("POST", path, { key: adminKey, ...csv("extension_number,emial\n1,a@b.c\n") });
    expect(unknown.body.errors.data[0]).toMatch(/Unknown columns on line 1: emial/);
    const tooMany = await rest("POST", path, { key: adminKey, json: Array.from({ length: 10_001 }, (_, i) => ({ extension_number: String(i) })) });
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.errors.data).toEqual(["A file may hold at most 10000 rows."]);
    expect((await rest("POST", `${path}&mode=replace`, { key: adminKey, json: [] })).body.errors).toEqual({ mode: ["The mode must be create or upsert."] });
    expect((await rest("POST", `${path}&dry_run=maybe`, { key: adminKey, json: [] })).status).toBe(422);
    expect((await rest("POST", `/api/extensions/import`, { json: [] })).body.errors).toHaveProperty("tenant_id");
    expect((await rest("POST", path, { key: viewerKey, json: [] })).status).toBe(403);
    expect((await rest("POST", path, { key: null, json: [] })).status).toBe(401);
    expect(await countIn(tenant.id)).toBe(0);
  });
});

describe("bulk import: dry run, the real run, upsert and the audit it leaves", () => {
  it("a dry run writes nothing; the real run creates every row, sealed like a single create, each with its audit entry", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const file = `extension_number,display_name,secret\n300,"Desk, 1",${SECRET}\n301,Desk 2,${SECRET}\n`;
    const dry = await rest("POST", `/api/extensions/import?tenant_id=${tenant.id}&dry_run=true`, { key: adminKey, ...csv(file) });
    expect(dry.status).toBe(200);
    expect(dry.body.data).toMatchObject({ dry_run: true, created: 2, failed: 0 });
    expect(await countIn(tenant.id)).toBe(0);
    expect(await auditCount(tenant.id)).toBe(0);

    const real = await rest("POST", `/api/extensions/import?tenant_id=${tenant.id}`, { key: adminKey, ...csv(file), headers: { "content-type": "text/csv", "x-request-id": "import-run-1" } });
    expect(real.status).toBe(200);
    expect(real.body.data).toMatchObject({ dry_run: false, created: 2, updated: 0, unchanged: 0, failed: 0 });
    const stored = await sql(
      `SELECT id, extension_number AS n, display_name AS d, secret_ciphertext AS c, ha1, ha1b, ha1_sha256 AS "ha1Sha256" FROM extension WHERE tenant_id = $1 ORDER BY n`,
      [Number(tenant.id)],
    );
    expect(stored.map((s) => [s.n, s.d])).toEqual([["300", "Desk, 1"], ["301", "Desk 2"]]);
    // Sealed under the tenant's associated data (it opens), with the digests of that secret in the tenant's realm.
    for (const s of stored) {
      const digests = sipDigests(s.n, tenant.sipDomain, SECRET);
      expect(ts.server.services.credentials.digestsOf(Number(tenant.id), s.n, tenant.sipDomain, s.c)).toEqual(digests);
      expect({ ha1: s.ha1, ha1b: s.ha1b, ha1Sha256: s.ha1Sha256 }).toEqual(digests);
    }

    const { auditLog } = await ts.ok(AuditLogDocument, { tenantId: tenant.id, filter: { action: "extension.created" } }, adminKey);
    expect(auditLog.nodes).toHaveLength(2);
    for (const entry of auditLog.nodes) {
      expect(entry).toMatchObject({ transport: "rest", requestId: "import-run-1", entityType: "extension", actor: { role: "TENANT_ADMIN" } });
      expect(entry.changes).toMatchObject({ secret: [null, "[redacted]"], status: [null, "ACTIVE"] });
    }
    expect(auditLog.nodes.map((e) => e.entityId).sort()).toEqual(stored.map((s) => String(s.id)).sort());
    expect(JSON.stringify(auditLog)).not.toContain(SECRET);
  });

  it("UPSERT updates the same number (only the columns given), leaves identical rows UNCHANGED and audits only real changes", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const kept = await createExtension(ts, tenant.id, { extensionNumber: "400", displayName: "Same", email: "same@example.com", secret: SECRET }, adminKey);
    const changed = await createExtension(ts, tenant.id, { extensionNumber: "401", displayName: "Old", email: "old@example.com" }, adminKey);
    const rows = [
      { extension_number: "400", display_name: "Same", secret: SECRET },
      { extension_number: "401", display_name: "New", status: "disabled" },
      { extension_number: "402", secret: SECRET, voicemail_enabled: true },
    ];
    const variables = { tenantId: tenant.id, format: "JSON" as const, data: JSON.stringify(rows), mode: "UPSERT" as const };
    const { importExtensions: result } = await ts.ok(ImportExtensionsDocument, variables, adminKey);
    expect(result).toMatchObject<Partial<GqlResult>>({ dryRun: false, created: 1, updated: 1, unchanged: 1, failed: 0 });
    expect(result.rows.map((r) => r.status)).toEqual(["UNCHANGED", "UPDATED", "CREATED"]);
    const [row401] = await sql(`SELECT display_name AS d, email, status FROM extension WHERE id = $1`, [Number(changed.id)]);
    expect(row401).toEqual({ d: "New", email: "old@example.com", status: "disabled" });

    const { auditLog } = await ts.ok(AuditLogDocument, { tenantId: tenant.id, filter: { action: "extension.updated" } }, adminKey);
    expect(auditLog.nodes.map((e) => [e.entityId, e.transport, e.changes])).toEqual([[changed.id, "graphql", { displayName: ["Old", "New"], status: ["ACTIVE", "DISABLED"] }]]);
    expect(auditLog.nodes.some((e) => e.entityId === kept.id)).toBe(false);
    // Importing the same file again changes nothing.
    const again = (await ts.ok(ImportExtensionsDocument, variables, adminKey)).importExtensions;
    expect(again).toMatchObject({ created: 0, updated: 0, unchanged: 3 });
    // A new secret is an update: sealed anew, its digests recomputed, audited as redacted.
    const rotated = [{ extension_number: "400", secret: `${SECRET}-new` }];
    const third = (await ts.ok(ImportExtensionsDocument, { ...variables, data: JSON.stringify(rotated) }, adminKey)).importExtensions;
    expect(third).toMatchObject({ updated: 1, unchanged: 0 });
    const [row400] = await sql(`SELECT ha1_sha256 AS h FROM extension WHERE id = $1`, [Number(kept.id)]);
    expect(row400.h).toBe(sipDigests("400", tenant.sipDomain, `${SECRET}-new`).ha1Sha256);
    const [entry] = (await ts.ok(AuditLogDocument, { tenantId: tenant.id, filter: { entityId: kept.id, action: "extension.updated" } }, adminKey)).auditLog.nodes;
    expect(entry.changes).toEqual({ secret: ["[redacted]", "[redacted]"] });
  });

  it("an upsert that disables an extension unregisters its devices, as a single update does", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    await createExtension(ts, tenant.id, { extensionNumber: "450", secret: SECRET }, adminKey);
    const ingest = await createKey(ts, "INGEST", null);
    const event = { type: "registration", action: "register", domain: tenant.sipDomain, extension: "450", contact: "sip:450@10.0.0.5:5060", transport: "udp", expires: 3600 };
    expect((await rest("POST", "/api/events", { key: ingest, json: event })).status).toBe(200);
    const live = async () => (await sql(`SELECT count(*)::int AS n FROM device WHERE tenant_id = $1 AND unregistered_at IS NULL`, [Number(tenant.id)]))[0].n;
    expect(await live()).toBe(1);
    const r = await rest("POST", `/api/extensions/import?tenant_id=${tenant.id}&mode=upsert`, { key: adminKey, ...csv("extension_number,status\n450,disabled\n") });
    expect(r.body.data).toMatchObject({ updated: 1, failed: 0 });
    expect(await live()).toBe(0);
  });

  it("parallel imports and single creates never exceed maxExtensions, and an import is whole or absent", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts, { maxExtensions: 10 });
    const file = (from: number) => "extension_number,secret\n" + Array.from({ length: 6 }, (_, i) => `${from + i},${SECRET}`).join("\n");
    const results = await Promise.all([
      rest("POST", `/api/extensions/import?tenant_id=${tenant.id}`, { key: adminKey, ...csv(file(500)) }),
      ts.gql(ImportExtensionsDocument, { tenantId: tenant.id, format: "CSV", data: file(600) }, adminKey),
      ...Array.from({ length: 6 }, (_, i) => ts.gql(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: String(700 + i), secret: SECRET } }, adminKey)),
    ]);
    const total = await countIn(tenant.id);
    expect(total).toBeLessThanOrEqual(10);
    const numbers: string[] = (await sql(`SELECT extension_number AS n FROM extension WHERE tenant_id = $1`, [Number(tenant.id)])).map((r) => r.n);
    for (const from of [500, 600]) {
      const mine = numbers.filter((n) => Number(n) >= from && Number(n) < from + 6).length;
      expect([0, 6]).toContain(mine);
    }
    const created = results.slice(2).filter((r: any) => r.data?.createExtension).length;
    const imported = (results[0].status === 200 ? 6 : 0) + ((results[1] as any).data?.importExtensions.failed === 0 ? 6 : 0);
    expect(total).toBe(created + imported);
  });
});

describe("export", () => {
  it("export → edit → import round-trips; the export has no secret column", async () => {
    const { tenant, adminKey, viewerKey } = await tenantWithKeys(ts);
    await createExtension(ts, tenant.id, { extensionNumber: "800", displayName: 'Quote "me", please', email: "q@example.com" }, adminKey);
    await createExtension(ts, tenant.id, { extensionNumber: "801", displayName: "Plain", voicemailEnabled: true, status: "DISABLED" }, adminKey);
    const exported = await exportOf(tenant.id, viewerKey);
    expect(exported).toBe(
      'extension_number,display_name,email,status,voicemail_enabled\r\n800,"Quote ""me"", please",q@example.com,active,false\r\n801,Plain,,disabled,true\r\n',
    );
    const edited = exported.replace("801,Plain", "801,Edited") + `802,Added,,active,false\r\n`;
    // New rows need a secret: without one, the round trip says so for that line only.
    const refused = await rest("POST", `/api/extensions/import?tenant_id=${tenant.id}&mode=upsert`, { key: adminKey, ...csv(edited) });
    expect(refused.status).toBe(422);
    expect(failedLines(refused.body.data.rows)).toEqual([4]);
    const withSecret = edited.replace("extension_number,display_name,email,status,voicemail_enabled", "extension_number,display_name,email,status,voicemail_enabled,secret")
      .split("\r\n").map((line, i) => (i === 0 || line === "" ? line : i === 3 ? `${line},${SECRET}` : `${line},`)).join("\r\n");
    const ok = await rest("POST", `/api/extensions/import?tenant_id=${tenant.id}&mode=upsert`, { key: adminKey, ...csv(withSecret) });
    expect(ok.body.data).toMatchObject({ created: 1, updated: 1, unchanged: 1, failed: 0 });
    expect(await exportOf(tenant.id)).toBe(edited);
  });

  it("neutralises formulas (a leading ') and quotes line breaks, and the export imports back unchanged on both transports", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const names = ['=HYPERLINK("http://evil.example","x")', "+1 555", "-2+3", "@SUM(A1)", "\tTabbed", "\rReturn", "Two\nlines", "'=quoted already", "'plain"];
    for (const [i, displayName] of names.entries()) await createExtension(ts, tenant.id, { extensionNumber: String(900 + i), displayName }, adminKey);
    const exported = await exportOf(tenant.id);
    expect(exported.split("\r\n").slice(1, 10)).toEqual([
      `900,"'=HYPERLINK(""http://evil.example"",""x"")",,active,false`,
      "901,'+1 555,,active,false",
      "902,'-2+3,,active,false",
      "903,'@SUM(A1),,active,false",
      "904,'\tTabbed,,active,false",
      `905,"'\rReturn",,active,false`,
      `906,"Two\nlines",,active,false`,
      "907,''=quoted already,,active,false",
      "908,'plain,,active,false",
    ]);
    // Imported back as it is: every row unchanged (the ' is the export's, not the name's).
    const back = await rest("POST", `/api/extensions/import?tenant_id=${tenant.id}&mode=upsert`, { key: adminKey, ...csv(exported) });
    expect(back.body.data).toMatchObject({ created: 0, updated: 0, unchanged: names.length, failed: 0 });
    const viaGraphql = (await ts.ok(ImportExtensionsDocument, { tenantId: tenant.id, format: "CSV", data: exported, mode: "UPSERT" }, adminKey)).importExtensions;
    expect(viaGraphql).toMatchObject({ created: 0, updated: 0, unchanged: names.length, failed: 0 });
    expect(await exportOf(tenant.id)).toBe(exported);
    const stored = await sql(`SELECT display_name FROM extension WHERE tenant_id = $1 ORDER BY extension_number`, [Number(tenant.id)]);
    expect(stored.map((r) => r.display_name)).toEqual(names);
    // A hand-written file's guard is taken off as well; a ' before anything else stays.
    const handWritten = "extension_number,display_name\r\n900,'=1+1\r\n908,'plain\r\n";
    expect((await rest("POST", `/api/extensions/import?tenant_id=${tenant.id}&mode=upsert`, { key: adminKey, ...csv(handWritten) })).body.data).toMatchObject({ updated: 1, unchanged: 1 });
    expect((await sql(`SELECT display_name FROM extension WHERE tenant_id = $1 AND extension_number = '900'`, [Number(tenant.id)]))[0].display_name).toBe("=1+1");
  });

  it("another tenant's export or import is refused like a missing tenant; an unexpected failure is a bare 500", async () => {
    const a = await tenantWithKeys(ts);
    const b = await tenantWithKeys(ts);
    await createExtension(ts, b.tenant.id, {}, b.adminKey);
    const exp = await rest("GET", `/api/extensions/export?tenant_id=${b.tenant.id}`, { key: a.viewerKey });
    expect(exp.status).toBe(422);
    expect(exp.body.errors).toEqual({ tenant_id: ["The selected tenant does not exist."] });
    expect((await rest("GET", `/api/extensions/export`)).body.errors).toHaveProperty("tenant_id");
    expect((await rest("GET", `/api/extensions/export`, { key: null })).status).toBe(401);
    const ingest = await createKey(ts, "INGEST", null);
    expect((await rest("GET", `/api/extensions/export?tenant_id=${a.tenant.id}`, { key: ingest })).status).toBe(403);
    const imp = await rest("POST", `/api/extensions/import?tenant_id=${b.tenant.id}`, { key: a.adminKey, json: [{ extension_number: "1", secret: SECRET }] });
    expect(imp.status).toBe(422);
    expect(imp.body.errors).toEqual({ tenant_id: ["The selected tenant does not exist."] });
    const gql = await ts.gql(ImportExtensionsDocument, { tenantId: b.tenant.id, format: "JSON", data: "[]" }, a.adminKey);
    expect(gql.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    expect(await countIn(b.tenant.id)).toBe(1);

    const service = ts.server.services.extensionImport;
    for (const [name, method, path] of [["run", "POST", `/api/extensions/import?tenant_id=${a.tenant.id}`], ["exportCsv", "GET", `/api/extensions/export?tenant_id=${a.tenant.id}`]] as const) {
      const spy = jest.spyOn(service, name as "run").mockRejectedValueOnce(new Error("SELECT boom"));
      try {
        const r = await rest(method, path, { key: a.adminKey, json: method === "POST" ? [] : undefined });
        expect(r.status).toBe(500);
        expect(r.text).not.toContain("SELECT");
      } finally {
        spy.mockRestore();
      }
    }
  });

  it("every documented status of the import and export operations was answered, and matched its schema, in this suite", () => {
    const own = (template: string) => template.startsWith("/api/extensions/import") || template.startsWith("/api/extensions/export");
    expect(documentedResponses(own).filter((r) => !seen.has(r))).toEqual([]);
  });
});
