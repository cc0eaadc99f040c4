import { toneWav } from "../../src/modules/voicemail/wav";
import { AddRingGroupMemberDocument, CreateOutboundRouteDocument, CreatePhoneNumberDocument, CreateRingGroupDocument, CreateTrunkDocument, UpdateTenantDocument } from "../graphql/generated";
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
/** A carrier's address for the EXTERNAL timeout destination (phones stay on 127.0.0.1). */
const CARRIER = "127.0.0.75";

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
    rtpengine = await startRtpengine();
    // This suite's Kamailio also anchors the media application's calls in rtpengine (RTPENGINE_NG);
    // the queue suite's does not: both set-ups carry audio.
    kamailio = await startKamailio({
      databaseUrl: role.url,
      redisUrl: redisUrl()!,
      streamKey: `${ts.redisPrefix}pbx:events`,
      defines: [`MEDIA_URI="sip:127.0.0.1:${mediaPort}"`, `RTPENGINE_NG="udp:127.0.0.1:${rtpengine.ngPort}"`],
    });
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

  /**
   * Calls `number`, waits for the beep, speaks `seconds` and hangs up. The media application (in
   * this process) starts recording after the beep's end and its own timers: on a loaded machine
   * that can be a second after the caller heard the beep's start, so 3 s of speech always leave
   * more than the 1 s a message needs (contract §13), and a message of 1 to 4 s is expected.
   */
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
    const call = await leaveMessage(caller, b.extensionNumber, 3);
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
    expect(message.durationSeconds).toBeLessThanOrEqual(4);
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
    const call = await leaveMessage(caller, b.extensionNumber, 3);
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

suite("Kamailio when the media application is away", () => {
  it("without MEDIA_URI, or with nothing answering there, *98 and a voicemail call get 480, within seconds", async () => {
    const ts = await startTestServer();
    const role = await createEngineRole(databaseUrl()!, ts.schema);
    const engines: Kamailio[] = [];
    const phones: TestPhone[] = [];
    try {
      const nobody = await freeUdpPort();
      engines.push(await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: `${ts.redisPrefix}pbx:events` }));
      engines.push(await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: `${ts.redisPrefix}pbx:events`, defines: [`MEDIA_URI="sip:127.0.0.1:${nobody}"`] }));
      const tenant = await createTenant(ts);
      const a = await createExtension(ts, tenant.id);
      const b = await createExtension(ts, tenant.id, { voicemailEnabled: true });
      for (const engine of engines) {
        const p = await TestPhone.start({ proxy: { host: "127.0.0.1", port: engine.port }, user: a.extensionNumber, domain: tenant.sipDomain, password: "s3cur3p@ss-long" });
        phones.push(p);
        const started = Date.now();
        expect((await p.call("*98")).status).toBe(480);
        expect((await p.call(b.extensionNumber)).status).toBe(480);
        expect(Date.now() - started).toBeLessThan(20_000);
      }
    } finally {
      for (const p of phones) await p.stop();
      for (const engine of engines) await engine.stop();
      await role.drop();
      await ts.stop();
    }
  }, 90_000);
});

suite("queue calls through the shipped Kamailio and the media application", () => {
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
    kamailio = await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: `${ts.redisPrefix}pbx:events`, defines: [`MEDIA_URI="sip:127.0.0.1:${mediaPort}"`] });
    rtpengine = await startRtpengine();
    media = await startMedia(ts, rtpengine, { ENGINE_SIP_URI: `sip:127.0.0.1:${kamailio.port}` }, mediaPort);
  }, 60_000);

  afterAll(async () => {
    for (const phone of phones) await phone.stop();
    await media?.stop();
    await rtpengine?.stop();
    const logged = kamailio?.output() ?? "";
    await kamailio?.stop();
    await role?.drop();
    await ts?.stop();
    // the queue's timeout destinations run through routes of several concerns: none may fail
    expect(logged).not.toMatch(/\b(ERROR|CRITICAL):/);
  });

  const gql = async <T = any>(query: string, variables: Record<string, unknown> = {}): Promise<T> => {
    const res = await ts.http("/graphql", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data: T; errors?: unknown[] };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const sql = <T = any>(text: string, params: unknown[]): Promise<T[]> => ts.server.db.dataSource.query(text, params);

  async function phone(domain: string, user: string): Promise<TestPhone> {
    const p = await TestPhone.start({ proxy: { host: "127.0.0.1", port: kamailio.port }, user, domain, password: "s3cur3p@ss-long", displayName: `Phone ${user}` });
    phones.push(p);
    return p;
  }

  /** A tenant with a queue and `agents` registered agents answering with `toneHz` (their devices known to the product). */
  async function queueWithAgents(strategy: string, agents: number, extra: Record<string, unknown> = {}) {
    const tenant = await createTenant(ts);
    const { createQueue: queue } = await gql(`mutation($input: CreateQueueInput!) { createQueue(input: $input) { id number strategy agentRingSeconds maxWaitSeconds timeoutDestination { type target } } }`, {
      input: { tenantId: tenant.id, name: "Support", number: "700", strategy, ...extra },
    });
    const members: Array<{ ext: { id: string; extensionNumber: string }; agentId: string; phone: TestPhone }> = [];
    for (let i = 0; i < agents; i++) {
      const ext = await createExtension(ts, tenant.id);
      const { addQueueAgent } = await gql(`mutation($q: ID!, $e: ID!) { addQueueAgent(queueId: $q, extensionId: $e) { id } }`, { q: queue.id, e: ext.id });
      const p = await phone(tenant.sipDomain, ext.extensionNumber);
      p.incoming = { answer: true, toneHz: 1600, afterMs: 1500 };
      expect(await p.register()).toBe(200);
      members.push({ ext, agentId: addQueueAgent.id, phone: p });
    }
    await waitFor("the agents' devices", async () => {
      const [{ n }] = await sql(`SELECT count(DISTINCT extension_id)::int AS n FROM device WHERE tenant_id = $1 AND unregistered_at IS NULL`, [Number(tenant.id)]);
      return n === agents || undefined;
    });
    const caller = await createExtension(ts, tenant.id);
    return { tenant, queue, members, callerPhone: await phone(tenant.sipDomain, caller.extensionNumber), callerNumber: caller.extensionNumber };
  }

  it("a queue caller hears music on hold, then the agent who answers; each hears the other's tone; the legs and queue events are recorded", async () => {
    const { queue, members, callerPhone, callerNumber } = await queueWithAgents("LINEAR", 1);
    expect(queue).toMatchObject({ agentRingSeconds: 15, maxWaitSeconds: 300, timeoutDestination: { type: "HANGUP", target: null } });
    const call = await callerPhone.call(queue.number, { toneHz: 1000 });
    expect(call.status).toBe(200);
    const agentCall = await members[0].phone.nextAnswered();
    const onHold = call.heard.length;
    // Music on hold came first: sound, and none of it the agent's 1.6 kHz.
    expect(call.heard.slice(0, onHold).some((s) => Math.abs(s) > 1000)).toBe(true);
    expect(blocksWithTone(call.heard.slice(0, onHold), 1600)).toBe(0);
    await waitFor("the caller to hear the agent (1.6 kHz)", () => blocksWithTone(call.heard.slice(onHold), 1600) >= 10, 20_000);
    await waitFor("the agent to hear the caller (1 kHz)", () => blocksWithTone(agentCall.heard, 1000) >= 10, 20_000);
    await call.hangup();
    await agentCall.waitEnded();
    const callId = call.dialog!.callId;
    const legs = await waitFor("both legs' CDRs", async () => {
      const rows = await sql(`SELECT extension_number AS "number", disposition, queue_id AS "queueId" FROM cdr WHERE linked_id = $1 ORDER BY extension_number`, [callId]);
      return rows.length === 2 ? rows : undefined;
    });
    expect(legs).toEqual(
      expect.arrayContaining([
        { number: callerNumber, disposition: "answered", queueId: Number(queue.id) },
        { number: members[0].ext.extensionNumber, disposition: "answered", queueId: Number(queue.id) },
      ]),
    );
    const [passage] = await sql(`SELECT joined_at IS NOT NULL AS joined, answered_at IS NOT NULL AS answered, agent_extension_id AS agent FROM queue_call WHERE call_id = $1`, [callId]);
    expect(passage).toEqual({ joined: true, answered: true, agent: Number(members[0].ext.id) });
  }, 90_000);

  it("ROUND_ROBIN offers two calls to two agents in turn, LINEAR both to the first; a paused agent, or one on do-not-disturb, never rings", async () => {
    for (const [strategy, expected] of [["ROUND_ROBIN", [0, 1]], ["LINEAR", [0, 0]]] as const) {
      const { queue, members, callerPhone } = await queueWithAgents(strategy, 2);
      for (const [turn, who] of expected.entries()) {
        const call = await callerPhone.call(queue.number, { toneHz: 1000 });
        const agentCall = await members[who].phone.nextAnswered();
        await waitFor(`${strategy} call ${turn + 1} bridged`, () => blocksWithTone(agentCall.heard, 1000) >= 3, 20_000);
        await call.hangup();
        await agentCall.waitEnded();
        // The agent is free again once its leg has ended in the product.
        await waitFor("the agent's leg to end", async () => ((await sql(`SELECT 1 FROM active_call WHERE extension_id = $1`, [Number(members[who].ext.id)])).length === 0) || undefined);
      }
      expect(members.map((m) => m.phone.invites.length)).toEqual(strategy === "LINEAR" ? [2, 0] : [1, 1]);
      if (strategy === "LINEAR") {
        await gql(`mutation($id: ID!) { updateQueueAgent(id: $id, paused: true) { id paused } }`, { id: members[0].agentId });
        const call = await callerPhone.call(queue.number, { toneHz: 1000 });
        const agentCall = await members[1].phone.nextAnswered();
        await waitFor("bridged to the second agent", () => blocksWithTone(agentCall.heard, 1000) >= 3, 20_000);
        await call.hangup();
        expect(members[0].phone.invites.length).toBe(2);
        // do-not-disturb takes no queue calls either (§12; the wallboard counts it with the paused)
        await waitFor("the second agent's leg to end", async () => ((await sql(`SELECT 1 FROM active_call WHERE extension_id = $1`, [Number(members[1].ext.id)])).length === 0) || undefined);
        await gql(`mutation($id: ID!) { updateQueueAgent(id: $id, paused: false) { id paused } }`, { id: members[0].agentId });
        await gql(`mutation($id: ID!) { updateCallHandling(extensionId: $id, input: { doNotDisturb: true }) { doNotDisturb } }`, { id: members[0].ext.id });
        const dndCall = await callerPhone.call(queue.number, { toneHz: 1000 });
        const dndAgentCall = await members[1].phone.nextAnswered();
        await waitFor("bridged to the second agent again", () => blocksWithTone(dndAgentCall.heard, 1000) >= 3, 20_000);
        await dndCall.hangup();
        expect(members[0].phone.invites.length).toBe(2);
      }
    }
  }, 180_000);

  it("a caller who hangs up while waiting has abandoned; maxWaitSeconds sends the next one to the timeoutDestination (voicemail), which is no abandon", async () => {
    const { tenant, queue, callerPhone } = await queueWithAgents("RING_ALL", 0, {});
    const mailbox = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const abandoned = await callerPhone.call(queue.number, { toneHz: 1000 });
    expect(abandoned.status).toBe(200);
    await waitFor("the join", async () => (await sql(`SELECT 1 FROM queue_call WHERE call_id = $1 AND joined_at IS NOT NULL`, [abandoned.dialog!.callId])).length > 0 || undefined);
    // The wallboard's view of the real caller: waiting now, then gone with an abandon counted.
    const waiting = await gql(`query($id: ID!) { queue(id: $id) { waitingCalls { callId } } }`, { id: queue.id });
    expect(waiting.queue.waitingCalls).toEqual([{ callId: abandoned.dialog!.callId }]);
    await abandoned.hangup();
    await waitFor("the abandon", async () => (await sql(`SELECT 1 FROM queue_call WHERE call_id = $1 AND abandoned_at IS NOT NULL`, [abandoned.dialog!.callId])).length > 0 || undefined);
    expect((await gql(`query($id: ID!) { queue(id: $id) { waitingCalls { callId } } }`, { id: queue.id })).queue.waitingCalls).toEqual([]);
    await gql(`mutation($id: ID!, $input: UpdateQueueInput!) { updateQueue(id: $id, input: $input) { id } }`, {
      id: queue.id,
      input: { maxWaitSeconds: 5, timeoutDestination: { type: "VOICEMAIL", target: mailbox.extensionNumber } },
    });
    const sentOn = await callerPhone.call(queue.number, { toneHz: 1000 });
    await waitFor("the voicemail beep after the wait limit", () => blocksWithTone(sentOn.heard, 1200) >= 2, 30_000);
    const started = Date.now();
    await waitFor("3 s of message", () => Date.now() - started >= 3000, 10_000, 100);
    await sentOn.hangup();
    await waitFor("the message", async () => (await sql(`SELECT 1 FROM voicemail_message WHERE extension_id = $1`, [Number(mailbox.id)])).length > 0 || undefined);
    const [passage] = await sql(`SELECT abandoned_at IS NULL AS "notAbandoned" FROM queue_call WHERE call_id = $1`, [sentOn.dialog!.callId]);
    expect(passage).toEqual({ notAbandoned: true });
  }, 90_000);

  it("maxWaitSeconds with an EXTENSION timeoutDestination rings that extension and connects the caller to it", async () => {
    const { tenant, queue, callerPhone } = await queueWithAgents("RING_ALL", 0);
    const fallback = await createExtension(ts, tenant.id);
    const fallbackPhone = await phone(tenant.sipDomain, fallback.extensionNumber);
    fallbackPhone.incoming = { answer: true, toneHz: 1600 };
    expect(await fallbackPhone.register()).toBe(200);
    await gql(`mutation($id: ID!, $input: UpdateQueueInput!) { updateQueue(id: $id, input: $input) { id } }`, {
      id: queue.id,
      input: { maxWaitSeconds: 5, timeoutDestination: { type: "EXTENSION", target: fallback.extensionNumber } },
    });
    const call = await callerPhone.call(queue.number, { toneHz: 1000 });
    const answered = await fallbackPhone.nextAnswered(30_000);
    await waitFor("the caller to hear the extension", () => blocksWithTone(call.heard, 1600) >= 5, 20_000);
    await waitFor("the extension to hear the caller", () => blocksWithTone(answered.heard, 1000) >= 5, 20_000);
    await answered.hangup();
    await call.waitEnded();
    expect(call.endedBy).toBe("them");
  }, 90_000);

  it("an EXTENSION timeoutDestination is a call to that extension (§12): on do-not-disturb with voicemail, the caller leaves a message in its mailbox; forwardAlways rings where it points", async () => {
    const { tenant, queue, callerPhone } = await queueWithAgents("RING_ALL", 0);
    // do-not-disturb: treated as busy → no forwardBusy → its voicemail, on the caller's call
    const away = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const awayPhone = await phone(tenant.sipDomain, away.extensionNumber);
    awayPhone.incoming = { answer: true, toneHz: 1600 };
    expect(await awayPhone.register()).toBe(200);
    await gql(`mutation($id: ID!) { updateCallHandling(extensionId: $id, input: { doNotDisturb: true }) { doNotDisturb } }`, { id: away.id });
    await gql(`mutation($id: ID!, $input: UpdateQueueInput!) { updateQueue(id: $id, input: $input) { id } }`, {
      id: queue.id,
      input: { maxWaitSeconds: 5, timeoutDestination: { type: "EXTENSION", target: away.extensionNumber } },
    });
    const call = await callerPhone.call(queue.number, { toneHz: 1000 });
    await waitFor("the voicemail beep after the wait limit", () => blocksWithTone(call.heard, 1200) >= 2, 40_000);
    const started = Date.now();
    await waitFor("3 s of message", () => Date.now() - started >= 3000, 10_000, 100);
    await call.hangup();
    expect(awayPhone.invites.length).toBe(0);
    const [message] = await waitFor("the message in the extension's mailbox", async () => {
      const rows = await sql<{ callId: string }>(`SELECT call_id AS "callId" FROM voicemail_message WHERE extension_id = $1`, [Number(away.id)]);
      return rows.length ? rows : undefined;
    });
    expect(message.callId).toBe(call.dialog!.callId);

    // forwardAlways: the extension does not ring, its forward does, and talks with the caller
    const forwarded = await createExtension(ts, tenant.id);
    const forwardedPhone = await phone(tenant.sipDomain, forwarded.extensionNumber);
    forwardedPhone.incoming = { answer: true, toneHz: 1600 };
    expect(await forwardedPhone.register()).toBe(200);
    await gql(`mutation($id: ID!, $target: String!) { updateCallHandling(extensionId: $id, input: { doNotDisturb: false, forwardAlways: { type: EXTENSION, target: $target } }) { doNotDisturb } }`, {
      id: away.id,
      target: forwarded.extensionNumber,
    });
    const second = await callerPhone.call(queue.number, { toneHz: 1000 });
    const answered = await forwardedPhone.nextAnswered(30_000);
    await waitFor("the caller to hear the forward's phone", () => blocksWithTone(second.heard, 1600) >= 5, 20_000);
    await waitFor("the forward's phone to hear the caller", () => blocksWithTone(answered.heard, 1000) >= 5, 20_000);
    expect(awayPhone.invites.length).toBe(0);
    await answered.hangup();
    await second.waitEnded();
  }, 120_000);

  const setTimeoutDestination = (queueId: string, timeoutDestination: { type: string; target: string }) =>
    gql(`mutation($id: ID!, $input: UpdateQueueInput!) { updateQueue(id: $id, input: $input) { id } }`, { id: queueId, input: { maxWaitSeconds: 5, timeoutDestination } });
  const ringGroup = async (tenantId: string, number: string, strategy: string, memberIds: string[], fallback?: { type: string; target: string }) => {
    const { createRingGroup } = await ts.ok(CreateRingGroupDocument, {
      input: { tenantId, name: `Group ${number}`, number, strategy: strategy as never, ringSeconds: 5, ...(fallback ? { fallback: fallback as never } : {}) },
    });
    for (const [i, extensionId] of memberIds.entries()) await ts.ok(AddRingGroupMemberDocument, { ringGroupId: createRingGroup.id, extensionId, position: i + 1 });
    return createRingGroup;
  };

  it("maxWaitSeconds with a RING_GROUP timeoutDestination: the engine rings the group by its strategy (SEQUENTIAL: the first member, then the next after ringSeconds), the one who answers talks with the caller; every leg shares the caller's linked_id", async () => {
    const { tenant, queue, callerPhone, callerNumber } = await queueWithAgents("RING_ALL", 0);
    const [first, second] = [await createExtension(ts, tenant.id), await createExtension(ts, tenant.id)];
    const [firstPhone, secondPhone] = [await phone(tenant.sipDomain, first.extensionNumber), await phone(tenant.sipDomain, second.extensionNumber)];
    // the first member lets it ring (the group's 5 s end it first), the second answers
    firstPhone.incoming = { answer: true, toneHz: 1400, afterMs: 15_000 };
    secondPhone.incoming = { answer: true, toneHz: 1600 };
    for (const p of [firstPhone, secondPhone]) expect(await p.register()).toBe(200);
    await ringGroup(tenant.id, "760", "SEQUENTIAL", [first.id, second.id]);
    await setTimeoutDestination(queue.id, { type: "RING_GROUP", target: "760" });
    const call = await callerPhone.call(queue.number, { toneHz: 1000 });
    expect(call.status).toBe(200);
    await waitFor("the first member to ring", () => firstPhone.invites.length === 1 || undefined, 30_000);
    const answered = await secondPhone.nextAnswered(40_000);
    // in turn: the second rang once the first had stopped, and the first was not rung again
    expect(firstPhone.invites.length).toBe(1);
    // the caller's number and name reach the member, as the agents' offers do
    expect(String(secondPhone.invites[0].headers.from?.uri)).toContain(`sip:${callerNumber}@${tenant.sipDomain}`);
    await waitFor("the caller to hear the member (1.6 kHz)", () => blocksWithTone(call.heard, 1600) >= 5, 20_000);
    await waitFor("the member to hear the caller (1 kHz)", () => blocksWithTone(answered.heard, 1000) >= 5, 20_000);
    await call.hangup();
    await answered.waitEnded();
    const callId = call.dialog!.callId;
    const legs = await waitFor("the caller's and both members' legs", async () => {
      const rows = await sql(`SELECT extension_number AS "number", disposition, queue_id AS "queueId" FROM cdr WHERE linked_id = $1 ORDER BY extension_number`, [callId]);
      return rows.length === 3 ? rows : undefined;
    });
    expect(legs).toEqual(
      expect.arrayContaining([
        { number: callerNumber, disposition: "answered", queueId: Number(queue.id) },
        { number: first.extensionNumber, disposition: "no_answer", queueId: null },
        { number: second.extensionNumber, disposition: "answered", queueId: null },
      ]),
    );
    // sent on by the wait limit: no abandon
    const [passage] = await sql(`SELECT abandoned_at IS NULL AS "notAbandoned" FROM queue_call WHERE call_id = $1`, [callId]);
    expect(passage).toEqual({ notAbandoned: true });
  }, 120_000);

  it("a caller who hangs up while the timeout destination's group rings: the member stops ringing (its leg no_answer) and the caller has not abandoned", async () => {
    const { tenant, queue, callerPhone } = await queueWithAgents("RING_ALL", 0);
    const member = await createExtension(ts, tenant.id);
    const memberPhone = await phone(tenant.sipDomain, member.extensionNumber);
    memberPhone.incoming = { answer: true, toneHz: 1600, afterMs: 15_000 };
    expect(await memberPhone.register()).toBe(200);
    await ringGroup(tenant.id, "763", "SIMULTANEOUS", [member.id]);
    await setTimeoutDestination(queue.id, { type: "RING_GROUP", target: "763" });
    const call = await callerPhone.call(queue.number, { toneHz: 1000 });
    await waitFor("the member to ring", () => memberPhone.invites.length === 1 || undefined, 30_000);
    await call.hangup();
    const callId = call.dialog!.callId;
    const [leg] = await waitFor("the member's leg", async () => {
      const rows = await sql(`SELECT disposition, hangup_cause AS "cause" FROM cdr WHERE linked_id = $1 AND extension_number = $2`, [callId, member.extensionNumber]);
      return rows.length ? rows : undefined;
    });
    expect(leg).toEqual({ disposition: "no_answer", cause: "sip_487" });
    await waitFor("the media application to be done with the call", () => media.app.calls() === 0 || undefined);
    expect(memberPhone.calls.size).toBe(0);
    const [passage] = await sql(`SELECT abandoned_at IS NULL AS "notAbandoned" FROM queue_call WHERE call_id = $1`, [callId]);
    expect(passage).toEqual({ notAbandoned: true });
  }, 90_000);

  it("a RING_GROUP timeoutDestination nobody answers: the group's voicemail fallback (from its failure route) takes the message on the caller's own call", async () => {
    const { tenant, queue, callerPhone } = await queueWithAgents("RING_ALL", 0);
    const mailbox = await createExtension(ts, tenant.id, { voicemailEnabled: true });
    const [ringing, away] = [await createExtension(ts, tenant.id), await createExtension(ts, tenant.id)];
    // one member rings past the group's 5 s, the other has nothing registered (skipped)
    const ringingPhone = await phone(tenant.sipDomain, ringing.extensionNumber);
    ringingPhone.incoming = { answer: true, toneHz: 1600, afterMs: 15_000 };
    expect(await ringingPhone.register()).toBe(200);
    await ringGroup(tenant.id, "761", "SIMULTANEOUS", [ringing.id, away.id], { type: "VOICEMAIL", target: mailbox.extensionNumber });
    await setTimeoutDestination(queue.id, { type: "RING_GROUP", target: "761" });
    const call = await callerPhone.call(queue.number, { toneHz: 1000 });
    await waitFor("the voicemail beep after the wait limit", () => blocksWithTone(call.heard, 1200) >= 2, 40_000);
    const started = Date.now();
    await waitFor("3 s of message", () => Date.now() - started >= 3000, 10_000, 100);
    await call.hangup();
    const [message] = await waitFor("the message", async () => {
      const rows = await sql(`SELECT call_id AS "callId" FROM voicemail_message WHERE extension_id = $1`, [Number(mailbox.id)]);
      return rows.length ? rows : undefined;
    });
    expect(message).toEqual({ callId: call.dialog!.callId });
    expect(ringingPhone.invites.length).toBe(1);
  }, 90_000);

  it("maxWaitSeconds with an EXTERNAL timeoutDestination: out through the tenant's outbound route as the tenant (caller ID, Diversion naming the queue); caller and carrier hear each other", async () => {
    const { tenant, queue, callerPhone } = await queueWithAgents("RING_ALL", 0);
    // the carrier: a phone answering on its own loopback address, as a trunk's host
    const carrier = await TestPhone.start({ proxy: { host: "127.0.0.1", port: kamailio.port }, user: "carrier", domain: "carrier.invalid", address: CARRIER });
    phones.push(carrier);
    carrier.incoming = { answer: true, toneHz: 1600 };
    const did = `+4420${String(Date.now() % 10_000_000).padStart(7, "0")}`;
    await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: tenant.id, number: did } });
    await ts.ok(UpdateTenantDocument, { id: tenant.id, input: { defaultCallerIdNumber: did } });
    const { createTrunk } = await ts.ok(CreateTrunkDocument, { input: { tenantId: tenant.id, name: "Carrier", host: CARRIER, port: carrier.port, inboundAddresses: [`${CARRIER}/32`] } });
    await ts.ok(CreateOutboundRouteDocument, {
      input: { tenantId: tenant.id, name: "UK national", priority: 10, match: "^\\+44([1-9][0-9]{8,9})$", transform: "+44\\1", callClass: "NATIONAL" as never, trunkIds: [createTrunk.id] },
    });
    await setTimeoutDestination(queue.id, { type: "EXTERNAL", target: "+442071234567" });
    const call = await callerPhone.call(queue.number, { toneHz: 1000 });
    expect(call.status).toBe(200);
    const answered = await carrier.nextAnswered(40_000);
    const invite = carrier.invites[0];
    expect(invite.uri).toMatch(/^sip:\+442071234567@127\.0\.0\.75/);
    expect(String(invite.headers.from?.uri)).toBe(`sip:${did}@${tenant.sipDomain}`);
    expect(invite.headers["p-asserted-identity"]).toBe(`<sip:${did}@${tenant.sipDomain}>`);
    expect(invite.headers.diversion).toBe(`<sip:${queue.number}@${tenant.sipDomain}>;reason=no-answer;counter=1`);
    // nothing of the product's own headers leaves for a carrier
    expect(Object.keys(invite.headers).filter((h) => h.startsWith("x-pbx-"))).toEqual([]);
    await waitFor("the caller to hear the carrier (1.6 kHz)", () => blocksWithTone(call.heard, 1600) >= 5, 20_000);
    await waitFor("the carrier to hear the caller (1 kHz)", () => blocksWithTone(answered.heard, 1000) >= 5, 20_000);
    await call.hangup();
    await answered.waitEnded();
    expect(answered.endedBy).toBe("them");
  }, 90_000);

  it("a carrier's call to a DID whose destination is the queue: the agent's leg, and after the wait limit a ring group member's, are INBOUND with the trunk and both numbers", async () => {
    const { tenant, queue, members } = await queueWithAgents("LINEAR", 1);
    const carrier = await TestPhone.start({ proxy: { host: "127.0.0.1", port: kamailio.port }, user: "+447700900555", domain: "carrier.invalid", address: CARRIER });
    phones.push(carrier);
    const { createTrunk } = await ts.ok(CreateTrunkDocument, { input: { tenantId: tenant.id, name: "Carrier", host: CARRIER, port: carrier.port, inboundAddresses: [`${CARRIER}/32`] } });
    const did = `+4420${String((Date.now() + 1) % 10_000_000).padStart(7, "0")}`;
    await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: tenant.id, number: did, destination: { type: "QUEUE", target: queue.number } as never } });
    const inboundLeg = async (callId: string) =>
      waitFor("the leg's CDR", async () => {
        const rows = await sql(`SELECT direction, trunk_id AS "trunkId", phone_number AS "phoneNumber", external_number AS "externalNumber", caller_number AS "callerNumber", disposition FROM cdr WHERE call_id = $1`, [callId]);
        return rows.length ? rows[0] : undefined;
      });
    const expected = { direction: "inbound", trunkId: Number(createTrunk.id), phoneNumber: did, externalNumber: "+447700900555", callerNumber: "+447700900555", disposition: "answered" };

    const first = await carrier.call(did, { toneHz: 1000 });
    expect(first.status).toBe(200);
    const agentCall = await members[0].phone.nextAnswered();
    await waitFor("the agent to hear the carrier's caller", () => blocksWithTone(agentCall.heard, 1000) >= 3, 20_000);
    await first.hangup();
    await agentCall.waitEnded();
    expect(await inboundLeg(String(members[0].phone.invites[0].headers["call-id"]))).toEqual(expected);

    // nobody left to take it: the wait limit sends it to a ring group, whose member's leg is the carrier's call too
    await gql(`mutation($id: ID!) { updateQueueAgent(id: $id, paused: true) { id } }`, { id: members[0].agentId });
    const member = await createExtension(ts, tenant.id);
    const memberPhone = await phone(tenant.sipDomain, member.extensionNumber);
    memberPhone.incoming = { answer: true, toneHz: 1600 };
    expect(await memberPhone.register()).toBe(200);
    await ringGroup(tenant.id, "762", "SIMULTANEOUS", [member.id]);
    await setTimeoutDestination(queue.id, { type: "RING_GROUP", target: "762" });
    const second = await carrier.call(did, { toneHz: 1000 });
    const memberCall = await memberPhone.nextAnswered(40_000);
    await waitFor("the carrier's caller to hear the member", () => blocksWithTone(second.heard, 1600) >= 3, 20_000);
    await second.hangup();
    await memberCall.waitEnded();
    const leg = await inboundLeg(`${String(memberPhone.invites[0].headers["call-id"])};${member.extensionNumber}`);
    expect(leg).toEqual(expected);
  }, 120_000);

  it("a caller who hangs up while an agent rings: the ring is cancelled, the abandon counts, and nobody is rung again", async () => {
    const { queue, members, callerPhone } = await queueWithAgents("LINEAR", 1);
    members[0].phone.incoming = { answer: true, toneHz: 1600, afterMs: 20_000 };
    const call = await callerPhone.call(queue.number, { toneHz: 1000 });
    await waitFor("the agent to ring", () => members[0].phone.invites.length === 1 || undefined, 20_000);
    await call.hangup();
    await waitFor("the abandon", async () => (await sql(`SELECT 1 FROM queue_call WHERE call_id = $1 AND abandoned_at IS NOT NULL`, [call.dialog!.callId])).length > 0 || undefined);
    await waitFor("the media application to be done with the call", () => media.app.calls() === 0 || undefined);
    expect(members[0].phone.invites.length).toBe(1);
  }, 90_000);
});
