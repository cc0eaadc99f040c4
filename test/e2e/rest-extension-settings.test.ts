import "reflect-metadata";
import { toneWav } from "../../src/modules/voicemail/wav";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { documentedResponses, restClient, seen, type Rest } from "./rest-support";

/**
 * An extension's settings over REST — `/api/extensions/{id}/call-handling` (contract §12) and
 * `/api/extensions/{id}/voicemail/greeting` (§13) — answered as the OpenAPI document says: every
 * answer below is checked against the document by `restClient`, and every status the document lists
 * for these two paths is answered at least once in this suite.
 */
const MAX_BYTES = 64 * 1024;
let ts: TestServer;
let rest: Rest;
beforeAll(async () => {
  ts = await startTestServer({ env: { VOICEMAIL_MAX_BYTES: String(MAX_BYTES) } });
  rest = restClient(ts);
});
afterAll(() => ts?.stop());

const sql = <T = any>(text: string, params: unknown[] = []): Promise<T[]> => ts.server.db.dataSource.query(text, params);

/** A raw request (not JSON), checked against the document as restClient checks JSON ones. */
const raw = (method: string, path: string, key: string | null, body: Buffer | string, type: string) => rest(method, path, { key, raw: body, headers: { "content-type": type } });

describe("call handling over REST", () => {
  it("GET and PUT answer the documented shapes; refusals change nothing", async () => {
    const { tenant, adminKey, viewerKey } = await tenantWithKeys(ts);
    const other = await tenantWithKeys(ts);
    const ext = await createExtension(ts, tenant.id);
    const target = await createExtension(ts, tenant.id);
    const path = `/api/extensions/${ext.id}/call-handling`;

    const before = await rest("GET", path, { key: viewerKey });
    expect(before.status).toBe(200);
    expect(before.body.data).toEqual({ do_not_disturb: false, ring_seconds: 25, forward_always: null, forward_busy: null, forward_no_answer: null });

    const put = await rest("PUT", path, { key: adminKey, json: { do_not_disturb: true, forward_busy: { type: "EXTENSION", target: target.extensionNumber } } });
    expect(put.status).toBe(200);
    expect(put.body.data).toMatchObject({ do_not_disturb: true, ring_seconds: 25, forward_busy: { type: "extension", target: target.extensionNumber } });
    const saved = put.body.data;
    const ingestKey = await createKey(ts, "INGEST", tenant.id);

    const refusals: Array<[number, () => ReturnType<Rest>]> = [
      [401, () => rest("GET", path, { key: null })],
      [401, () => rest("PUT", path, { key: null, json: { do_not_disturb: false } })],
      [403, () => rest("PUT", path, { key: viewerKey, json: { do_not_disturb: false } })],
      [403, () => rest("GET", path, { key: ingestKey })],
      [404, () => rest("GET", path, { key: other.viewerKey })],
      [404, () => rest("PUT", path, { key: other.adminKey, json: { do_not_disturb: false } })],
      [400, () => raw("PUT", path, adminKey, "{not json", "application/json")],
      [400, () => rest("PUT", path, { key: adminKey, json: [1] })],
      [415, () => raw("PUT", path, adminKey, "do_not_disturb=false", "application/x-www-form-urlencoded")],
      [413, () => raw("PUT", path, adminKey, JSON.stringify({ pad: "x".repeat(2 * 1024 * 1024) }), "application/json")],
      [422, () => rest("PUT", path, { key: adminKey, json: { ring_seconds: 500, do_not_disturb: false } })],
      [422, () => rest("PUT", path, { key: adminKey, json: { forward_always: { type: "extension", target: "987654" } } })],
    ];
    for (const [status, call] of refusals) {
      const r = await call();
      expect({ status: r.status, body: r.text }).toMatchObject({ status });
    }
    expect((await rest("GET", path, { key: adminKey })).body.data).toEqual(saved);
  });

  it("an unexpected failure is 500 Server Error, never leaking SQL", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const ext = await createExtension(ts, tenant.id);
    const path = `/api/extensions/${ext.id}/call-handling`;
    const service = ts.server.services.callHandling;
    for (const [name, method] of [["get", "GET"], ["update", "PUT"]] as const) {
      const spy = jest.spyOn(service, name).mockRejectedValueOnce(new Error('relation "call_handling" does not exist: SELECT do_not_disturb FROM extension'));
      try {
        const r = await rest(method, path, { key: adminKey, json: method === "PUT" ? { do_not_disturb: true } : undefined });
        expect([method, r.status]).toEqual([method, 500]);
        expect(r.text).not.toMatch(/SELECT|relation/);
      } finally {
        spy.mockRestore();
      }
    }
  });
});

describe("the voicemail greeting over REST", () => {
  it("PUT (raw and multipart), GET and DELETE answer the documented shapes", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const ext = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const path = `/api/extensions/${ext.id}/voicemail/greeting`;
    const wav = toneWav({ seconds: 1, frequency: 400 });

    expect((await rest("GET", path, { key: adminKey })).status).toBe(404);
    const created = await raw("PUT", path, adminKey, wav, "audio/wav");
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ extension_id: Number(ext.id), content_type: "audio/wav", duration_seconds: 1, size_bytes: wav.length });

    const form = new FormData();
    const second = toneWav({ seconds: 2, frequency: 600 });
    form.append("audio", new Blob([second], { type: "audio/wav" }), "greeting.wav");
    const request = new Request("http://x", { method: "PUT", body: form });
    const multipart = await raw("PUT", path, adminKey, Buffer.from(await request.arrayBuffer()), request.headers.get("content-type")!);
    expect(multipart.status).toBe(200);
    expect(multipart.body.data).toMatchObject({ duration_seconds: 2, size_bytes: second.length });

    const got = await rest("GET", path, { key: adminKey, headers: { accept: "audio/wav" } });
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toBe("audio/wav");

    expect((await rest("DELETE", path, { key: adminKey })).status).toBe(204);
    expect((await rest("DELETE", path, { key: adminKey })).status).toBe(404);
  });

  it("refuses what it cannot store with the documented statuses, storing nothing", async () => {
    const { tenant, adminKey, viewerKey } = await tenantWithKeys(ts);
    const other = await tenantWithKeys(ts);
    const ext = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const path = `/api/extensions/${ext.id}/voicemail/greeting`;
    const wav = toneWav({ seconds: 1 });
    const refusals: Array<[number, () => ReturnType<Rest>]> = [
      [401, () => raw("PUT", path, null, wav, "audio/wav")],
      [401, () => rest("GET", path, { key: null })],
      [401, () => rest("DELETE", path, { key: null })],
      [403, () => raw("PUT", path, viewerKey, wav, "audio/wav")],
      [403, () => rest("GET", path, { key: viewerKey })],
      [403, () => rest("DELETE", path, { key: viewerKey })],
      [404, () => raw("PUT", path, other.adminKey, wav, "audio/wav")],
      [400, () => raw("PUT", path, adminKey, "--xyz\r\nContent-Disposition: form-data; name=\"audio\"\r\n\r\nRIFF", "multipart/form-data; boundary=xyz")],
      [413, () => raw("PUT", path, adminKey, toneWav({ bytes: MAX_BYTES + 1024 }), "audio/wav")],
      [415, () => raw("PUT", path, adminKey, wav, "text/plain")],
      [422, () => raw("PUT", path, adminKey, "this is not audio at all, just text", "audio/wav")],
    ];
    for (const [status, call] of refusals) {
      const r = await call();
      expect({ status: r.status, body: r.text }).toMatchObject({ status });
    }
    const [{ count }] = await sql(`SELECT count(*)::int AS count FROM voicemail_greeting WHERE extension_id = $1`, [Number(ext.id)]);
    expect(count).toBe(0);
  });

  it("an unexpected failure is 500 Server Error on each method", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const ext = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const path = `/api/extensions/${ext.id}/voicemail/greeting`;
    const service = ts.server.services.voicemail;
    const calls = [
      ["putGreeting", () => raw("PUT", path, adminKey, toneWav({ seconds: 1 }), "audio/wav")],
      ["getGreeting", () => rest("GET", path, { key: adminKey })],
      ["deleteGreeting", () => rest("DELETE", path, { key: adminKey })],
    ] as const;
    for (const [name, call] of calls) {
      const spy = jest.spyOn(service, name).mockRejectedValueOnce(new Error('relation "voicemail_greeting" does not exist'));
      try {
        const r = await call();
        expect([name, r.status]).toEqual([name, 500]);
        expect(r.text).not.toMatch(/relation/);
      } finally {
        spy.mockRestore();
      }
    }
  });
});

it("every status the document lists for these two paths was answered, and matched its schema, in this suite", () => {
  const own = (template: string) => template.endsWith("/call-handling") || template.endsWith("/voicemail/greeting");
  expect(documentedResponses(own).length).toBeGreaterThan(20);
  expect(documentedResponses(own).filter((r) => !seen.has(r))).toEqual([]);
});
