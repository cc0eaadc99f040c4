import { Redis } from "ioredis";
import {
  ActiveCallEventsDocument,
  CdrsDocument,
  CreateExtensionDocument,
  ExtensionDevicesDocument,
  ExtensionLiveDocument,
  UpdateCallHandlingDocument,
  UpdateExtensionDocument,
} from "../graphql/generated";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { createTenant } from "../support/factories";
import { subscribe, type LiveSubscription } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { answerCall, createEngineRole, sipsakRegister, sipUnauthenticated, startKamailio, startPhone, waitFor, type EngineRole, type Kamailio, type Phone } from "../support/sip";
import { scrapeMetric } from "../support/wait";

/**
 * Calls through the shipped deploy/kamailio/kamailio.cfg with real phones (baresip, sipsak): who
 * rings, and what the product records of every attempt — a disabled extension, an offline one, an
 * unknown number, a call nobody answers, hold and resume — and the answer to SUBSCRIBE/PUBLISH.
 */
const real = requireReal("postgres") && requireReal("redis");
const suite = real ? describe : describe.skip;

type CallEvents = LiveSubscription<import("../graphql/generated").ActiveCallEventsSubscription>;
type CallEvent = NonNullable<CallEvents["received"][number]["data"]>["activeCallEvents"];

suite("calls through the shipped Kamailio: who rings, and what is recorded", () => {
  let ts: TestServer;
  let role: EngineRole;
  let kamailio: Kamailio;
  let redis: Redis;
  let tenant: { id: string; sipDomain: string };
  let calls: CallEvents;
  const phones: Phone[] = [];

  beforeAll(async () => {
    ts = await startTestServer();
    redis = new Redis(redisUrl()!);
    role = await createEngineRole(databaseUrl()!, ts.schema);
    kamailio = await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: `${ts.redisPrefix}pbx:events` });
    tenant = await createTenant(ts);
    calls = await subscribe(ts, ActiveCallEventsDocument, { tenantId: tenant.id }, ts.adminKey);
  }, 30_000);
  afterEach(async () => {
    for (const phone of phones.splice(0)) await phone.stop();
  });
  afterAll(async () => {
    const logged = kamailio?.output() ?? "";
    await calls?.close();
    await kamailio?.stop();
    await role?.drop();
    redis?.disconnect();
    await ts?.stop();
    // Dropping a stale binding, counting an unrouted call, reading SDP: none of it is an error.
    expect(logged).not.toMatch(/\b(ERROR|CRITICAL):/);
  });

  const create = async (extensionNumber: string, secret: string) =>
    (await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber, secret, displayName: `Ext ${extensionNumber}` } })).createExtension;
  const setStatus = (id: string, status: "ACTIVE" | "DISABLED") => ts.ok(UpdateExtensionDocument, { id, input: { status } });
  const registered = async (id: string) => (await ts.ok(ExtensionDevicesDocument, { id })).extension?.registered;
  const phone = async (number: string, secret: string, name = `Phone ${number}`, engine = kamailio) => {
    const p = await startPhone(engine.port, number, tenant.sipDomain, secret, name);
    phones.push(p);
    return p;
  };
  const unrouted = () => scrapeMetric(ts.server.metricsUrl, "pbx_engine_calls_unrouted_total");
  const cdrsOf = async (number: string) =>
    (await ts.ok(CdrsDocument, { tenantId: tenant.id, filter: { number }, first: 100 })).cdrs.nodes.filter((c) => c.extensionNumber === number || c.calleeNumber === number);
  /** The events of both legs of the one call between `caller` and `callee` of this type, once both are in. */
  const bothLegs = (type: string, caller: string, callee: string, after = 0) =>
    waitFor(`${type} for both legs of ${caller} → ${callee}`, () => {
      const mine = calls.received
        .slice(after)
        .map((m) => m.data?.activeCallEvents)
        .filter((e): e is CallEvent => !!e && e.type === type && e.call.callerNumber === caller && e.call.calleeNumber === callee);
      const legs = [caller, callee].map((n) => mine.find((e) => e.call.extension.extensionNumber === n));
      return legs.every(Boolean) ? (legs as CallEvent[]) : undefined;
    }, 20_000);
  /** The final reply a baresip caller got for its n-th call (counted in its output). */
  const callerSaw = (p: Phone, reply: RegExp, count = 1) =>
    waitFor(`${p.number} to see ${reply} ×${count}`, () => (p.output().match(new RegExp(reply.source, "g"))?.length ?? 0) >= count || undefined, 20_000);

  it("a disabled extension's phone stops ringing at once: refused like an unknown number (404), counted, no CDR; enabled again it is offline until it registers again", async () => {
    const [callee, caller] = await Promise.all([create("5001", "callee-secret-5001"), create("5002", "caller-secret-5002")]);
    const calleePhone = await phone("5001", "callee-secret-5001");
    const callerPhone = await phone("5002", "caller-secret-5002");
    await waitFor("both phones registered in the product", async () => (await registered(callee.id)) && (await registered(caller.id)));

    await setStatus(callee.id, "DISABLED");
    expect(await registered(callee.id)).toBe(false);
    const before = await unrouted();
    const seen = calls.received.length;
    await callerPhone.command("/dial 5001");
    await callerSaw(callerPhone, /404 Not Found/);
    expect(calleePhone.output()).not.toMatch(/Incoming call/);
    expect(await unrouted()).toBe(before + 1);

    // Enabled again: the product says "not registered", and the engine agrees — it dropped the binding
    // when the call found the extension gone, so the phone does not ring; the attempt is a missed call.
    await setStatus(callee.id, "ACTIVE");
    expect(await registered(callee.id)).toBe(false);
    await callerPhone.command("/dial 5001");
    await callerSaw(callerPhone, /480 Temporarily Unavailable/);
    expect(calleePhone.output()).not.toMatch(/Incoming call/);
    const ended = await bothLegs("ENDED", "5002", "5001", seen);
    for (const e of ended) expect(e.cdr).toMatchObject({ disposition: "NO_ANSWER", hangupCause: "sip_480" });
    // Nothing at all was recorded of the call to the disabled extension: the only legs are the missed call's.
    expect((await cdrsOf("5001")).map((c) => c.disposition)).toEqual(["NO_ANSWER", "NO_ANSWER"]);
    expect(await unrouted()).toBe(before + 1);

    // Once the phone registers again, both sides say so, and it rings.
    await phones.splice(phones.indexOf(calleePhone), 1)[0].stop();
    const again = await phone("5001", "callee-secret-5001");
    await waitFor("5001 registered in the product again", () => registered(callee.id));
    const third = calls.received.length;
    await callerPhone.command("/dial 5001");
    await waitFor("5001 to ring", () => /Incoming call/.test(again.output()) || undefined);
    await callerPhone.command("/hangup");
    const last = await bothLegs("ENDED", "5002", "5001", third);
    for (const e of last) expect(e.cdr?.disposition).toBe("NO_ANSWER");
  }, 90_000);

  it("a disabled extension's phone refreshing its registration is refused (403) and loses its binding: enabled again, a call finds it offline (480)", async () => {
    const [refresher] = await Promise.all([create("5003", "refresh-secret-5003"), create("5004", "caller-secret-5004")]);
    expect((await sipsakRegister(kamailio.port, "5003", tenant.sipDomain, "refresh-secret-5003")).status).toBe(200);
    await waitFor("5003 registered in the product", () => registered(refresher.id));
    await setStatus(refresher.id, "DISABLED");
    expect((await sipsakRegister(kamailio.port, "5003", tenant.sipDomain, "refresh-secret-5003")).status).toBe(403);
    await setStatus(refresher.id, "ACTIVE");

    const callerPhone = await phone("5004", "caller-secret-5004");
    const seen = calls.received.length;
    await callerPhone.command("/dial 5003");
    // With the binding kept, Kamailio would relay the INVITE to the silent old contact and the caller
    // would hear nothing until the no-answer timeout.
    await callerSaw(callerPhone, /480 Temporarily Unavailable/);
    expect(await registered(refresher.id)).toBe(false);
    const ended = await bothLegs("ENDED", "5004", "5003", seen);
    for (const e of ended) expect(e.cdr).toMatchObject({ disposition: "NO_ANSWER", hangupCause: "sip_480" });
  }, 60_000);

  it("disabled and enabled again before any call or refresh: the engine drops the old binding on the product's note, so the phone does not ring while the product says it is not registered", async () => {
    const [callee, caller] = await Promise.all([create("5040", "callee-secret-5040"), create("5041", "caller-secret-5041")]);
    const calleePhone = await phone("5040", "callee-secret-5040");
    const callerPhone = await phone("5041", "caller-secret-5041");
    await waitFor("both phones registered in the product", async () => (await registered(callee.id)) && (await registered(caller.id)));
    const note = `${kamailio.streamKey}:unbind:5040@${tenant.sipDomain}`;

    await setStatus(callee.id, "DISABLED");
    await setStatus(callee.id, "ACTIVE");
    expect(await registered(callee.id)).toBe(false);
    // The note is left after the commit, by the event relay.
    await waitFor("the product's note for the engine", async () => (await redis.exists(note)) === 1);
    const ttl = await redis.ttl(note);
    expect(ttl).toBeGreaterThan(3600);

    const seen = calls.received.length;
    await callerPhone.command("/dial 5040");
    await callerSaw(callerPhone, /480 Temporarily Unavailable/);
    expect(calleePhone.output()).not.toMatch(/Incoming call/);
    expect(await redis.exists(note)).toBe(0);
    for (const e of await bothLegs("ENDED", "5041", "5040", seen)) expect(e.cdr).toMatchObject({ disposition: "NO_ANSWER", hangupCause: "sip_480" });
    // Another extension's disable leaves no note for this one, and an update that keeps 5040 active leaves none.
    await ts.ok(UpdateExtensionDocument, { id: callee.id, input: { displayName: "Renamed" } });
    await setStatus(caller.id, "DISABLED");
    await waitFor("the note for 5041", async () => (await redis.exists(`${kamailio.streamKey}:unbind:5041@${tenant.sipDomain}`)) === 1);
    expect(await redis.exists(note)).toBe(0);
  }, 60_000);

  it("every attempt to an existing extension is recorded: offline → both legs start and end NO_ANSWER (sip_480); an unknown number → nothing recorded, counted", async () => {
    await Promise.all([create("5010", "offline-secret-5010"), create("5011", "caller-secret-5011")]);
    const callerPhone = await phone("5011", "caller-secret-5011", "Carol Caller");
    const seen = calls.received.length;
    await callerPhone.command("/dial 5010");
    await callerSaw(callerPhone, /480 Temporarily Unavailable/);
    const started = await bothLegs("STARTED", "5011", "5010", seen);
    const ended = await bothLegs("ENDED", "5011", "5010", seen);
    const linkedId = started[0].call.linkedId;
    expect(started.map((e) => e.call.linkedId)).toEqual([linkedId, linkedId]);
    expect(started[1].call.callId).toBe(`${linkedId};callee`);
    for (const e of ended) expect(e.cdr).toMatchObject({ disposition: "NO_ANSWER", hangupCause: "sip_480", direction: "INTERNAL", billableSeconds: 0 });
    const legs = (await cdrsOf("5010")).filter((c) => c.linkedId === linkedId);
    expect(legs.map((c) => c.extensionNumber).sort()).toEqual(["5010", "5011"]);
    expect(legs.find((c) => c.extensionNumber === "5011")).toMatchObject({ callerName: "Carol Caller", disposition: "NO_ANSWER" });

    const before = await unrouted();
    const counted = Number((await redis.get(`${kamailio.streamKey}:unrouted-calls`)) ?? 0);
    const quiet = calls.received.length;
    await callerPhone.command("/dial 5999");
    await callerSaw(callerPhone, /404 Not Found/);
    expect(Number(await redis.get(`${kamailio.streamKey}:unrouted-calls`))).toBe(counted + 1);
    expect(await unrouted()).toBe(before + 1);
    // A registration after the attempt: once it has reached the product, so would any call event before it.
    const marker = await create("5012", "marker-secret-5012");
    expect((await sipsakRegister(kamailio.port, "5012", tenant.sipDomain, "marker-secret-5012")).status).toBe(200);
    await waitFor("the marker registration in the product", () => registered(marker.id));
    expect(calls.received.slice(quiet).filter((m) => m.data?.activeCallEvents.call.calleeNumber === "5999")).toEqual([]);
    expect(await cdrsOf("5999")).toEqual([]);
  }, 60_000);

  // A call to an extension is handled by the call-handling concern (routes/features.cfg): the
  // extension's ringSeconds (contract §12) governs the ring time, not the NOANSWER_TIMEOUT define
  // (which stays for calls that concern does not handle). With no forward and no voicemail, §12
  // answers the caller 480; the callee's leg records the timeout itself (sip_408).
  it("a call nobody answers ends after the extension's ringSeconds as NO_ANSWER on both legs (the callee's sip_408, the caller told 480), and the phone stops ringing", async () => {
    const [callee] = await Promise.all([create("5020", "ringing-secret-5020"), create("5021", "caller-secret-5021")]);
    await ts.ok(UpdateCallHandlingDocument, { extensionId: callee.id, input: { ringSeconds: 5 } });
    const calleePhone = await phone("5020", "ringing-secret-5020", "Ringing");
    const callerPhone = await phone("5021", "caller-secret-5021", "Caller");
    const seen = calls.received.length;
    await callerPhone.command("/dial 5020");
    await waitFor("5020 to ring", () => /Incoming call/.test(calleePhone.output()) || undefined);
    const rang = Date.now();
    const [callerLeg, calleeLeg] = await bothLegs("ENDED", "5021", "5020", seen);
    expect(Date.now() - rang).toBeGreaterThanOrEqual(4_000);
    expect(calleeLeg.cdr).toMatchObject({ disposition: "NO_ANSWER", hangupCause: "sip_408", billableSeconds: 0 });
    expect(callerLeg.cdr).toMatchObject({ disposition: "NO_ANSWER", hangupCause: "sip_480", billableSeconds: 0 });
    await callerSaw(callerPhone, /480 Temporarily Unavailable/);
    // The callee's phone was told (CANCEL): it is no longer ringing.
    await waitFor("5020 to stop ringing", () => /terminated|closed|cancel/i.test(calleePhone.output().split(/Incoming call/).at(-1)!) || undefined);
  }, 60_000);

  it("hold is reported: the call is HELD on both legs while either party holds it, RESUMED when the last one takes it back", async () => {
    const [alice, bob] = await Promise.all([create("5030", "alice-secret-5030"), create("5031", "bob-secret-5031")]);
    const bobPhone = await phone("5031", "bob-secret-5031", "Bob");
    const alicePhone = await phone("5030", "alice-secret-5030", "Alice");
    await waitFor("both phones registered in the product", async () => (await registered(alice.id)) && (await registered(bob.id)));
    const seen = calls.received.length;
    await alicePhone.command("/dial 5031");
    await waitFor("Bob's phone to ring", () => /Incoming call/.test(bobPhone.output()) || undefined);
    await answerCall(bobPhone);
    const linkedId = (await bothLegs("ANSWERED", "5030", "5031", seen))[0].call.linkedId;
    const states = async () => Promise.all([alice.id, bob.id].map(async (id) => (await ts.ok(ExtensionLiveDocument, { id })).extension?.activeCalls.map((c) => c.state)));
    // What the engine reported of this call, in the stream's order: it adds an event before it relays the
    // re-INVITE, so once a phone has the offer, the event (or its absence) is in the stream.
    const reported = async () =>
      (await redis.xrange(kamailio.streamKey, "-", "+"))
        .map(([, fields]) => JSON.parse(fields[1]) as { action: string; linked_id: string; extension: string })
        .filter((e) => e.linked_id === linkedId && (e.action === "hold" || e.action === "resume"))
        .map((e) => `${e.action} ${e.extension}`);
    const offers = (p: Phone, n: number) => waitFor(`${p.number} to get re-INVITE ×${n}`, () => (p.output().match(/got re-INVITE/g)?.length ?? 0) >= n || undefined);

    await alicePhone.command("/hold");
    await bothLegs("HELD", "5030", "5031", seen);
    expect(await states()).toEqual([["HELD"], ["HELD"]]);
    // Bob holds too, then Alice takes it back: Bob still holds it, so nothing is reported...
    await bobPhone.command("/hold");
    await offers(alicePhone, 1);
    await alicePhone.command("/resume");
    await offers(bobPhone, 2);
    expect(await reported()).toEqual(["hold 5030", "hold 5031"]);
    // ...until Bob takes it back too.
    await bobPhone.command("/resume");
    await bothLegs("RESUMED", "5030", "5031", seen);
    expect(await reported()).toEqual(["hold 5030", "hold 5031", "resume 5030", "resume 5031"]);
    expect(await states()).toEqual([["ANSWERED"], ["ANSWERED"]]);

    await alicePhone.command("/hangup");
    const ended = await bothLegs("ENDED", "5030", "5031", seen);
    for (const e of ended) expect(e.cdr).toMatchObject({ disposition: "ANSWERED" });
  }, 60_000);

  it("SUBSCRIBE and PUBLISH get 489 Bad Event for a package not served, not 405; busy lamps (Event: dialog) are served", async () => {
    const uri = `sip:5001@${tenant.sipDomain}`;
    // dialog is served since busy lamps (routes/presence.cfg, contract §12): challenged like any request
    const lamp = await sipUnauthenticated(kamailio.port, "SUBSCRIBE", uri, uri, ["Event: dialog", "Expires: 600"]);
    expect(lamp.split("\r\n")[0]).toBe("SIP/2.0 407 Proxy Authentication Required");
    for (const [method, event] of [["SUBSCRIBE", "message-summary"], ["SUBSCRIBE", "presence"], ["PUBLISH", "presence"]]) {
      const reply = await sipUnauthenticated(kamailio.port, method, uri, uri, [`Event: ${event}`, "Expires: 600"]);
      expect([method, event, reply.split("\r\n")[0]]).toEqual([method, event, "SIP/2.0 489 Bad Event"]);
      expect(reply).not.toMatch(/^Allow-Events:/m);
    }
    // Methods the engine does not handle at all are still a method error.
    expect((await sipUnauthenticated(kamailio.port, "MESSAGE", uri, uri)).split("\r\n")[0]).toBe("SIP/2.0 405 Method Not Allowed");
  });
});
