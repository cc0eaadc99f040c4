import { readWav, toneWav } from "../../src/modules/voicemail/wav";
import { createExtension, createKey, createTenant, tenantWithKeys } from "../support/factories";
import { blocksWithTone } from "../support/goertzel";
import { startMedia, startRtpengine, type MediaInstance, type RtpengineProcess } from "../support/media";
import { startTestServer, type TestServer } from "../support/server";
import { TestPhone } from "../support/test-phone";
import { waitFor } from "../support/wait";

/**
 * Voicemail deposit (contract §13) with real audio: rtpengine in userspace, the media application,
 * and a caller that sends a tone. This file calls the media application directly, as the engine
 * would (its X-Pbx-* headers); media-engine.test.ts goes through the shipped Kamailio.
 */
let ts: TestServer;
let rtpengine: RtpengineProcess;
let media: MediaInstance;
const phones: TestPhone[] = [];

beforeAll(async () => {
  ts = await startTestServer();
  rtpengine = await startRtpengine();
  media = await startMedia(ts, rtpengine, { VOICEMAIL_MAX_SECONDS: "6" });
}, 60_000);

afterAll(async () => {
  for (const phone of phones) await phone.stop();
  await media?.stop();
  await rtpengine?.stop();
  await ts?.stop();
});

async function caller(domain: string, user = "5551"): Promise<TestPhone> {
  const phone = await TestPhone.start({ proxy: { host: "127.0.0.1", port: media.sipPort }, user, domain, displayName: "Test Caller" });
  phones.push(phone);
  return phone;
}

const headers = (domain: string, target: string) => ({ "X-Pbx-App": "voicemail", "X-Pbx-Domain": domain, "X-Pbx-Target": target });

async function messages(extensionId: string): Promise<Array<{ id: number; durationSeconds: number; callId: string; callerNumber: string; callerName: string }>> {
  return ts.server.db.dataSource.query(
    `SELECT id, duration_seconds AS "durationSeconds", call_id AS "callId", caller_number AS "callerNumber", caller_name AS "callerName" FROM voicemail_message WHERE extension_id = $1 ORDER BY id`,
    [Number(extensionId)],
  );
}

async function audioOf(id: number): Promise<Int16Array> {
  const res = await ts.http(`/api/voicemail/${id}/audio`);
  expect(res.status).toBe(200);
  const wav = Buffer.from(await res.arrayBuffer());
  const info = readWav(wav)!;
  expect(info).toMatchObject({ format: 1, channels: 1, sampleRate: 8000, bitsPerSample: 16 });
  return new Int16Array(wav.buffer.slice(wav.byteOffset + info.dataOffset, wav.byteOffset + info.dataOffset + info.dataBytes));
}

/** Waits until the caller has heard the beep (1.2 kHz) end: recording starts then. */
async function afterBeep(call: { heard: number[] }): Promise<void> {
  await waitFor("the beep", () => blocksWithTone(call.heard, 1200) >= 2, 30_000);
}

describe("voicemail deposit by a real call", () => {
  it("records the caller's 1 kHz after the greeting and beep, until hang-up: the stored WAV holds 1 kHz for the time spoken", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const phone = await caller(tenant.sipDomain);
    const call = await phone.call(ext.extensionNumber, { headers: headers(tenant.sipDomain, ext.extensionNumber), toneHz: 1000 });
    expect(call.status).toBe(200);
    // The shipped greeting is speech: no long stretch of a pure tone before the beep.
    await afterBeep(call);
    const started = Date.now();
    await waitFor("3 s of message", () => Date.now() - started >= 3000, 10_000, 100);
    await call.hangup();
    const [message] = await waitFor("the stored message", async () => {
      const rows = await messages(ext.id);
      return rows.length ? rows : undefined;
    });
    expect(message).toMatchObject({ callId: call.dialog!.callId, callerNumber: "5551", callerName: "Test Caller" });
    expect(message.durationSeconds).toBeGreaterThanOrEqual(2);
    expect(message.durationSeconds).toBeLessThanOrEqual(4);
    const samples = await audioOf(message.id);
    expect(Math.abs(samples.length / 8000 - message.durationSeconds)).toBeLessThanOrEqual(0.5);
    // Most 100 ms blocks are the caller's tone (the first ones may still carry the beep's tail).
    const blocks = Math.floor(samples.length / 800);
    expect(blocksWithTone(samples, 1000)).toBeGreaterThanOrEqual(blocks * 0.8);
  }, 60_000);

  /** A tenant's voicemail extension whose greeting is a short 400 Hz tone (the tests then wait less). */
  async function mailboxWithShortGreeting() {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const put = await ts.http(`/api/extensions/${ext.id}/voicemail/greeting`, { method: "PUT", headers: { "content-type": "audio/wav" }, body: toneWav({ seconds: 1, frequency: 400 }) });
    expect(put.status).toBe(201);
    return { tenant, ext };
  }

  it("an uploaded 400 Hz greeting is what the caller hears before the beep", async () => {
    const { tenant, ext } = await mailboxWithShortGreeting();
    const phone = await caller(tenant.sipDomain);
    const call = await phone.call(ext.extensionNumber, { headers: headers(tenant.sipDomain, ext.extensionNumber) });
    expect(call.status).toBe(200);
    await afterBeep(call);
    const beepAt = call.heard.length;
    // At least 0.6 s of the 1 s greeting came through as 400 Hz, before the beep.
    expect(blocksWithTone(call.heard.slice(0, beepAt), 400)).toBeGreaterThanOrEqual(6);
    await call.hangup();
  }, 60_000);

  it("# ends the recording early: the media application hangs up and the message holds what came before", async () => {
    const { tenant, ext } = await mailboxWithShortGreeting();
    const phone = await caller(tenant.sipDomain);
    const call = await phone.call(ext.extensionNumber, { headers: headers(tenant.sipDomain, ext.extensionNumber), toneHz: 1000 });
    await afterBeep(call);
    const started = Date.now();
    // 3 s: the recording starts after the beep's end by the media application's timers (this
    // process), which a loaded machine delays; a message needs 1 s
    await waitFor("3 s of message", () => Date.now() - started >= 3000, 10_000, 100);
    await call.digit("#");
    await call.waitEnded();
    expect(call.endedBy).toBe("them");
    const [message] = await waitFor("the stored message", async () => ((await messages(ext.id)).length ? messages(ext.id) : undefined));
    expect(message.durationSeconds).toBeGreaterThanOrEqual(1);
    expect(message.durationSeconds).toBeLessThanOrEqual(4);
    expect(blocksWithTone(await audioOf(message.id), 1000)).toBeGreaterThanOrEqual(8);
  }, 60_000);

  it("VOICEMAIL_MAX_SECONDS ends the recording: the caller is hung up on and the message is that long", async () => {
    const { tenant, ext } = await mailboxWithShortGreeting();
    const phone = await caller(tenant.sipDomain);
    const call = await phone.call(ext.extensionNumber, { headers: headers(tenant.sipDomain, ext.extensionNumber), toneHz: 1000 });
    await call.waitEnded(30_000);
    expect(call.endedBy).toBe("them");
    const [message] = await waitFor("the stored message", async () => ((await messages(ext.id)).length ? messages(ext.id) : undefined));
    expect(message.durationSeconds).toBe(6);
  }, 60_000);

  it("under a second of audio stores nothing", async () => {
    const { tenant, ext } = await mailboxWithShortGreeting();
    const phone = await caller(tenant.sipDomain);
    const call = await phone.call(ext.extensionNumber, { headers: headers(tenant.sipDomain, ext.extensionNumber), toneHz: 1000 });
    await afterBeep(call);
    await call.hangup();
    // The media application is done with the call once it has no calls left; then nothing may have been stored.
    await waitFor("the media application to finish the call", () => media.app.calls() === 0);
    expect(await messages(ext.id)).toEqual([]);
  }, 60_000);

  it("a full mailbox: the caller hears the short message, is hung up on, and nothing is stored", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const ingest = await createKey(ts, "INGEST", null);
    // VOICEMAIL_MAX_MESSAGES is 100 by default: fill the mailbox through the API.
    for (let i = 0; i < 100; i++) {
      const form = new FormData();
      for (const [k, v] of Object.entries({ domain: tenant.sipDomain, extension: ext.extensionNumber, message_id: `fill-${i}`, duration_seconds: "1" })) form.append(k, v);
      form.append("audio", new Blob([toneWav({ seconds: 0.1 })], { type: "audio/wav" }), "m.wav");
      const res = await ts.http("/api/voicemail", { key: ingest, method: "POST", body: form });
      expect(res.status).toBe(201);
    }
    const phone = await caller(tenant.sipDomain);
    const call = await phone.call(ext.extensionNumber, { headers: headers(tenant.sipDomain, ext.extensionNumber), toneHz: 1000 });
    expect(call.status).toBe(200);
    await call.waitEnded(30_000);
    expect(call.endedBy).toBe("them");
    // It heard something (the prompt), but never the beep.
    expect(call.heard.some((s) => Math.abs(s) > 1000)).toBe(true);
    expect(blocksWithTone(call.heard, 1200)).toBe(0);
    expect((await messages(ext.id)).length).toBe(100);
  }, 90_000);

  it("an extension without voicemail, or an unknown one, is refused before any answer", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id, { voicemailEnabled: false });
    const phone = await caller(tenant.sipDomain);
    expect((await phone.call(ext.extensionNumber, { headers: headers(tenant.sipDomain, ext.extensionNumber) })).status).toBe(480);
    expect((await phone.call("9999", { headers: headers(tenant.sipDomain, "9999") })).status).toBe(404);
    expect((await phone.call("9999", { headers: { "X-Pbx-App": "nonsense" } })).status).toBe(404);
  }, 60_000);
});

describe("the greeting API (PUT/GET/DELETE /api/extensions/{id}/voicemail/greeting)", () => {
  it("stores a WAV sent raw or as multipart, serves it back, replaces and deletes it", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const ext = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const path = `/api/extensions/${ext.id}/voicemail/greeting`;
    expect((await ts.http(path, { key: adminKey })).status).toBe(404);
    const first = toneWav({ seconds: 2, frequency: 400 });
    const put = await ts.http(path, { key: adminKey, method: "PUT", headers: { "content-type": "audio/wav" }, body: first });
    expect(put.status).toBe(201);
    expect(((await put.json()) as { data: unknown }).data).toMatchObject({ extension_id: Number(ext.id), content_type: "audio/wav", duration_seconds: 2, size_bytes: first.length });
    const got = await ts.http(path, { key: adminKey });
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toBe("audio/wav");
    expect(Buffer.from(await got.arrayBuffer()).equals(first)).toBe(true);
    const form = new FormData();
    const second = toneWav({ seconds: 1, frequency: 600 });
    form.append("audio", new Blob([second], { type: "audio/wav" }), "greeting.wav");
    const replaced = await ts.http(path, { key: adminKey, method: "PUT", body: form });
    expect(replaced.status).toBe(200);
    expect(Buffer.from(await (await ts.http(path, { key: adminKey })).arrayBuffer()).equals(second)).toBe(true);
    expect((await ts.http(path, { key: adminKey, method: "DELETE" })).status).toBe(204);
    expect((await ts.http(path, { key: adminKey })).status).toBe(404);
    expect((await ts.http(path, { key: adminKey, method: "DELETE" })).status).toBe(404);
  });

  it("refuses what is not a greeting (422 on audio), a reader (403) and another tenant (404), and stores nothing", async () => {
    const { tenant, adminKey, viewerKey } = await tenantWithKeys(ts);
    const other = await tenantWithKeys(ts);
    const ext = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const path = `/api/extensions/${ext.id}/voicemail/greeting`;
    const put = (body: Buffer, type: string | null, key = adminKey) =>
      ts.http(path, { key, method: "PUT", headers: type ? { "content-type": type } : {}, body });
    const tooLong = await put(toneWav({ seconds: 61 }), "audio/wav");
    expect(tooLong.status).toBe(422);
    expect(((await tooLong.json()) as { errors: { audio: string[] } }).errors.audio[0]).toMatch(/60 seconds/);
    const notWav = await put(Buffer.from("this is not audio at all, just text"), "audio/wav");
    expect(notWav.status).toBe(422);
    const empty = await put(Buffer.alloc(0), "audio/wav");
    expect(empty.status).toBe(422);
    const wrongType = await put(toneWav({ seconds: 1 }), "text/plain");
    expect([415, 422]).toContain(wrongType.status);
    expect((await put(toneWav({ seconds: 1 }), "audio/wav", viewerKey)).status).toBe(403);
    expect((await put(toneWav({ seconds: 1 }), "audio/wav", other.adminKey)).status).toBe(404);
    expect((await ts.http(path, { key: other.adminKey })).status).toBe(404);
    expect((await ts.http(path, { key: adminKey })).status).toBe(404);
    const [{ count }] = await ts.server.db.dataSource.query(`SELECT count(*)::int AS count FROM voicemail_greeting WHERE extension_id = $1`, [Number(ext.id)]);
    expect(count).toBe(0);
  });
});

describe("*98: listening by phone", () => {
  async function deposit(domain: string, number: string, id: string, frequency: number, receivedAt: string): Promise<void> {
    const ingest = await createKey(ts, "INGEST", null);
    const form = new FormData();
    for (const [k, v] of Object.entries({ domain, extension: number, message_id: id, duration_seconds: "2", received_at: receivedAt })) form.append(k, v);
    form.append("audio", new Blob([toneWav({ seconds: 2, frequency })], { type: "audio/wav" }), "m.wav");
    expect((await ts.http("/api/voicemail", { key: ingest, method: "POST", body: form })).status).toBe(201);
  }
  const state = (extensionId: string) =>
    ts.server.db.dataSource.query(`SELECT message_id AS "messageId", heard FROM voicemail_message WHERE extension_id = $1 ORDER BY message_id`, [Number(extensionId)]);

  it("plays the unheard messages newest first and marks each heard; 7 deletes the one just played", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    await deposit(tenant.sipDomain, ext.extensionNumber, "older", 600, "2026-01-01T10:00:00Z");
    await deposit(tenant.sipDomain, ext.extensionNumber, "newer", 1000, "2026-01-01T11:00:00Z");
    const phone = await caller(tenant.sipDomain, ext.extensionNumber);
    const call = await phone.call("*98", { headers: { "X-Pbx-App": "voicemail-main", "X-Pbx-Domain": tenant.sipDomain, "X-Pbx-Target": ext.extensionNumber } });
    expect(call.status).toBe(200);
    await waitFor("the newer message (1 kHz)", () => blocksWithTone(call.heard, 1000) >= 10, 20_000);
    await waitFor("the older message (600 Hz) after it", () => blocksWithTone(call.heard, 600) >= 3, 20_000);
    const newerEnd = call.heard.length;
    expect(blocksWithTone(call.heard.slice(0, newerEnd), 1200)).toBeGreaterThanOrEqual(2); // the beep after the first
    await call.digit("7");
    await call.waitEnded(20_000);
    expect(call.endedBy).toBe("them");
    await waitFor("the newer heard, the older deleted", async () => {
      const rows = await state(ext.id);
      return rows.length === 1 && rows[0].messageId === "newer" && rows[0].heard === true ? rows : undefined;
    });
  }, 60_000);

  it("with no unheard message it says so and hangs up", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const phone = await caller(tenant.sipDomain, ext.extensionNumber);
    const call = await phone.call("*98", { headers: { "X-Pbx-App": "voicemail-main", "X-Pbx-Domain": tenant.sipDomain, "X-Pbx-Target": ext.extensionNumber } });
    expect(call.status).toBe(200);
    await call.waitEnded(20_000);
    expect(call.heard.some((x) => Math.abs(x) > 1000)).toBe(true);
  }, 60_000);
});

