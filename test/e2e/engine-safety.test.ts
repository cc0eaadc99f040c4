import { Redis } from "ioredis";
import { CreateExtensionDocument, ExtensionDevicesDocument, RegistrationEventsDocument, UpdateCallHandlingDocument } from "../graphql/generated";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { createTenant } from "../support/factories";
import { subscribe } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { digestResponse, registerUa, SipUa, type SipMessage } from "../support/sip-ua";
import { createEngineRole, sipsakRegister, startKamailio, waitFor, type EngineRole, type Kamailio } from "../support/sip";

/**
 * The shipped Kamailio configuration against what a probe did with real SIP (issue 19, items 5–8):
 * captured credentials sent again, caller ID spoofed, a display name too long for the product, and
 * a brute-force lockout that froze calls in progress. A raw UDP user agent (test/support/sip-ua.ts)
 * computes the digests itself, so the tests can capture and alter what a phone sends.
 */
const real = requireReal("postgres") && requireReal("redis");
const suite = real ? describe : describe.skip;

suite("the SIP engine's safety (shipped Kamailio, real SIP)", () => {
  let ts: TestServer;
  let role: EngineRole;
  let kamailio: Kamailio;
  let redis: Redis;
  let domain: string;
  let tenantId: string;
  const uas: SipUa[] = [];

  beforeAll(async () => {
    ts = await startTestServer();
    redis = new Redis(redisUrl()!);
    role = await createEngineRole(databaseUrl()!, ts.schema);
    kamailio = await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: `${ts.redisPrefix}pbx:events` });
    const tenant = await createTenant(ts, { maxExtensions: 100 });
    domain = tenant.sipDomain;
    tenantId = tenant.id;
  }, 30_000);
  afterAll(async () => {
    for (const ua of uas) ua.close();
    const logged = kamailio?.output() ?? "";
    await kamailio?.stop();
    await role?.drop();
    redis?.disconnect();
    await ts?.stop();
    expect(logged).not.toMatch(/\b(ERROR|CRITICAL):/);
  });

  const secretOf = (n: string) => `secret-${n}-safety`;
  const create = async (n: string) =>
    (await ts.ok(CreateExtensionDocument, { input: { tenantId, extensionNumber: n, secret: secretOf(n), displayName: `Ext ${n}` } })).createExtension;
  const devices = async (id: string) => (await ts.ok(ExtensionDevicesDocument, { id })).extension!.devices;
  const query = <T>(sql: string, params: unknown[] = []): Promise<T[]> => ts.server.db.dataSource.query(sql, params);
  const ua = async (port: number, host = "127.0.0.1") => {
    const opened = await SipUa.open(port, host);
    uas.push(opened);
    return opened;
  };
  /** A registered callee: a UA that answers what the test tells it to. */
  const callee = async (port: number, n: string) => {
    const phone = await ua(port);
    expect((await registerUa(phone, n, domain, secretOf(n))).status).toBe(200);
    return phone;
  };
  let calls = 0;
  const invite = (n: string, to: string, extra: string[] = [], display?: string) => ({
    method: "INVITE",
    callId: `safety-${Date.now().toString(36)}-${++calls}`,
    uri: `sip:${to}@${domain}`,
    from: `${display === undefined ? "" : `${display} `}<sip:${n}@${domain}>`,
    to: `<sip:${to}@${domain}>`,
    extra,
    user: n,
    secret: secretOf(n),
  });
  const invited = (phone: SipUa, callId: string) => phone.next(`the INVITE of ${callId}`, (m) => m.method === "INVITE" && m.header("call-id") === callId);
  /** The attacker's copy of a captured request: sent from `from` (its Via), with `edit` applied. */
  const forged = (captured: string, from: SipUa, edit: (text: string) => string = (t) => t) =>
    edit(captured.replace(/^Via: .*$/m, `Via: SIP/2.0/UDP ${from.host}:${from.port};branch=z9hG4bK${Math.random().toString(16).slice(2)};rport`));

  it("a captured REGISTER sent again, from another address with another Contact, is refused; a retransmission still gets its 200; the devices are unchanged", async () => {
    const victim = await create("4001");
    const marker = await create("4002");
    const phone = await ua(kamailio.port);
    const registered = await registerUa(phone, "4001", domain, secretOf("4001"));
    expect(registered.status).toBe(200);
    const contact = `sip:4001@127.0.0.1:${phone.port}`;
    await waitFor("the phone's device in the product", async () => (await devices(victim.id)).length === 1 || undefined);

    // A retransmission (the same message, same branch: its 200 was lost) is answered again by the transaction.
    expect((await phone.request(registered.sent)).status).toBe(200);

    const events = await subscribe(ts, RegistrationEventsDocument, { tenantId }, ts.adminKey);
    try {
      const attacker = await ua(kamailio.port, "127.0.0.2");
      const withAttackerContact = (t: string) => t.replace(/^Contact: .*$/m, `Contact: <sip:4001@127.0.0.2:${attacker.port}>`);
      const replay = await attacker.request(forged(registered.sent, attacker, withAttackerContact));
      expect([401, 403]).toContain(replay.status);
      // Sent again as it was, from the phone's own address (a new branch: not a retransmission).
      const again = await phone.request(forged(registered.sent, phone));
      expect([401, 403]).toContain(again.status);

      // Once a later registration has reached the product, so would anything the replays did.
      expect((await registerUa(await ua(kamailio.port), "4002", domain, secretOf("4002"))).status).toBe(200);
      await events.next((e) => e.registrationEvents.extension.id === marker.id);
      expect(events.received.map((m) => m.data?.registrationEvents.extension.id)).toEqual([marker.id]);
    } finally {
      await events.close();
    }
    expect((await devices(victim.id)).map((d) => d.contactUri)).toEqual([contact]);
  });

  it("a phone may reuse its nonce with a higher nc; once NONCE_EXPIRE has passed it gets stale=true and registers with the new nonce", async () => {
    await create("4011");
    const shortNonces = await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: kamailio.streamKey, defines: ["NONCE_EXPIRE=2"] });
    try {
      const phone = await ua(shortNonces.port);
      const register = { method: "REGISTER", uri: `sip:${domain}`, from: `<sip:4011@${domain}>`, to: `<sip:4011@${domain}>`, contact: `<sip:4011@127.0.0.1:${phone.port}>`, callId: `nc-${Date.now()}`, fromTag: "nc" };
      const first = await phone.authenticated({ ...register, user: "4011", secret: secretOf("4011") });
      expect(first.response.status).toBe(200);
      const issued = Date.now();
      const withNc = (nc: number, cseq: number) =>
        phone.build({ ...register, cseq, extra: [`Authorization: ${digestResponse(first.challenge.header("www-authenticate")!, { method: "REGISTER", uri: register.uri, user: "4011", secret: secretOf("4011"), nc })}`] });
      // Credentials cached by the phone: the same nonce, the next nc (a refresh).
      expect((await phone.request(withNc(2, 3))).status).toBe(200);
      // The nonce's life is time: wait it out, then the phone's next refresh is challenged as stale.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, issued + 3500 - Date.now())));
      const stale = await phone.request(withNc(3, 4));
      expect(stale.status).toBe(401);
      expect(stale.header("www-authenticate")).toMatch(/stale=true/i);
      const again = digestResponse(stale.header("www-authenticate")!, { method: "REGISTER", uri: register.uri, user: "4011", secret: secretOf("4011") });
      expect((await phone.request(phone.build({ ...register, cseq: 5, extra: [`Authorization: ${again}`] }))).status).toBe(200);
      expect(shortNonces.output()).not.toMatch(/\b(ERROR|CRITICAL):/);
    } finally {
      await shortNonces.stop();
    }
  });

  it("an INVITE's credentials are refused for another Request-URI and when sent again: the other extension never rings", async () => {
    await Promise.all(["4101", "4102", "4103"].map(create));
    const target = await callee(kamailio.port, "4103");
    const caller = await ua(kamailio.port);
    // 4102 is not registered: the caller's authenticated INVITE is accepted and answered 480.
    const call = await caller.authenticated(invite("4101", "4102"));
    expect(call.response.status).toBe(480);

    const attacker = await ua(kamailio.port, "127.0.0.2");
    const toOther = (t: string) => t.replace(/^INVITE sip:4102@/m, "INVITE sip:4103@").replace(/^To: <sip:4102@/m, "To: <sip:4103@");
    const redirected = await attacker.request(forged(call.sent, attacker, toOther));
    expect([403, 407]).toContain(redirected.status);
    const replayed = await attacker.request(forged(call.sent, attacker));
    expect([403, 407]).toContain(replayed.status);
    // From the caller's own address too (the nonce is counted, not only bound to an address).
    const fromCaller = await caller.request(forged(call.sent, caller, toOther));
    expect([403, 407]).toContain(fromCaller.status);

    // The same callee is reachable for real (so its silence above means something): it rings, and is busy.
    const genuine = invite("4101", "4103");
    const pending = caller.authenticated(genuine);
    target.reply(await invited(target, genuine.callId), 486, "Busy Here", { toTag: "busy1" });
    expect((await pending).response.status).toBe(486);
    expect(target.messages().filter((m) => m.method === "INVITE").map((m) => m.header("call-id"))).toEqual([genuine.callId]);
  });

  it("removes P-Asserted-Identity, Remote-Party-ID and P-Preferred-Identity from a phone's INVITE and asserts the authenticated extension", async () => {
    await Promise.all(["4201", "4202"].map(create));
    const target = await callee(kamailio.port, "4202");
    const caller = await ua(kamailio.port);
    const spoofed = ["P-Asserted-Identity: \"Bank\" <sip:0800123456@pstn.example>", "Remote-Party-ID: <sip:112@" + domain + ">;party=calling", "P-Preferred-Identity: <sip:4999@" + domain + ">"];

    for (const display of ['"Alice Example"', undefined]) {
      const request = invite("4201", "4202", spoofed, display);
      const pending = caller.authenticated(request);
      const received = await invited(target, request.callId);
      expect(received.headers("p-asserted-identity")).toEqual([`${display ? `${display} ` : ""}<sip:4201@${domain}>`]);
      expect(received.headers("remote-party-id")).toEqual([]);
      expect(received.headers("p-preferred-identity")).toEqual([]);
      expect(received.text).not.toMatch(/0800123456|sip:112@|sip:4999@/);
      target.reply(received, 486, "Busy Here", { toTag: `busy${display ? 1 : 2}` });
      expect((await pending).response.status).toBe(486);
    }
  });

  it("asserts the caller on every branch call handling makes: a forward on busy (a serial fork) carries one P-Asserted-Identity, none of the phone's", async () => {
    const [, first] = await Promise.all(["4211", "4212", "4213"].map(create));
    await ts.ok(UpdateCallHandlingDocument, { extensionId: first.id, input: { forwardBusy: { type: "EXTENSION", target: "4213" } } });
    const busy = await callee(kamailio.port, "4212");
    const next = await callee(kamailio.port, "4213");
    const caller = await ua(kamailio.port);
    const spoofed = ["P-Asserted-Identity: \"Bank\" <sip:0800123456@pstn.example>", "Remote-Party-ID: <sip:112@" + domain + ">;party=calling"];
    const request = invite("4211", "4212", spoofed, '"Alice Example"');
    const pending = caller.authenticated(request);
    const rung = await invited(busy, request.callId);
    expect(rung.headers("p-asserted-identity")).toEqual([`"Alice Example" <sip:4211@${domain}>`]);
    busy.reply(rung, 486, "Busy Here", { toTag: "busy" });
    // the failure route's new branch, towards forwardBusy
    const forwarded = await invited(next, request.callId);
    expect(forwarded.headers("p-asserted-identity")).toEqual([`"Alice Example" <sip:4211@${domain}>`]);
    expect(forwarded.headers("remote-party-id")).toEqual([]);
    expect(forwarded.text).not.toMatch(/0800123456|sip:112@/);
    next.reply(forwarded, 486, "Busy Here", { toTag: "busy2" });
    expect((await pending).response.status).toBe(486);
  });

  it("a call whose caller's display name is 300 characters reaches the product: the engine sends 255 characters, never half of one, and the call has its active legs and CDRs", async () => {
    await Promise.all(["4301", "4302"].map(create));
    const target = await callee(kamailio.port, "4302");
    const caller = await ua(kamailio.port);
    // The 255th character takes three bytes: a cut on bytes would split it.
    const name = `${"D".repeat(254)}\u20ac${"é".repeat(45)}`;
    const expected = `${"D".repeat(254)}\u20ac`;
    const request = invite("4301", "4302", [], `"${name}"`);
    const callId = request.callId;
    const pending = caller.authenticated(request);
    const ringing = await invited(target, callId);
    target.reply(ringing, 200, "OK", { toTag: "answer", contact: `<sip:4302@127.0.0.1:${target.port}>` });
    const { sent, response } = await pending;
    expect(response.status).toBe(200);
    caller.send(caller.inDialog(sent, response, "ACK", 2));

    const legs = () => query<{ callerName: string; callId: string }>(`SELECT caller_name AS "callerName", call_id AS "callId" FROM active_call WHERE call_id LIKE $1 || '%' ORDER BY call_id`, [callId]);
    await waitFor("both legs active", async () => (await legs()).length === 2 || undefined);
    expect((await legs()).map((l) => l.callerName)).toEqual([expected, expected]);

    caller.send(caller.inDialog(sent, response, "BYE", 3));
    const bye = await target.next("the BYE", (m) => m.method === "BYE" && m.header("call-id") === callId);
    target.reply(bye, 200, "OK");
    const cdrs = () => query<{ callerName: string }>(`SELECT caller_name AS "callerName" FROM cdr WHERE linked_id = $1`, [callId]);
    await waitFor("both CDRs", async () => (await cdrs()).length === 2 || undefined);
    expect((await cdrs()).map((c) => c.callerName)).toEqual([expected, expected]);

    // What the engine put on the stream: every event of the call carries the cut name.
    const entries = (await redis.xrange(kamailio.streamKey, "-", "+")) as Array<[string, string[]]>;
    const sentNames = entries.map(([, fields]) => JSON.parse(fields[1])).filter((e) => e.linked_id === callId).map((e) => e.caller_name);
    expect(sentNames.length).toBeGreaterThanOrEqual(6);
    expect(new Set(sentNames)).toEqual(new Set([expected]));
  });

  describe("the brute-force lockout (AUTH_FAIL_LIMIT=3 per address and user, AUTH_FAIL_ADDR_LIMIT=6 per address)", () => {
    let guarded: Kamailio;
    const WINDOW = 3;
    beforeAll(async () => {
      guarded = await startKamailio({
        databaseUrl: role.url,
        redisUrl: redisUrl()!,
        streamKey: kamailio.streamKey,
        defines: ["AUTH_FAIL_LIMIT=3", `AUTH_FAIL_WINDOW=${WINDOW}`, "AUTH_FAIL_ADDR_LIMIT=6", "AUTH_FAIL_ADDR_WINDOW=300"],
      });
    }, 30_000);
    afterAll(async () => {
      const logged = guarded?.output() ?? "";
      await guarded?.stop();
      expect(logged).not.toMatch(/\b(ERROR|CRITICAL):/);
    });

    it("one phone failing at an address locks out only its own extension; the others there register and call, and a call in progress hangs up while the whole address is locked out", async () => {
      await Promise.all(["4401", "4402", "4403", "4404", "4405"].map(create));
      const port = guarded.port;
      const target = await callee(port, "4403");
      const office = await ua(port);

      // A call in progress from 4402 to 4403, answered.
      const request = invite("4402", "4403");
      const callId = request.callId;
      const pending = office.authenticated(request);
      const ringing = await invited(target, callId);
      target.reply(ringing, 200, "OK", { toTag: "inprogress", contact: `<sip:4403@127.0.0.1:${target.port}>` });
      const call = await pending;
      expect(call.response.status).toBe(200);
      office.send(office.inDialog(call.sent, call.response, "ACK", 2));
      await waitFor("the call answered in the product", async () => (await query(`SELECT 1 FROM active_call WHERE linked_id = $1 AND state = 'answered'`, [callId])).length === 2 || undefined);

      // A misconfigured phone for 4401 at the same address: three refusals lock 4401 out there...
      for (const guess of ["guess-1", "guess-2", "guess-3"]) expect((await sipsakRegister(port, "4401", domain, guess)).status).toBe(403);
      const locked = await sipsakRegister(port, "4401", domain, secretOf("4401"));
      const lastAttempt = Date.now();
      expect(locked.status).toBe(403);
      expect(locked.output).not.toMatch(/^SIP\/2\.0 401/m);
      // ...and only 4401: another phone of the office registers and calls.
      expect((await sipsakRegister(port, "4404", domain, secretOf("4404"))).status).toBe(200);
      const another = invite("4402", "4403");
      const second = office.authenticated(another);
      target.reply(await invited(target, another.callId), 486, "Busy Here", { toTag: "busy" });
      expect((await second).response.status).toBe(486);

      // The pair's window is short: once it has passed with no attempt, 4401 with its right secret is welcome.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, lastAttempt + (WINDOW + 1) * 1000 - Date.now())));
      expect((await sipsakRegister(port, "4401", domain, secretOf("4401"))).status).toBe(200);

      // Refusals for other users add up per address: three more lock the whole address out (6).
      for (const guess of ["guess-4", "guess-5", "guess-6"]) expect((await sipsakRegister(port, "4405", domain, guess)).status).toBe(403);
      const addressLocked = await sipsakRegister(port, "4404", domain, secretOf("4404"));
      expect(addressLocked.status).toBe(403);
      expect(addressLocked.output).not.toMatch(/^SIP\/2\.0 401/m);

      // The call in progress still hangs up: a BYE inside a dialog is never locked out.
      office.send(office.inDialog(call.sent, call.response, "BYE", 3));
      const bye = await target.next("the BYE", (m: SipMessage) => m.method === "BYE" && m.header("call-id") === callId);
      target.reply(bye, 200, "OK");
      await office.next("the 200 to the BYE", (m) => m.status === 200 && m.header("cseq") === "3 BYE");
      await waitFor("both legs' CDRs", async () => (await query(`SELECT 1 FROM cdr WHERE linked_id = $1`, [callId])).length === 2 || undefined);
      expect(await query(`SELECT 1 FROM active_call WHERE linked_id = $1`, [callId])).toEqual([]);
      // The other engine keeps its own counts: the address is welcome there.
      expect((await sipsakRegister(kamailio.port, "4404", domain, secretOf("4404"))).status).toBe(200);
    }, 60_000);
  });
});
