import { readWav } from "../../src/modules/voicemail/wav";
import { createExtension, createTenant } from "../support/factories";
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
});
