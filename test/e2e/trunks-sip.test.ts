import {
  AddRingGroupMemberDocument,
  CdrsDocument,
  CreateExtensionDocument,
  CreateOutboundRouteDocument,
  CreatePhoneNumberDocument,
  CreateRingGroupDocument,
  CreateTrunkDocument,
  UpdateCallHandlingDocument,
  UpdateOutboundRouteDocument,
  UpdatePhoneNumberDocument,
  UpdateTenantDocument,
} from "../graphql/generated";
import { SIPP, header, sippCall, startSippServer, type SippServer } from "../support/carriers";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { answerCall, createEngineRole, startKamailio, startPhone, waitFor, type EngineRole, type Kamailio } from "../support/sip";

/**
 * Contract §11 through the shipped Kamailio with real SIP peers on loopback (research §7.6):
 * SIPp carriers (one answering, one answering 503) on 127.0.0.1, phones calling out from
 * 127.0.0.3 (a carrier's address is trusted as a carrier, so phones may not share it), an
 * untrusted source on 127.0.0.2, a baresip phone answering inbound calls. Everything provisioned
 * over GraphQL; every call checked in the product's CDRs.
 */
const real = requireReal("postgres") && requireReal("redis");
const suite = real ? describe : describe.skip;
const PHONES = "127.0.0.3";
const UNTRUSTED = "127.0.0.2";

suite("calls to and from carriers through the shipped Kamailio", () => {
  let ts: TestServer;
  let role: EngineRole;
  let kamailio: Kamailio;
  let answering: SippServer;
  let refusing: SippServer;
  let tenant: { id: string; sipDomain: string };
  let did: string;
  let didId: string;
  let national: { id: string };
  let trunkA: { id: string };
  let trunkB: { id: string };
  const extensionIds = new Map<string, string>();
  let seq = 0;
  const uniqDid = () => `+4420${String(Date.now() % 100_000).padStart(5, "0")}${String(++seq).padStart(3, "0")}`;

  beforeAll(async () => {
    ts = await startTestServer();
    role = await createEngineRole(databaseUrl()!, ts.schema);
    [answering, refusing] = await Promise.all([startSippServer(SIPP.carrierAnswers), startSippServer(SIPP.carrier503)]);
    kamailio = await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: `${ts.redisPrefix}pbx:events` });
    tenant = await createTenant(ts);
    for (const [number, classes] of [["1001", undefined], ["1002", ["NATIONAL"]]] as const) {
      const { createExtension } = await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: number, secret: `secret-${number}-long`, ...(classes ? { allowedCallClasses: [...classes] } : {}) } });
      extensionIds.set(number, createExtension.id);
    }
    did = uniqDid();
    const { createPhoneNumber } = await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: tenant.id, number: did, destination: { type: "EXTENSION", target: "1001" } } });
    didId = createPhoneNumber.id;
    await ts.ok(UpdateTenantDocument, { id: tenant.id, input: { defaultCallerIdNumber: did } });
    const trunk = async (name: string, carrier: SippServer) =>
      (await ts.ok(CreateTrunkDocument, { input: { name, host: carrier.ip, port: carrier.port, inboundAddresses: [`${carrier.ip}/32`] } })).createTrunk;
    const [a, b] = [await trunk("Carrier A", answering), await trunk("Carrier B (503)", refusing)];
    [trunkA, trunkB] = [a, b];
    const route = (name: string, priority: number, match: string, transform: string, callClass: string, trunkIds: string[]) =>
      ts.ok(CreateOutboundRouteDocument, { input: { tenantId: tenant.id, name, priority, match, transform, callClass: callClass as never, trunkIds } });
    national = (await route("National", 10, "^0([1-9][0-9]{8,9})$", "+44\\1", "NATIONAL", [b.id, a.id])).createOutboundRoute;
    await route("International", 20, "^00([1-9][0-9]{6,14})$", "+\\1", "INTERNATIONAL", [a.id]);
    await route("Emergency", 1, "^(112|999)$", "\\1", "EMERGENCY", [a.id]);
  }, 60_000);

  afterAll(async () => {
    const logged = kamailio?.output() ?? "";
    await kamailio?.stop();
    await Promise.all([answering?.stop(), refusing?.stop()]);
    await role?.drop();
    await ts?.stop();
    expect(logged).not.toMatch(/\b(ERROR|CRITICAL):/);
  });

  // the engine takes a digest only when its uri names the dialled number (routes/auth.cfg); SIPp's
  // default uri is the proxy's address, so each call names it
  const authUri = (dialled: string) => ["-auth_uri", `${dialled}@${tenant.sipDomain}`];
  const call = (from: string, dialled: string, holdMs = 300) =>
    sippCall(`127.0.0.1:${kamailio.port}`, SIPP.phoneCall, [from, tenant.sipDomain, `[authentication username=${from} password=secret-${from}-long]`, dialled, String(holdMs)], PHONES, 20, authUri(dialled));
  type CdrNode = Awaited<ReturnType<typeof ts.ok<import("../graphql/generated").CdrsQuery, import("../graphql/generated").CdrsQueryVariables>>>["cdrs"]["nodes"][number];
  const cdrsOf = async (predicate: (c: CdrNode) => boolean, count = 1): Promise<CdrNode[]> =>
    waitFor("the call's CDRs", async () => {
      const { cdrs } = await ts.ok(CdrsDocument, { tenantId: tenant.id, filter: {}, first: 100 });
      const found = cdrs.nodes.filter(predicate);
      return found.length >= count ? found : undefined;
    });

  it("a national number goes out transformed to E.164 with the tenant's caller ID, failing over from the 503 carrier to the next trunk", async () => {
    const before = answering.invites().length;
    const refusedBefore = refusing.invites().length;
    const r = await call("1001", "02071234567");
    expect([r.status, r.stderr]).toEqual([200, r.stderr]);
    expect(refusing.invites().length).toBe(refusedBefore + 1);
    const invite = answering.invites()[before];
    expect(invite.split("\r\n")[0] ?? invite.split("\n")[0]).toMatch(/^INVITE sip:\+442071234567@127\.0\.0\.1:\d+ SIP\/2\.0/);
    expect(header(invite, "From")).toContain(`sip:${did}@${tenant.sipDomain}`);
    expect(header(invite, "P-Asserted-Identity")).toBe(`<sip:${did}@${tenant.sipDomain}>`);
    const [cdr] = await cdrsOf((c) => c.direction === "OUTBOUND" && c.calleeNumber === "+442071234567");
    // The leg went out through Carrier A (after B refused): the CDR names the trunk that carried it.
    expect(cdr).toMatchObject({
      extensionNumber: "1001",
      callerNumber: "1001",
      disposition: "ANSWERED",
      phoneNumber: did,
      externalNumber: "+442071234567",
      trunk: { id: trunkA.id, name: "Carrier A" },
    });
    const byTrunk = await ts.ok(CdrsDocument, { tenantId: tenant.id, filter: { trunkId: trunkA.id, phoneNumber: did } });
    expect(byTrunk.cdrs.nodes.map((c) => c.id)).toContain(cdr.id);
    expect((await ts.ok(CdrsDocument, { tenantId: tenant.id, filter: { trunkId: trunkB.id } })).cdrs.nodes).toEqual([]);
  });

  it("a class the extension may not use never reaches a carrier (403); an emergency number from the same restricted extension goes out", async () => {
    const invites = answering.invites().length + refusing.invites().length;
    const refused = await call("1002", "0033123456789");
    expect(refused.status).toBe(403);
    expect(answering.invites().length + refusing.invites().length).toBe(invites);
    const sos = await call("1002", "112");
    expect(sos.status).toBe(200);
    expect(answering.invites().at(-1)).toMatch(/^INVITE sip:112@127\.0\.0\.1:\d+ /);
  });

  it("a carrier's call to the DID rings the extension, with and without +; an unknown number 404; an untrusted source 403", async () => {
    const phone = await startPhone(kamailio.port, "1001", tenant.sipDomain, "secret-1001-long", "Reception");
    try {
      for (const dialled of [did, did.slice(1)]) {
        const pending = sippCall(`127.0.0.1:${kamailio.port}`, SIPP.carrierCalls, [dialled, "+447700900123", "300"], answering.ip);
        await waitFor("the phone to ring", () => (phone.output().match(/Incoming call/g)?.length ?? 0) >= (dialled === did ? 1 : 2) || undefined);
        await answerCall(phone);
        const r = await pending;
        expect([dialled, r.status]).toEqual([dialled, 200]);
      }
      const unknown = await sippCall(`127.0.0.1:${kamailio.port}`, SIPP.carrierCalls, ["+442079999999", "+447700900123", "0"], answering.ip);
      expect(unknown.status).toBe(404);
      const untrusted = await sippCall(`127.0.0.1:${kamailio.port}`, SIPP.carrierCalls, [did, "+447700900123", "0"], UNTRUSTED);
      const untrustedUnknown = await sippCall(`127.0.0.1:${kamailio.port}`, SIPP.carrierCalls, ["+442079999999", "+447700900123", "0"], UNTRUSTED);
      expect([untrusted.status, untrustedUnknown.status]).toEqual([403, 403]);
      const legs = await cdrsOf((c) => c.direction === "INBOUND", 2);
      for (const leg of legs) {
        expect(leg).toMatchObject({
          extensionNumber: "1001",
          callerNumber: "+447700900123",
          calleeNumber: did,
          disposition: "ANSWERED",
          phoneNumber: did,
          externalNumber: "+447700900123",
          trunk: { id: trunkA.id },
        });
      }
    } finally {
      await phone.stop();
    }
  }, 60_000);

  it("a carrier's call to a DID follows the tenant's call handling: an extension's forward, a ring group, DND", async () => {
    const ext = async (n: string) => (await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: n, secret: `secret-${n}-long` } })).createExtension;
    const [forwarding, dnd] = [await ext("1003"), await ext("1004")];
    await ts.ok(UpdateCallHandlingDocument, { extensionId: forwarding.id, input: { forwardAlways: { type: "EXTENSION", target: "1001" } } as never });
    await ts.ok(UpdateCallHandlingDocument, { extensionId: dnd.id, input: { doNotDisturb: true } as never });
    const { createRingGroup } = await ts.ok(CreateRingGroupDocument, { input: { tenantId: tenant.id, name: "Sales", number: "1600", ringSeconds: 20 } });
    await ts.ok(AddRingGroupMemberDocument, { ringGroupId: createRingGroup.id, extensionId: extensionIds.get("1001")! });
    const numbers = { forward: uniqDid(), group: uniqDid(), dnd: uniqDid() };
    for (const [number, destination] of [[numbers.forward, { type: "EXTENSION", target: "1003" }], [numbers.group, { type: "RING_GROUP", target: "1600" }], [numbers.dnd, { type: "EXTENSION", target: "1004" }]] as const) {
      await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: tenant.id, number, destination: destination as never } });
    }
    const phone = await startPhone(kamailio.port, "1001", tenant.sipDomain, "secret-1001-long", "Reception");
    try {
      let rung = 0;
      for (const dialled of [numbers.forward, numbers.group]) {
        const pending = sippCall(`127.0.0.1:${kamailio.port}`, SIPP.carrierCalls, [dialled, "+447700900124", "300"], answering.ip);
        await waitFor("1001 to ring", () => (phone.output().match(/Incoming call/g)?.length ?? 0) > rung || undefined);
        rung += 1;
        await answerCall(phone);
        expect([dialled, (await pending).status]).toEqual([dialled, 200]);
        const [leg] = await cdrsOf((c) => c.direction === "INBOUND" && c.phoneNumber === dialled);
        expect(leg).toMatchObject({
          extensionNumber: "1001",
          callerNumber: "+447700900124",
          calleeNumber: dialled,
          disposition: "ANSWERED",
          externalNumber: "+447700900124",
          trunk: { id: trunkA.id },
        });
        // the leg of the extension that rang, in the call the carrier made
        expect(leg.callId).toBe(`${leg.linkedId};1001`);
      }
      // DND on the DID's extension: the carrier gets busy, nothing rings
      const busy = await sippCall(`127.0.0.1:${kamailio.port}`, SIPP.carrierCalls, [numbers.dnd, "+447700900124", "0"], answering.ip);
      expect(busy.status).toBe(486);
      expect(phone.output().match(/Incoming call/g)?.length ?? 0).toBe(rung);
    } finally {
      await phone.stop();
    }
  }, 90_000);

  it("caps hold with concurrent calls: the tenant's maxOutboundCalls refuses one more (503), a full trunk hands the call to the next", async () => {
    const [first, second] = await Promise.all([startSippServer(SIPP.carrierAnswers), startSippServer(SIPP.carrierAnswers)]);
    try {
      const mk = async (name: string, carrier: SippServer, maxChannels: number | null) =>
        (await ts.ok(CreateTrunkDocument, { input: { tenantId: tenant.id, name, host: carrier.ip, port: carrier.port, inboundAddresses: [], maxChannels } })).createTrunk;
      const [full, spare] = [await mk("Small", first, 1), await mk("Spare", second, null)];
      await ts.ok(CreateOutboundRouteDocument, {
        input: { tenantId: tenant.id, name: "Caps", priority: 5, match: "^09([0-9]{9})$", transform: "+449\\1", callClass: "NATIONAL", trunkIds: [full.id, spare.id] },
      });
      const held = (dialled: string) =>
        sippCall(`127.0.0.1:${kamailio.port}`, SIPP.phoneCallHold, ["1001", tenant.sipDomain, "[authentication username=1001 password=secret-1001-long]", dialled], PHONES, 20, authUri(dialled));

      // Trunk cap: the first call holds the small trunk's one channel, the second goes to the spare.
      const one = held("09111111111");
      await waitFor("the first call on the small trunk", () => first.invites().length === 1 || undefined);
      const two = await call("1001", "09222222222");
      expect(two.status).toBe(200);
      expect(second.invites().length).toBe(1);
      expect(first.invites().length).toBe(1);
      expect((await one).status).toBe(200);

      // Tenant cap: with maxOutboundCalls 1, a second call while one is up is refused and reaches no carrier.
      await ts.ok(UpdateTenantDocument, { id: tenant.id, input: { maxOutboundCalls: 1 } });
      const three = held("09333333333");
      await waitFor("the held call to reach a carrier", () => first.invites().length + second.invites().length === 3 || undefined);
      const four = await call("1001", "09444444444");
      expect(four.status).toBe(503);
      expect(first.invites().length + second.invites().length).toBe(3);
      expect((await three).status).toBe(200);
      // Once it has ended, calls go out again.
      expect((await call("1001", "09555555555")).status).toBe(200);
    } finally {
      await ts.ok(UpdateTenantDocument, { id: tenant.id, input: { maxOutboundCalls: 10 } });
      await Promise.all([first.stop(), second.stop()]);
    }
  }, 60_000);

  it("a change over GraphQL applies to the next call within 2 s, without a restart", async () => {
    // Point the DID at HANGUP: the next carrier call is declined.
    await ts.ok(UpdatePhoneNumberDocument, { id: didId, input: { destination: { type: "HANGUP" } } });
    const changed = Date.now();
    await waitFor("the next call to see the change", async () => {
      const r = await sippCall(`127.0.0.1:${kamailio.port}`, SIPP.carrierCalls, [did, "+447700900123", "0"], answering.ip);
      return r.status === 603 || undefined;
    }, 5_000, 100);
    expect(Date.now() - changed).toBeLessThan(2_000);
    // A disabled route: national calls no longer go out.
    await ts.ok(UpdateOutboundRouteDocument, { id: national.id, input: { enabled: false } });
    expect((await call("1001", "02071234567")).status).toBe(404);
    await ts.ok(UpdateOutboundRouteDocument, { id: national.id, input: { enabled: true } });
    await ts.ok(UpdatePhoneNumberDocument, { id: didId, input: { destination: { type: "EXTENSION", target: "1001" } } });
  });
});
