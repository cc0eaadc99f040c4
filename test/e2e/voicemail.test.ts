import {
  AuditLogDocument,
  DeleteExtensionDocument,
  DeleteVoicemailMessageDocument,
  ExtensionVoicemailDocument,
  MarkVoicemailHeardDocument,
  TenantVoicemailDocument,
  UpdateExtensionDocument,
  VoicemailEventsDocument,
  VoicemailMessageDocument,
} from "../graphql/generated";
import { createExtension, createKey, tenantWithKeys, uniq } from "../support/factories";
import { postEvents, subscribe } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { recordStatements } from "../support/sql-counter";
import { toneWav } from "../../src/modules/voicemail/wav";
import { checkAgainstDocument, documentedResponses, restClient, seen, type Rest } from "./rest-support";
import { postVoicemail, storedCounts, type VoicemailFields } from "./voicemail-support";

const MAX_MESSAGES = 5;
const MiB = 1024 * 1024;

let ts: TestServer;
let rest: Rest;
let ingestKey: string;

beforeAll(async () => {
  ts = await startTestServer({ env: { VOICEMAIL_MAX_MESSAGES: String(MAX_MESSAGES), VOICEMAIL_RETENTION_DAYS: "30", VOICEMAIL_SWEEP_MS: "200" } });
  rest = restClient(ts);
  ingestKey = await createKey(ts, "INGEST", null);
});

afterAll(async () => {
  await ts?.stop();
});

/** A tenant with keys and one extension that takes voicemail. */
async function mailbox(options: { voicemailEnabled?: boolean } = {}) {
  const t = await tenantWithKeys(ts);
  const extension = await createExtension(ts, t.tenant.id, { voicemailEnabled: options.voicemailEnabled ?? true });
  const [tenantRow] = await ts.server.db.dataSource.query(`SELECT sip_domain AS domain FROM tenant WHERE id = $1`, [t.tenant.id]);
  const fields = (extra: VoicemailFields = {}): VoicemailFields => ({
    domain: tenantRow.domain,
    extension: extension.extensionNumber,
    message_id: `msg-${uniq()}`,
    caller_number: "+15550001111",
    caller_name: "Bob Caller",
    duration_seconds: "7",
    ...extra,
  });
  return { ...t, extension, domain: tenantRow.domain as string, fields };
}

/** Posts and checks the answer against the OpenAPI document. */
async function post(key: string, fields: VoicemailFields, audio: Parameters<typeof postVoicemail>[3]) {
  const result = await postVoicemail(ts, key, fields, audio);
  checkAgainstDocument("POST", "/api/voicemail", result.status, result.body, result.body === null ? "" : JSON.stringify(result.body));
  return result;
}

async function download(path: string, key: string, headers: Record<string, string> = {}, method = "GET") {
  const res = await ts.http(path, { key, headers, method });
  const bytes = Buffer.from(await res.arrayBuffer());
  const json = res.headers.get("content-type")?.includes("application/json") ? JSON.parse(bytes.toString()) : null;
  checkAgainstDocument(method, new URL(path, "http://x").pathname, res.status, json, json === null ? "" : bytes.toString());
  return { status: res.status, headers: res.headers, bytes };
}

const wav = toneWav({ seconds: 1 });

describe("POST /api/voicemail", () => {
  it("stores a message and its audio; GraphQL and REST list it and the audio comes back byte for byte", async () => {
    const box = await mailbox();
    const received = "2026-11-30T10:15:00.000Z";
    const posted = await post(ingestKey, box.fields({ message_id: "vm-1", call_id: "call-1", received_at: received }), { bytes: wav, type: "audio/x-wav" });
    expect(posted.status).toBe(201);
    const message = posted.body.data;
    expect(message).toMatchObject({
      tenant_id: Number(box.tenant.id),
      extension_id: Number(box.extension.id),
      message_id: "vm-1",
      call_id: "call-1",
      caller_number: "+15550001111",
      caller_name: "Bob Caller",
      duration_seconds: 7,
      received_at: received,
      heard: false,
      content_type: "audio/x-wav",
      size_bytes: wav.length,
      audio_url: `/api/voicemail/${message.id}/audio`,
    });
    expect(posted.headers.get("location")).toBe(`/api/voicemail/${message.id}`);

    const graph = await ts.ok(ExtensionVoicemailDocument, { id: box.extension.id }, box.viewerKey);
    expect(graph.extension.voicemailSummary).toEqual({ unheard: 1, total: 1 });
    expect(graph.extension.voicemailMessages.totalCount).toBe(1);
    expect(graph.extension.voicemailMessages.edges[0].node).toMatchObject({
      id: String(message.id),
      messageId: "vm-1",
      receivedAt: received,
      durationSeconds: 7,
      heard: false,
      contentType: "audio/x-wav",
      sizeBytes: wav.length,
      audioUrl: message.audio_url,
      extension: { id: box.extension.id },
    });

    const listed = await rest("GET", `/api/extensions/${box.extension.id}/voicemail`, { key: box.viewerKey });
    expect(listed.status).toBe(200);
    expect(listed.body.data).toEqual([message]);
    expect(listed.body.meta).toMatchObject({ total: 1, current_page: 1, last_page: 1 });
    expect((await rest("GET", `/api/voicemail/${message.id}`, { key: box.viewerKey })).body.data).toEqual(message);

    const audio = await download(message.audio_url, box.viewerKey);
    expect(audio.status).toBe(200);
    expect(audio.headers.get("content-type")).toBe("audio/x-wav");
    expect(audio.headers.get("content-length")).toBe(String(wav.length));
    expect(audio.headers.get("accept-ranges")).toBe("bytes");
    expect(audio.bytes.equals(wav)).toBe(true);
  });

  it("accepts Ogg and MPEG audio (frame sync or ID3) by their bytes, and tenant_id instead of domain", async () => {
    const box = await mailbox();
    const ogg = Buffer.concat([Buffer.from("OggS\u0000\u0002", "latin1"), Buffer.alloc(200, 7)]);
    const mp3 = Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0x64]), Buffer.alloc(300, 1)]);
    const id3 = Buffer.concat([Buffer.from("ID3\u0004\u0000", "latin1"), Buffer.alloc(100, 2)]);
    const fields = box.fields();
    delete fields.domain;
    for (const [bytes, type] of [[ogg, "audio/ogg"], [mp3, "audio/mpeg"], [id3, "audio/mpeg"]] as const) {
      const res = await post(ingestKey, { ...fields, tenant_id: box.tenant.id, message_id: uniq() }, { bytes, type });
      expect(res.status).toBe(201);
      expect(res.body.data).toMatchObject({ content_type: type, size_bytes: bytes.length });
    }
  });

  it("answers a repeated message_id with the stored message, also when the repeats arrive in parallel", async () => {
    const box = await mailbox();
    const fields = box.fields({ message_id: "same-id" });
    const first = await post(ingestKey, fields, { bytes: wav });
    expect(first.status).toBe(201);
    const again = await post(ingestKey, { ...fields, caller_name: "Someone else" }, { bytes: toneWav({ seconds: 2 }) });
    expect(again.status).toBe(200);
    expect(again.body.data).toEqual(first.body.data);

    const parallelFields = box.fields({ message_id: "parallel-id" });
    const results = await Promise.all(Array.from({ length: 12 }, () => post(ingestKey, parallelFields, { bytes: wav })));
    expect(results.map((r) => r.status).sort((a, b) => a - b)).toEqual([...Array(11).fill(200), 201]);
    expect(new Set(results.map((r) => r.body.data.id)).size).toBe(1);
    const [{ count }] = await ts.server.db.dataSource.query(
      `SELECT count(*)::int AS count FROM voicemail_message WHERE extension_id = $1 AND message_id = 'parallel-id'`,
      [box.extension.id],
    );
    expect(count).toBe(1);
    const graph = await ts.ok(ExtensionVoicemailDocument, { id: box.extension.id }, box.viewerKey);
    expect(graph.extension.voicemailSummary.total).toBe(2);
  });

  it("never lets parallel posts overfill a mailbox (VOICEMAIL_MAX_MESSAGES); a repeat into a full mailbox is still 200", async () => {
    const box = await mailbox();
    const results = await Promise.all(Array.from({ length: 12 }, () => post(ingestKey, box.fields(), { bytes: wav })));
    const created = results.filter((r) => r.status === 201);
    expect(created).toHaveLength(MAX_MESSAGES);
    for (const refused of results.filter((r) => r.status !== 201)) {
      expect(refused.status).toBe(422);
      expect(refused.body.errors.extension[0]).toMatch(/full/);
    }
    const graph = await ts.ok(ExtensionVoicemailDocument, { id: box.extension.id }, box.viewerKey);
    expect(graph.extension.voicemailSummary).toEqual({ unheard: MAX_MESSAGES, total: MAX_MESSAGES });
    const repeat = await post(ingestKey, box.fields({ message_id: created[0].body.data.message_id }), { bytes: wav });
    expect(repeat.status).toBe(200);
  });

  it("refuses every invalid hand-over with 422 naming the field (413 above the size limit) and stores nothing", async () => {
    const box = await mailbox();
    const disabled = await createExtension(ts, box.tenant.id, { voicemailEnabled: false });
    const other = await mailbox();
    const tenantIngest = await createKey(ts, "INGEST", box.tenant.id);
    const before = await storedCounts(ts);
    const cases: Array<[string, VoicemailFields, Parameters<typeof postVoicemail>[3], string]> = [
      ["unknown extension", box.fields({ extension: "99999" }), { bytes: wav }, "extension"],
      ["voicemail disabled", box.fields({ extension: disabled.extensionNumber }), { bytes: wav }, "extension"],
      ["no audio", box.fields(), null, "audio"],
      ["empty audio", box.fields(), { bytes: Buffer.alloc(0) }, "audio"],
      ["type not listed", box.fields(), { bytes: wav, type: "audio/flac" }, "audio"],
      ["bytes not of the declared type", box.fields(), { bytes: Buffer.from("OggS".padEnd(100, "x")), type: "audio/wav" }, "audio"],
      ["not audio at all", box.fields(), { bytes: Buffer.from("#!/bin/sh\necho hi\n"), type: "audio/mpeg" }, "audio"],
      ["two audio parts", box.fields(), [{ bytes: wav }, { bytes: wav }], "audio"],
      ["no message_id", box.fields({ message_id: undefined }), { bytes: wav }, "message_id"],
      ["bad received_at", box.fields({ received_at: "yesterday" }), { bytes: wav }, "received_at"],
      ["bad duration", box.fields({ duration_seconds: "-3" }), { bytes: wav }, "duration_seconds"],
      ["unknown domain", box.fields({ domain: "nobody.example" }), { bytes: wav }, "domain"],
      ["no tenant", box.fields({ domain: undefined }), { bytes: wav }, "domain"],
    ];
    for (const [what, fields, audio, field] of cases) {
      const res = await post(ingestKey, fields, audio);
      expect({ what, status: res.status }).toEqual({ what, status: 422 });
      expect(res.body.message).toEqual(expect.any(String));
      expect(Object.keys(res.body.errors)).toContain(field);
    }
    // A tenant-bound INGEST key reaches its own tenant only: another tenant's domain is unknown to it.
    const foreign = await post(tenantIngest, other.fields(), { bytes: wav });
    expect(foreign.status).toBe(422);
    expect(Object.keys(foreign.body.errors)).toEqual(["domain"]);

    const tooLarge = await post(ingestKey, box.fields(), { bytes: Buffer.concat([toneWav({ bytes: 10 * MiB }), Buffer.alloc(1)]) });
    expect(tooLarge.status).toBe(413);
    const notMultipart = await ts.http("/api/voicemail", {
      key: ingestKey,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(box.fields()),
    });
    const notMultipartBody = await notMultipart.json();
    checkAgainstDocument("POST", "/api/voicemail", notMultipart.status, notMultipartBody, JSON.stringify(notMultipartBody));
    expect(notMultipart.status).toBe(415);
    const viewer = await post(box.viewerKey, box.fields(), { bytes: wav });
    expect(viewer.status).toBe(403);
    const anonymous = await postVoicemail(ts, "not-a-key", box.fields(), { bytes: wav });
    expect(anonymous.status).toBe(401);

    expect(await storedCounts(ts)).toEqual(before);
    const graph = await ts.ok(ExtensionVoicemailDocument, { id: box.extension.id }, box.viewerKey);
    expect(graph.extension.voicemailSummary).toEqual({ unheard: 0, total: 0 });
    // The tenant-bound key works for its own tenant.
    expect((await post(tenantIngest, box.fields(), { bytes: wav })).status).toBe(201);
  });
});

describe("the audio download", () => {
  const size = 600 * 1024 + 123;
  const audio = toneWav({ bytes: size });
  let box: Awaited<ReturnType<typeof mailbox>>;
  let url: string;

  beforeAll(async () => {
    box = await mailbox();
    url = (await post(ingestKey, box.fields(), { bytes: audio })).body.data.audio_url;
  });

  it.each([
    ["bytes=0-9", 0, 9],
    ["bytes=100-", 100, size - 1],
    ["bytes=-500", size - 500, size - 1],
    [`bytes=${size - 1}-`, size - 1, size - 1],
    ["bytes=262000-262300", 262000, 262300],
    [`bytes=10-${size + 5000}`, 10, size - 1],
    ["bytes=0-0", 0, 0],
  ])("answers Range %s with 206 and exactly those bytes", async (range, start, end) => {
    const res = await download(url, box.viewerKey, { range });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes ${start}-${end}/${size}`);
    expect(res.headers.get("content-length")).toBe(String(end - start + 1));
    expect(res.bytes.equals(audio.subarray(start, end + 1))).toBe(true);
  });

  it.each([`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, "bytes=-0"])("answers an unsatisfiable %s with 416 and the size", async (range) => {
    const res = await download(url, box.viewerKey, { range });
    expect(res.status).toBe(416);
    expect(res.headers.get("content-range")).toBe(`bytes */${size}`);
  });

  it("answers several ranges, or a Range that is not bytes, with the whole audio; HEAD with the headers only", async () => {
    for (const range of ["bytes=0-1,5-9", "items=0-5", "garbage"]) {
      const res = await download(url, box.viewerKey, { range });
      expect({ range, status: res.status }).toEqual({ range, status: 200 });
      expect(res.bytes.equals(audio)).toBe(true);
    }
    const head = await download(url, box.viewerKey, {}, "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(size));
    expect(head.bytes.length).toBe(0);
  });

  it("is for reading keys of the message's tenant: the INGEST key is refused, another tenant gets 404", async () => {
    expect((await download(url, ingestKey)).status).toBe(403);
    const other = await tenantWithKeys(ts);
    expect((await download(url, other.viewerKey)).status).toBe(404);
    expect((await download(url, other.viewerKey, { range: "bytes=0-9" })).status).toBe(404);
    expect((await download("/api/voicemail/999999999/audio", box.viewerKey)).status).toBe(404);
  });
});

describe("heard, delete and the live feed", () => {
  it("marks heard and unheard, deletes, and voicemailEvents follows each change with the new summary", async () => {
    const box = await mailbox();
    const sub = await subscribe(ts, VoicemailEventsDocument, { extensionId: box.extension.id }, box.viewerKey);
    const tenantWide = await subscribe(ts, VoicemailEventsDocument, {}, box.viewerKey);
    const other = await tenantWithKeys(ts);
    const otherSub = await subscribe(ts, VoicemailEventsDocument, {}, other.viewerKey);
    try {
      const id = String((await post(ingestKey, box.fields({ message_id: "live-1" }), { bytes: wav })).body.data.id);
      const created = await sub.next();
      expect(created.voicemailEvents).toMatchObject({
        type: "NEW",
        tenantId: box.tenant.id,
        extension: { id: box.extension.id },
        message: { id, messageId: "live-1", heard: false, audioUrl: `/api/voicemail/${id}/audio`, extension: { id: box.extension.id } },
        summary: { unheard: 1, total: 1 },
      });
      expect((await tenantWide.next()).voicemailEvents.type).toBe("NEW");

      expect((await ts.ok(MarkVoicemailHeardDocument, { id }, box.adminKey)).markVoicemailHeard).toEqual({ id, heard: true });
      expect((await sub.next()).voicemailEvents).toMatchObject({ type: "HEARD", summary: { unheard: 0, total: 1 } });
      const unheard = await rest("PATCH", `/api/voicemail/${id}`, { key: box.adminKey, json: { heard: false } });
      expect(unheard.status).toBe(200);
      expect(unheard.body.data.heard).toBe(false);
      expect((await sub.next()).voicemailEvents).toMatchObject({ type: "UNHEARD", summary: { unheard: 1, total: 1 } });

      expect((await ts.ok(DeleteVoicemailMessageDocument, { id }, box.adminKey)).deleteVoicemailMessage).toBe(id);
      expect((await sub.next()).voicemailEvents).toMatchObject({ type: "DELETED", message: { id }, summary: { unheard: 0, total: 0 } });
      expect(sub.received.map((m) => m.data?.voicemailEvents.type)).toEqual(["NEW", "HEARD", "UNHEARD", "DELETED"]);
      // Each carries its place in the tenant's event log, increasing in commit order.
      const sequences = sub.received.map((m) => BigInt(m.data!.voicemailEvents.sequence));
      expect(sequences.every((seq, i) => i === 0 || seq > sequences[i - 1])).toBe(true);
      expect(otherSub.received).toEqual([]);
    } finally {
      await sub.close();
      await tenantWide.close();
      await otherSub.close();
    }
  });

  it("marking heard twice changes nothing the second time; REST PATCH needs a boolean and DELETE answers 204", async () => {
    const box = await mailbox();
    const id = (await post(ingestKey, box.fields(), { bytes: wav })).body.data.id;
    expect((await rest("PATCH", `/api/voicemail/${id}`, { key: box.adminKey, json: { heard: true } })).body.data.heard).toBe(true);
    const updatedAt = (await rest("GET", `/api/voicemail/${id}`, { key: box.adminKey })).body.data.updated_at;
    expect((await rest("PATCH", `/api/voicemail/${id}`, { key: box.adminKey, json: { heard: true } })).body.data.updated_at).toBe(updatedAt);
    for (const json of [{}, { heard: "yes" }, { heard: null }]) {
      const res = await rest("PATCH", `/api/voicemail/${id}`, { key: box.adminKey, json });
      expect(res.status).toBe(422);
      expect(Object.keys(res.body.errors)).toEqual(["heard"]);
    }
    expect((await rest("PATCH", `/api/voicemail/${id}`, { key: box.viewerKey, json: { heard: false } })).status).toBe(403);
    expect((await rest("GET", `/api/voicemail/${id}`, { key: box.adminKey })).body.data.heard).toBe(true);

    const unheard = await rest("GET", `/api/extensions/${box.extension.id}/voicemail?heard=false`, { key: box.viewerKey });
    expect(unheard.body.data).toEqual([]);
    expect((await rest("GET", `/api/extensions/${box.extension.id}/voicemail?heard=maybe`, { key: box.viewerKey })).status).toBe(422);

    const before = await storedCounts(ts);
    expect((await rest("DELETE", `/api/voicemail/${id}`, { key: box.viewerKey })).status).toBe(403);
    expect((await rest("DELETE", `/api/voicemail/${id}`, { key: box.adminKey })).status).toBe(204);
    const after = await storedCounts(ts);
    expect(after.messages).toBe(before.messages - 1);
    expect(after.chunks).toBeLessThan(before.chunks);
    expect((await rest("DELETE", `/api/voicemail/${id}`, { key: box.adminKey })).status).toBe(404);
    expect((await download(`/api/voicemail/${id}/audio`, box.viewerKey)).status).toBe(404);
  });

  it("pages newest first by keyset over GraphQL and by page over REST, with the heard filter", async () => {
    const box = await mailbox();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const at = new Date(Date.UTC(2026, 10, 20, 9, 0, i)).toISOString();
      ids.push(String((await post(ingestKey, box.fields({ received_at: at }), { bytes: wav })).body.data.id));
    }
    await ts.ok(MarkVoicemailHeardDocument, { id: ids[1], heard: true }, box.adminKey);
    const first = await ts.ok(ExtensionVoicemailDocument, { id: box.extension.id, first: 3 }, box.viewerKey);
    expect(first.extension.voicemailMessages.edges.map((e) => e.node.id)).toEqual([ids[3], ids[2], ids[1]]);
    expect(first.extension.voicemailMessages.pageInfo.hasNextPage).toBe(true);
    const second = await ts.ok(ExtensionVoicemailDocument, { id: box.extension.id, first: 3, after: first.extension.voicemailMessages.pageInfo.endCursor }, box.viewerKey);
    expect(second.extension.voicemailMessages.edges.map((e) => e.node.id)).toEqual([ids[0]]);
    const unheard = await ts.ok(ExtensionVoicemailDocument, { id: box.extension.id, heard: false }, box.viewerKey);
    expect(unheard.extension.voicemailMessages.edges.map((e) => e.node.id)).toEqual([ids[3], ids[2], ids[0]]);
    expect(unheard.extension.voicemailMessages.totalCount).toBe(3);
    expect(unheard.extension.voicemailSummary).toEqual({ unheard: 3, total: 4 });
    const forged = await ts.gql(ExtensionVoicemailDocument, { id: box.extension.id, after: "bm9wZQ" }, box.viewerKey);
    expect(forged.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");

    const page = await rest("GET", `/api/extensions/${box.extension.id}/voicemail?per_page=3&page=2`, { key: box.viewerKey });
    expect(page.body.data.map((m: { id: number }) => String(m.id))).toEqual([ids[0]]);
    expect(page.body.meta).toMatchObject({ total: 4, per_page: 3, current_page: 2, last_page: 2 });
    expect((await rest("GET", `/api/extensions/${box.extension.id}/voicemail?per_page=500`, { key: box.viewerKey })).status).toBe(422);
  });

  it("reads every extension's messages and summary in one statement each, however many extensions", async () => {
    const box = await mailbox();
    for (let i = 0; i < 3; i++) {
      const extension = await createExtension(ts, box.tenant.id, { voicemailEnabled: true });
      await post(ingestKey, box.fields({ extension: extension.extensionNumber }), { bytes: wav });
    }
    const { result, statements } = await recordStatements(ts.server.db.dataSource, () => ts.ok(TenantVoicemailDocument, { tenantId: box.tenant.id, first: 5 }, box.viewerKey));
    expect(result.tenant!.extensions.nodes).toHaveLength(4);
    expect(result.tenant!.extensions.nodes.filter((e) => e.voicemailSummary.total === 1)).toHaveLength(3);
    // (The retention sweep of this server may run meanwhile; it is not part of the read.)
    expect(statements.filter((s) => /^SELECT .*FROM voicemail_message/.test(s))).toHaveLength(2);
    expect(statements.some((s) => /voicemail_audio_chunk/.test(s))).toBe(false);
  });

  it("links the message to its call's CDR leg, keeps messages when voicemail is turned off, and deletes them with the extension", async () => {
    const box = await mailbox();
    const callId = `call-${uniq()}`;
    const legs = await postEvents(ts, ingestKey, [
      { type: "call", action: "start", call_id: callId, domain: box.domain, extension: box.extension.extensionNumber, direction: "inbound", caller_number: "+15550001111" },
      { type: "call", action: "end", call_id: callId, domain: box.domain, extension: box.extension.extensionNumber, disposition: "voicemail" },
    ]);
    expect(legs.status).toBe(200);
    const id = String((await post(ingestKey, box.fields({ call_id: callId }), { bytes: wav })).body.data.id);
    const { voicemailMessage } = await ts.ok(VoicemailMessageDocument, { id }, box.viewerKey);
    expect(voicemailMessage.cdr).toMatchObject({ callId, extensionNumber: box.extension.extensionNumber, disposition: "VOICEMAIL" });

    await ts.ok(UpdateExtensionDocument, { id: box.extension.id, input: { voicemailEnabled: false } }, box.adminKey);
    expect((await ts.ok(ExtensionVoicemailDocument, { id: box.extension.id }, box.viewerKey)).extension.voicemailSummary.total).toBe(1);
    // Turned off, it takes no new messages.
    expect((await post(ingestKey, box.fields(), { bytes: wav })).status).toBe(422);

    await ts.ok(DeleteExtensionDocument, { id: box.extension.id }, box.adminKey);
    const [left] = await ts.server.db.dataSource.query(
      `SELECT (SELECT count(*)::int FROM voicemail_message WHERE id = $1) AS messages, (SELECT count(*)::int FROM voicemail_audio_chunk WHERE message_id = $1) AS chunks`,
      [id],
    );
    expect(left).toEqual({ messages: 0, chunks: 0 });
  });

  it("voicemailEvents resumes with after: the missed NEW, HEARD and DELETED in order, then live, none twice", async () => {
    const box = await mailbox();
    const other = await createExtension(ts, box.tenant.id, { voicemailEnabled: true });
    const live = await subscribe(ts, VoicemailEventsDocument, { extensionId: box.extension.id }, box.viewerKey);
    const first = String((await post(ingestKey, box.fields(), { bytes: wav })).body.data.id);
    const seen = (await live.next()).voicemailEvents;
    expect(seen.type).toBe("NEW");
    await live.close();

    // Away: a NEW, a HEARD and a DELETED of this extension, and another extension's NEW the filter keeps out.
    const missed = String((await post(ingestKey, box.fields(), { bytes: wav })).body.data.id);
    await post(ingestKey, box.fields({ extension: other.extensionNumber }), { bytes: wav });
    await ts.ok(MarkVoicemailHeardDocument, { id: missed }, box.adminKey);
    await ts.ok(DeleteVoicemailMessageDocument, { id: first }, box.adminKey);
    const resumed = await subscribe(ts, VoicemailEventsDocument, { extensionId: box.extension.id, after: seen.sequence }, box.viewerKey);
    try {
      const replayed = [await resumed.next(), await resumed.next(), await resumed.next()].map((d) => d.voicemailEvents);
      expect(replayed.map((e) => [e.type, e.message.id])).toEqual([
        ["NEW", missed],
        ["HEARD", missed],
        ["DELETED", first],
      ]);
      expect(replayed.map((e) => e.summary)).toEqual([
        { unheard: 2, total: 2 },
        { unheard: 1, total: 2 },
        { unheard: 0, total: 1 },
      ]);
      const sequences = [seen, ...replayed].map((e) => BigInt(e.sequence));
      expect(sequences.every((seq, i) => i === 0 || seq > sequences[i - 1])).toBe(true);
      // Then the live ones, with no repeat at the seam.
      await ts.ok(MarkVoicemailHeardDocument, { id: missed, heard: false }, box.adminKey);
      const next = (await resumed.next()).voicemailEvents;
      expect([next.type, next.message.id]).toEqual(["UNHEARD", missed]);
      expect(BigInt(next.sequence)).toBeGreaterThan(sequences[3]);
      expect(resumed.received).toHaveLength(4);
    } finally {
      await resumed.close();
    }

    // The tenant-wide resume after 0 sees every event of the tenant, the other extension's too.
    const whole = await subscribe(ts, VoicemailEventsDocument, { after: "0" }, box.viewerKey);
    try {
      const all = [];
      for (let i = 0; i < 6; i++) all.push((await whole.next()).voicemailEvents);
      expect(all.map((e) => e.type)).toEqual(["NEW", "NEW", "NEW", "HEARD", "DELETED", "UNHEARD"]);
      expect(all[2].extension.id).toBe(other.id);
    } finally {
      await whole.close();
    }
  });

  it("refuses a voicemailEvents after without one tenant, malformed, or of another tenant's extension", async () => {
    const box = await mailbox();
    const stranger = await tenantWithKeys(ts);
    const refused = async (variables: { tenantId?: string; extensionId?: string; after?: string }, key: string) => {
      const sub = await subscribe(ts, VoicemailEventsDocument, variables, key, { expectError: true });
      try {
        return await sub.error();
      } finally {
        await sub.close();
      }
    };
    const noTenant = await refused({ after: "0" }, ts.adminKey);
    expect([noTenant.extensions?.code, Object.keys(noTenant.extensions?.fields as object)]).toEqual(["BAD_USER_INPUT", ["after"]]);
    const malformed = await refused({ extensionId: box.extension.id, after: "x1" }, box.viewerKey);
    expect([malformed.extensions?.code, Object.keys(malformed.extensions?.fields as object)]).toEqual(["BAD_USER_INPUT", ["after"]]);
    expect((await refused({ extensionId: box.extension.id, after: "0" }, stranger.viewerKey)).extensions?.code).toBe("NOT_FOUND");
    expect((await refused({ tenantId: box.tenant.id, after: "0" }, stranger.viewerKey)).extensions?.code).toBe("NOT_FOUND");
  });

  it("VOICEMAIL_RETENTION_DAYS removes older messages with the DELETED event of a delete", async () => {
    const box = await mailbox();
    const keep = await post(ingestKey, box.fields(), { bytes: wav });
    const sub = await subscribe(ts, VoicemailEventsDocument, { extensionId: box.extension.id }, box.viewerKey);
    try {
      const old = await post(ingestKey, box.fields({ received_at: new Date(Date.now() - 40 * 86_400_000).toISOString() }), { bytes: wav });
      expect(old.status).toBe(201);
      const deleted = await sub.next((d) => d.voicemailEvents.type === "DELETED", 10_000);
      expect(deleted.voicemailEvents).toMatchObject({ message: { id: String(old.body.data.id) }, summary: { unheard: 1, total: 1 } });
      expect((await rest("GET", `/api/voicemail/${old.body.data.id}`, { key: box.viewerKey })).status).toBe(404);
      expect((await rest("GET", `/api/voicemail/${keep.body.data.id}`, { key: box.viewerKey })).status).toBe(200);
    } finally {
      await sub.close();
    }
  });
});

describe("the audit trail", () => {
  it("records a deposit (ingest), a heard change (graphql) and a delete (rest) in their transactions; refusals and repeats none", async () => {
    const box = await mailbox();
    const deposited = await post(ingestKey, box.fields({ message_id: "audited", call_id: "c-9" }), { bytes: wav });
    expect((await post(ingestKey, box.fields({ message_id: "audited" }), { bytes: wav })).status).toBe(200);
    expect((await post(ingestKey, box.fields(), { bytes: Buffer.alloc(0) })).status).toBe(422);
    const id = String(deposited.body.data.id);
    await ts.ok(MarkVoicemailHeardDocument, { id }, box.adminKey);
    await ts.ok(MarkVoicemailHeardDocument, { id }, box.adminKey);
    expect((await rest("DELETE", `/api/voicemail/${id}`, { key: box.adminKey })).status).toBe(204);
    const { auditLog } = await ts.ok(AuditLogDocument, { tenantId: box.tenant.id, filter: { entityType: "voicemail_message" } }, box.adminKey);
    expect(auditLog.nodes.map((e) => [e.action, e.entityId, e.transport])).toEqual([
      ["voicemail_message.deleted", id, "rest"],
      ["voicemail_message.updated", id, "graphql"],
      ["voicemail_message.created", id, "ingest"],
    ]);
    expect(auditLog.nodes[1].changes).toEqual({ heard: [false, true] });
    expect(auditLog.nodes[2].changes).toMatchObject({ messageId: [null, "audited"], callId: [null, "c-9"], heard: [null, false], sizeBytes: [null, wav.length] });
    expect(auditLog.nodes[2].actor.role).toBe("INGEST");
  });
});

describe("tenant isolation", () => {
  it("another tenant's message, audio, listing, changes and subscription all answer as not found", async () => {
    const box = await mailbox();
    const id = String((await post(ingestKey, box.fields(), { bytes: wav })).body.data.id);
    const other = await tenantWithKeys(ts);
    for (const key of [other.viewerKey, other.adminKey]) {
      expect((await rest("GET", `/api/voicemail/${id}`, { key })).status).toBe(404);
      expect((await download(`/api/voicemail/${id}/audio`, key)).status).toBe(404);
      expect((await rest("GET", `/api/extensions/${box.extension.id}/voicemail`, { key })).status).toBe(404);
      const gql = await ts.gql(VoicemailMessageDocument, { id }, key);
      expect(gql.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    }
    expect((await rest("PATCH", `/api/voicemail/${id}`, { key: other.adminKey, json: { heard: true } })).status).toBe(404);
    expect((await rest("DELETE", `/api/voicemail/${id}`, { key: other.adminKey })).status).toBe(404);
    expect((await ts.gql(MarkVoicemailHeardDocument, { id }, other.adminKey)).errors?.[0].extensions?.code).toBe("NOT_FOUND");
    expect((await ts.gql(DeleteVoicemailMessageDocument, { id }, other.adminKey)).errors?.[0].extensions?.code).toBe("NOT_FOUND");
    for (const variables of [{ extensionId: box.extension.id }, { tenantId: box.tenant.id }]) {
      const sub = await subscribe(ts, VoicemailEventsDocument, variables, other.viewerKey, { expectError: true });
      expect((await sub.error()).extensions?.code).toBe("NOT_FOUND");
      await sub.close();
    }
    // Nothing changed.
    const mine = await rest("GET", `/api/voicemail/${id}`, { key: box.viewerKey });
    expect(mine.body.data.heard).toBe(false);
  });
});

describe("the REST routes' other answers", () => {
  it("answers 401 without a key, 403 for a role that may not, 400/413/415 for bodies it cannot read, 500 on a failure", async () => {
    const box = await mailbox();
    const id = (await post(ingestKey, box.fields(), { bytes: wav })).body.data.id;
    const list = `/api/extensions/${box.extension.id}/voicemail`;
    for (const [method, path] of [["GET", `/api/voicemail/${id}`], ["PATCH", `/api/voicemail/${id}`], ["DELETE", `/api/voicemail/${id}`], ["GET", `/api/voicemail/${id}/audio`], ["GET", list]]) {
      expect((await rest(method, path, { key: null, json: method === "PATCH" ? { heard: true } : undefined })).status).toBe(401);
    }
    expect((await post("", box.fields(), { bytes: wav })).status).toBe(401);
    expect((await rest("GET", `/api/voicemail/${id}`, { key: ingestKey })).status).toBe(403);
    expect((await rest("GET", list, { key: ingestKey })).status).toBe(403);
    expect((await rest("GET", `/api/voicemail/999999999`, { key: box.viewerKey })).status).toBe(404);
    expect((await rest("PATCH", `/api/voicemail/999999999`, { key: box.adminKey, json: { heard: true } })).status).toBe(404);

    const broken = await ts.http("/api/voicemail", {
      key: ingestKey,
      method: "POST",
      headers: { "content-type": "multipart/form-data; boundary=xyz" },
      body: "--xyz\r\nContent-Disposition: form-data; name=\"extension\"\r\n\r\n1001",
    });
    const brokenBody = await broken.json();
    checkAgainstDocument("POST", "/api/voicemail", broken.status, brokenBody, JSON.stringify(brokenBody));
    expect(broken.status).toBe(400);
    const patch = (raw: string | Buffer, type: string) => rest("PATCH", `/api/voicemail/${id}`, { key: box.adminKey, raw, headers: { "content-type": type } });
    expect((await patch("{nope", "application/json")).status).toBe(400);
    expect((await patch(`{"heard": true, "pad": "${"x".repeat(1024 * 1024 + 10)}"}`, "application/json")).status).toBe(413);
    expect((await patch("heard=true", "text/plain")).status).toBe(415);

    const service = ts.server.services.voicemail;
    const failures: Array<[keyof typeof service, () => Promise<{ status: number; body: unknown }>]> = [
      ["deposit", () => post(ingestKey, box.fields(), { bytes: wav })],
      ["get", () => rest("GET", `/api/voicemail/${id}`, { key: box.viewerKey })],
      ["markHeard", () => rest("PATCH", `/api/voicemail/${id}`, { key: box.adminKey, json: { heard: true } })],
      ["delete", () => rest("DELETE", `/api/voicemail/${id}`, { key: box.adminKey })],
      ["get", () => download(`/api/voicemail/${id}/audio`, box.viewerKey).then((r) => ({ status: r.status, body: JSON.parse(r.bytes.toString()) }))],
      ["paginate", () => rest("GET", list, { key: box.viewerKey })],
    ];
    for (const [name, call] of failures) {
      const spy = jest.spyOn(service, name as "get").mockRejectedValue(new Error('relation "voicemail_message" does not exist: SELECT data FROM voicemail_audio_chunk'));
      try {
        const r = await call();
        expect([name, r.status]).toEqual([name, 500]);
        expect(r.body).toEqual({ message: "Server Error" });
      } finally {
        spy.mockRestore();
      }
    }
    // A failure once the headers are out cuts the download short rather than sending other bytes.
    const spy = jest.spyOn(service, "audioChunk").mockRejectedValueOnce(new Error("boom"));
    await expect(download(`/api/voicemail/${id}/audio`, box.viewerKey)).rejects.toThrow();
    spy.mockRestore();
    expect((await rest("GET", `/api/voicemail/${id}`, { key: box.viewerKey })).status).toBe(200);
  });

  it("every documented status of the voicemail operations was answered, and matched its schema, in this suite", () => {
    const missing = documentedResponses((template) => template.includes("voicemail") && !template.endsWith("/greeting")).filter((r) => !seen.has(r));
    expect(missing).toEqual([]);
  });
});
