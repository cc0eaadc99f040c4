import { toneWav } from "../../src/modules/voicemail/wav";
import { createExtension, createTenant } from "../support/factories";
import { blocksWithTone } from "../support/goertzel";
import { startMedia, startRtpengine, type MediaInstance, type RtpengineProcess } from "../support/media";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { startTestServer, type TestServer } from "../support/server";
import { createEngineRole, freeUdpPort, startKamailio, type EngineRole, type Kamailio } from "../support/sip";
import { TestPhone } from "../support/test-phone";
import { waitFor } from "../support/wait";

/**
 * The media application behind the shipped Kamailio (contract §13): calls that need it are sent
 * there (-A MEDIA_URI), its message-waiting NOTIFYs reach the registered phones through the engine,
 * and message-summary SUBSCRIBEs are authenticated by the engine for the phone's own mailbox.
 */
const real = requireReal("postgres") && requireReal("redis");
const suite = real ? describe : describe.skip;

suite("the media application through the shipped Kamailio", () => {
  let ts: TestServer;
  let role: EngineRole;
  let kamailio: Kamailio;
  let rtpengine: RtpengineProcess;
  let media: MediaInstance;
  const phones: TestPhone[] = [];

  beforeAll(async () => {
    ts = await startTestServer();
    role = await createEngineRole(databaseUrl()!, ts.schema);
    const mediaPort = await freeUdpPort();
    kamailio = await startKamailio({
      databaseUrl: role.url,
      redisUrl: redisUrl()!,
      streamKey: `${ts.redisPrefix}pbx:events`,
      defines: [`MEDIA_URI="sip:127.0.0.1:${mediaPort}"`],
    });
    rtpengine = await startRtpengine();
    media = await startMedia(ts, rtpengine, { ENGINE_SIP_URI: `sip:127.0.0.1:${kamailio.port}` }, mediaPort);
  }, 60_000);

  afterAll(async () => {
    for (const phone of phones) await phone.stop();
    await media?.stop();
    await rtpengine?.stop();
    await kamailio?.stop();
    if (process.env.MEDIA_TEST_DEBUG) process.stderr.write(kamailio?.output() ?? "");
    await role?.drop();
    await ts?.stop();
  });

  async function phone(domain: string, user: string, password = "s3cur3p@ss-long"): Promise<TestPhone> {
    const p = await TestPhone.start({ proxy: { host: "127.0.0.1", port: kamailio.port }, user, domain, password, displayName: `Phone ${user}` });
    phones.push(p);
    return p;
  }

  const sql = <T = Record<string, unknown>>(text: string, params: unknown[]): Promise<T[]> => ts.server.db.dataSource.query(text, params);
  const cdrsOf = (linkedId: string) =>
    sql<{ extensionNumber: string; disposition: string }>(`SELECT extension_number AS "extensionNumber", disposition FROM cdr WHERE linked_id = $1 ORDER BY extension_number`, [linkedId]);

  async function leaveMessage(caller: TestPhone, number: string, seconds: number) {
    const call = await caller.call(number, { toneHz: 1000 });
    expect(call.status).toBe(200);
    await waitFor("the beep", () => blocksWithTone(call.heard, 1200) >= 2, 30_000);
    const started = Date.now();
    await waitFor(`${seconds} s of message`, () => Date.now() - started >= seconds * 1000, seconds * 1000 + 5000, 100);
    await call.hangup();
    return call;
  }

  it("a call to a voicemail extension with no phone registered leaves a message: audio stored, caller's CDR VOICEMAIL, message's cdr the caller's leg", async () => {
    const tenant = await createTenant(ts);
    const a = await createExtension(ts, tenant.id);
    const b = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const caller = await phone(tenant.sipDomain, a.extensionNumber);
    const call = await leaveMessage(caller, b.extensionNumber, 2);
    const callId = call.dialog!.callId;
    const [message] = await waitFor("the message", async () => {
      const rows = await sql<{ id: number; callId: string; callerNumber: string; durationSeconds: number }>(
        `SELECT id, call_id AS "callId", caller_number AS "callerNumber", duration_seconds AS "durationSeconds" FROM voicemail_message WHERE extension_id = $1`,
        [Number(b.id)],
      );
      return rows.length ? rows : undefined;
    });
    expect(message).toMatchObject({ callId, callerNumber: a.extensionNumber });
    expect(message.durationSeconds).toBeGreaterThanOrEqual(1);
    expect(message.durationSeconds).toBeLessThanOrEqual(3);
    const cdrs = await waitFor("the caller's CDR", async () => ((await cdrsOf(callId)).length ? cdrsOf(callId) : undefined));
    expect(cdrs).toEqual([{ extensionNumber: a.extensionNumber, disposition: "voicemail" }]);
    const res = await ts.http(`/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `{ extension(id: "${b.id}") { voicemailMessages(first: 5) { nodes { callId cdr { callId disposition extensionNumber } } } } }` }),
    });
    const body = (await res.json()) as { data: { extension: { voicemailMessages: { nodes: Array<{ callId: string; cdr: { callId: string; disposition: string; extensionNumber: string } | null }> } } } };
    expect(body.data.extension.voicemailMessages.nodes).toEqual([{ callId, cdr: { callId, disposition: "VOICEMAIL", extensionNumber: a.extensionNumber } }]);
  }, 90_000);

  it("a busy phone sends the caller to voicemail; the lamp lights (Messages-Waiting: yes) and goes out once the message is marked heard", async () => {
    const tenant = await createTenant(ts);
    const a = await createExtension(ts, tenant.id);
    const b = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const callee = await phone(tenant.sipDomain, b.extensionNumber);
    expect(await callee.register()).toBe(200);
    callee.incoming = { status: 486 };
    const caller = await phone(tenant.sipDomain, a.extensionNumber);
    const call = await leaveMessage(caller, b.extensionNumber, 2);
    expect(callee.invites.length).toBe(1);
    const callId = call.dialog!.callId;
    const lit = await waitFor("Messages-Waiting: yes", () => callee.notifies.find((n) => n.event === "message-summary" && /Messages-Waiting: yes/.test(n.body)), 20_000);
    expect(lit.body).toMatch(/Voice-Message: 1\/0/);
    const cdrs = await waitFor("both legs' CDRs", async () => ((await cdrsOf(callId)).length === 2 ? cdrsOf(callId) : undefined));
    expect(cdrs).toEqual(
      [
        { extensionNumber: a.extensionNumber, disposition: "voicemail" },
        { extensionNumber: b.extensionNumber, disposition: "busy" },
      ].sort((x, y) => x.extensionNumber.localeCompare(y.extensionNumber)),
    );
    const [{ id }] = await sql<{ id: number }>(`SELECT id FROM voicemail_message WHERE extension_id = $1`, [Number(b.id)]);
    const patched = await ts.http(`/api/voicemail/${id}`, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ heard: true }) });
    expect(patched.status).toBe(200);
    const out = await waitFor("Messages-Waiting: no", () => callee.notifies.find((n) => /Messages-Waiting: no/.test(n.body)), 20_000);
    expect(out.body).toMatch(/Voice-Message: 0\/1/);
  }, 90_000);

  it("a phone SUBSCRIBEs to its own mailbox and is told its state; another extension's mailbox is refused", async () => {
    const tenant = await createTenant(ts);
    const a = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const b = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const mine = await phone(tenant.sipDomain, a.extensionNumber);
    expect(await mine.subscribe(a.extensionNumber, "message-summary")).toBe(200);
    const first = await waitFor("the first NOTIFY", () => mine.notifies.find((n) => n.event === "message-summary"), 10_000);
    expect(first.body).toMatch(/Messages-Waiting: no/);
    expect(first.subscriptionState).toMatch(/^active/);
    const before = mine.notifies.length;
    expect(await mine.subscribe(b.extensionNumber, "message-summary")).toBe(403);
    // A new message for b tells a's subscription nothing; one for a does.
    const ingest = await ts.http(`/api/voicemail`, {
      method: "POST",
      body: (() => {
        const form = new FormData();
        for (const [k, v] of Object.entries({ domain: tenant.sipDomain, extension: a.extensionNumber, message_id: "m-1", duration_seconds: "1" })) form.append(k, v);
        form.append("audio", new Blob([toneWav({ seconds: 1 })], { type: "audio/wav" }), "m.wav");
        return form;
      })(),
    });
    expect(ingest.status).toBe(201);
    const lit = await waitFor("the subscription's NOTIFY", () => mine.notifies.slice(before).find((n) => /Messages-Waiting: yes/.test(n.body)), 10_000);
    expect(lit.subscriptionState).toMatch(/^active/);
  }, 60_000);
});
