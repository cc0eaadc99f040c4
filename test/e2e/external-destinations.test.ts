import {
  CdrsDocument,
  CreateExtensionDocument,
  CreateOutboundRouteDocument,
  CreatePhoneNumberDocument,
  CreateRingGroupDocument,
  CreateTrunkDocument,
  ExtensionDevicesDocument,
  UpdateCallHandlingDocument,
  UpdateExtensionDocument,
  UpdateTenantDocument,
} from "../graphql/generated";
import { SIPP, header, sippCall, startSippServer, type SippServer } from "../support/carriers";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { createEngineRole, startKamailio, startPhone, waitFor, type EngineRole, type Kamailio, type Phone } from "../support/sip";

/**
 * EXTERNAL destinations (contracts §11 and §12) through the shipped Kamailio: an extension's
 * forward (always, and on busy from the failure route), a phone number's destination and a ring
 * group's fallback go out through the tenant's outbound routes and trunks to a SIPp carrier on
 * 127.0.0.70 (failing over from a 503 carrier on 127.0.0.71), with the forwarding extension's call
 * classes and caller ID or the tenant's; refusals (a class not allowed, the tenant's cap, a loop)
 * reach no carrier. Every leg checked in the product's CDRs.
 */
const real = requireReal("postgres") && requireReal("redis");
const suite = real ? describe : describe.skip;
const CARRIER = "127.0.0.70";
const CARRIER_503 = "127.0.0.71";

suite("EXTERNAL destinations through the outbound routes of the shipped Kamailio", () => {
  let ts: TestServer;
  let role: EngineRole;
  let kamailio: Kamailio;
  let answering: SippServer;
  let refusing: SippServer;
  let tenant: { id: string; sipDomain: string };
  let trunkA: { id: string };
  let seq = 0;
  const uniqDid = () => `+4420${String(Date.now() % 100_000).padStart(5, "0")}${String(++seq).padStart(3, "0")}`;
  const tenantNumber = uniqDid();
  const extNumber = uniqDid();
  const ids = new Map<string, string>();
  const phones: Phone[] = [];

  beforeAll(async () => {
    ts = await startTestServer();
    role = await createEngineRole(databaseUrl()!, ts.schema);
    [answering, refusing] = await Promise.all([startSippServer(SIPP.carrierAnswers, CARRIER), startSippServer(SIPP.carrier503, CARRIER_503)]);
    kamailio = await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: `${ts.redisPrefix}pbx:events` });
    tenant = await createTenant(ts);
    for (const number of [tenantNumber, extNumber]) await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: tenant.id, number } });
    await ts.ok(UpdateTenantDocument, { id: tenant.id, input: { defaultCallerIdNumber: tenantNumber } });
    // 7001 forwards with its own caller ID; 7003 may call national numbers only; 7004 has a phone
    for (const [n, extra] of [
      ["7001", { callerIdNumber: extNumber }],
      ["7002", {}],
      ["7003", { allowedCallClasses: ["NATIONAL"] }],
      ["7004", {}],
    ] as const) {
      const { createExtension } = await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: n, secret: `secret-${n}-ext`, ...extra } as never });
      ids.set(n, createExtension.id);
    }
    const trunk = async (name: string, carrier: SippServer) =>
      (await ts.ok(CreateTrunkDocument, { input: { tenantId: tenant.id, name, host: carrier.ip, port: carrier.port, inboundAddresses: [`${carrier.ip}/32`] } })).createTrunk;
    const b = await trunk("Carrier B (503)", refusing);
    trunkA = await trunk("Carrier A", answering);
    // EXTERNAL targets are E.164: the routes that match them are written for "+"
    const route = (name: string, priority: number, match: string, transform: string, callClass: string, trunkIds: string[]) =>
      ts.ok(CreateOutboundRouteDocument, { input: { tenantId: tenant.id, name, priority, match, transform, callClass: callClass as never, trunkIds } });
    await route("UK mobile", 5, "^\\+447([0-9]{9})$", "+447\\1", "MOBILE", [trunkA.id]);
    await route("UK national", 10, "^\\+44([1-9][0-9]{8,9})$", "+44\\1", "NATIONAL", [b.id, trunkA.id]);
    await route("International", 20, "^\\+([1-9][0-9]{6,14})$", "+\\1", "INTERNATIONAL", [trunkA.id]);
    phones.push(await startPhone(kamailio.port, "7004", tenant.sipDomain, "secret-7004-ext", "Ext 7004"));
    await waitFor("7004 registered in the product", async () => (await ts.ok(ExtensionDevicesDocument, { id: ids.get("7004")! })).extension?.registered || undefined, 20_000);
  }, 90_000);

  afterAll(async () => {
    for (const phone of phones) await phone.stop();
    const logged = kamailio?.output() ?? "";
    await kamailio?.stop();
    await Promise.all([answering?.stop(), refusing?.stop()]);
    await role?.drop();
    await ts?.stop();
    expect(logged).not.toMatch(/\b(ERROR|CRITICAL):/);
  });

  const handle = (n: string, input: Record<string, unknown>) => ts.ok(UpdateCallHandlingDocument, { extensionId: ids.get(n)!, input: input as never });
  const external = (target: string) => ({ type: "EXTERNAL", target });
  const call = (from: string, dialled: string, holdMs = 300) =>
    sippCall(`127.0.0.1:${kamailio.port}`, SIPP.phoneCall, [from, tenant.sipDomain, `[authentication username=${from} password=secret-${from}-ext]`, dialled, String(holdMs)], "127.0.0.1", 20, [
      "-auth_uri",
      `${dialled}@${tenant.sipDomain}`,
    ]);
  const carrierCall = (dialled: string, caller: string) => sippCall(`127.0.0.1:${kamailio.port}`, SIPP.carrierCalls, [dialled, caller, "300"], CARRIER);
  const carrierInvites = () => answering.invites().length + refusing.invites().length;
  type CdrNode = Awaited<ReturnType<typeof ts.ok<import("../graphql/generated").CdrsQuery, import("../graphql/generated").CdrsQueryVariables>>>["cdrs"]["nodes"][number];
  /** Every CDR leg of the call (linked_id) that `first` picks, once `count` exist. */
  const legsOf = async (first: (c: CdrNode) => boolean, count: number): Promise<CdrNode[]> =>
    waitFor(`${count} CDR legs of the call`, async () => {
      const { cdrs } = await ts.ok(CdrsDocument, { tenantId: tenant.id, filter: {}, first: 100 });
      const one = cdrs.nodes.find(first);
      if (!one) return undefined;
      const legs = cdrs.nodes.filter((c) => c.linkedId === one.linkedId);
      return legs.length >= count ? legs : undefined;
    }, 20_000);
  const requestLine = (invite: string) => invite.split(/\r?\n/)[0];

  it("forward always to an E.164 number: the carrier gets it with the forwarding extension's caller ID (after the 503 carrier), both legs share linked_id", async () => {
    await handle("7001", { forwardAlways: external("+442071234567") });
    const [before, refusedBefore] = [answering.invites().length, refusing.invites().length];
    const r = await call("7002", "7001");
    expect([r.status, r.stderr]).toEqual([200, r.stderr]);
    // the national route's first trunk answered 503: the next one took the call
    expect(refusing.invites().length).toBe(refusedBefore + 1);
    const invite = answering.invites()[before];
    expect(requestLine(invite)).toMatch(new RegExp(`^INVITE sip:\\+442071234567@${CARRIER.replace(/\./g, "\\.")}:\\d+ SIP/2\\.0$`));
    expect(header(invite, "From")).toContain(`sip:${extNumber}@${tenant.sipDomain}`);
    expect(header(invite, "P-Asserted-Identity")).toBe(`<sip:${extNumber}@${tenant.sipDomain}>`);
    expect(header(invite, "Diversion")).toBe(`<sip:7001@${tenant.sipDomain}>;reason=unconditional;counter=1`);
    const legs = await legsOf((c) => c.extensionNumber === "7002" && c.calleeNumber === "7001", 2);
    const caller = legs.find((l) => l.extensionNumber === "7002")!;
    const out = legs.find((l) => l.extensionNumber === "7001")!;
    expect(caller).toMatchObject({ direction: "INTERNAL", disposition: "ANSWERED", callId: caller.linkedId });
    expect(out).toMatchObject({
      callId: `${caller.linkedId};7001;external`,
      direction: "OUTBOUND",
      disposition: "ANSWERED",
      callerNumber: "7002",
      calleeNumber: "+442071234567",
      phoneNumber: extNumber,
      externalNumber: "+442071234567",
      trunk: { id: trunkA.id, name: "Carrier A" },
    });
    await handle("7001", { forwardAlways: null });
  }, 60_000);

  it("a forward to a class the extension may not call is refused (403) and reaches no carrier; the tenant's cap refuses one more (503)", async () => {
    await handle("7003", { forwardAlways: external("+33123456789") });
    const invites = carrierInvites();
    const refused = await call("7002", "7003");
    expect(refused.status).toBe(403);
    expect(carrierInvites()).toBe(invites);
    const [leg] = await legsOf((c) => c.extensionNumber === "7002" && c.calleeNumber === "7003", 1);
    expect(leg).toMatchObject({ disposition: "FAILED", hangupCause: "sip_403" });
    // a national number is one of its classes: out it goes, with the tenant's caller ID (7003 has none)
    await handle("7003", { forwardAlways: external("+442071230003") });
    const before = answering.invites().length;
    expect((await call("7002", "7003")).status).toBe(200);
    expect(header(answering.invites()[before], "P-Asserted-Identity")).toBe(`<sip:${tenantNumber}@${tenant.sipDomain}>`);
    // the tenant may have no outbound call at once: refused before any carrier
    await ts.ok(UpdateTenantDocument, { id: tenant.id, input: { maxOutboundCalls: 0 } });
    try {
      const capped = carrierInvites();
      expect((await call("7002", "7003")).status).toBe(503);
      expect(carrierInvites()).toBe(capped);
    } finally {
      await ts.ok(UpdateTenantDocument, { id: tenant.id, input: { maxOutboundCalls: 10 } });
      await handle("7003", { forwardAlways: null });
    }
  }, 60_000);

  it("forward on busy (a phone declining, from the failure route): the carrier gets the call; busy and outbound legs reported", async () => {
    await handle("7004", { forwardBusy: external("+447700900777") });
    const phone = phones[0];
    const before = answering.invites().length;
    const rung = (phone.output().match(/Incoming call/g) ?? []).length;
    const pending = call("7002", "7004", 300);
    await waitFor("7004 to ring", () => (phone.output().match(/Incoming call/g) ?? []).length > rung || undefined);
    await phone.command("/hangup");
    const r = await pending;
    expect([r.status, r.stderr]).toEqual([200, r.stderr]);
    const invite = answering.invites()[before];
    expect(requestLine(invite)).toMatch(/^INVITE sip:\+447700900777@/);
    expect(header(invite, "From")).toContain(`sip:${tenantNumber}@${tenant.sipDomain}`);
    expect(header(invite, "Diversion")).toBe(`<sip:7004@${tenant.sipDomain}>;reason=user-busy;counter=1`);
    // one P-Asserted-Identity only: the extension's branch's identity is not carried over
    expect(invite.match(/^P-Asserted-Identity:/gim)).toHaveLength(1);
    const legs = await legsOf((c) => c.extensionNumber === "7002" && c.calleeNumber === "7004", 3);
    const byCall = Object.fromEntries(legs.map((l) => [l.callId.slice(l.linkedId!.length), [l.extensionNumber, l.direction, l.disposition]]));
    expect(byCall).toEqual({
      "": ["7002", "INTERNAL", "ANSWERED"],
      ";callee": ["7004", "INTERNAL", "BUSY"],
      ";7004;external": ["7004", "OUTBOUND", "ANSWERED"],
    });
    await handle("7004", { forwardBusy: null });
  }, 60_000);

  it("a phone number's EXTERNAL destination: the carrier's call goes back out as the tenant; back to itself is a loop (482); an international one is refused (403)", async () => {
    const forwarded = uniqDid();
    const loop = uniqDid();
    const abroad = uniqDid();
    await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: tenant.id, number: forwarded, destination: external("+442079460000") as never } });
    await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: tenant.id, number: loop, destination: external(loop) as never } });
    await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: tenant.id, number: abroad, destination: external("+33123450000") as never } });
    const before = answering.invites().length;
    const r = await carrierCall(forwarded, "+447700900123");
    expect([r.status, r.stderr]).toEqual([200, r.stderr]);
    const invite = answering.invites().slice(before).find((m) => m.startsWith("INVITE sip:+442079460000@"))!;
    expect(invite).toBeDefined();
    expect(header(invite, "From")).toContain(`sip:${tenantNumber}@${tenant.sipDomain}`);
    expect(header(invite, "P-Asserted-Identity")).toBe(`<sip:${tenantNumber}@${tenant.sipDomain}>`);
    const invites = carrierInvites();
    expect((await carrierCall(loop, "+447700900123")).status).toBe(482);
    expect((await carrierCall(abroad, "+447700900123")).status).toBe(403);
    // only the inbound INVITEs the test's carrier sent: nothing went out
    expect(answering.invites().length + refusing.invites().length).toBe(invites);
  }, 60_000);

  it("a carrier's call to a DID of an extension forwarding always to an E.164 number: straight back out, the extension's outbound leg recorded with both numbers", async () => {
    const did = uniqDid();
    await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: tenant.id, number: did, destination: { type: "EXTENSION", target: "7001" } as never } });
    await handle("7001", { forwardAlways: external("+442071239999") });
    try {
      const before = answering.invites().length;
      const r = await carrierCall(did, "+447700900555");
      expect([r.status, r.stderr]).toEqual([200, r.stderr]);
      const invite = answering.invites().slice(before).find((m) => m.startsWith("INVITE sip:+442071239999@"))!;
      expect(header(invite, "P-Asserted-Identity")).toBe(`<sip:${extNumber}@${tenant.sipDomain}>`);
      const legs = await legsOf((c) => c.externalNumber === "+442071239999" && c.callerNumber === "+447700900555", 1);
      expect(legs.map((l) => [l.extensionNumber, l.direction, l.disposition, l.callId.slice(l.linkedId!.length)])).toEqual([["7001", "OUTBOUND", "ANSWERED", ";7001;external"]]);
    } finally {
      await handle("7001", { forwardAlways: null });
    }
  }, 60_000);

  it("a ring group's EXTERNAL fallback: nobody registered → out through the carrier as the tenant", async () => {
    const { createRingGroup } = await ts.ok(CreateRingGroupDocument, {
      input: { tenantId: tenant.id, name: "After hours", number: "7600", ringSeconds: 5, fallback: external("+442071117600") as never },
    });
    expect(createRingGroup.id).toBeDefined();
    const before = answering.invites().length;
    expect((await call("7002", "7600")).status).toBe(200);
    const invite = answering.invites()[before];
    expect(requestLine(invite)).toMatch(/^INVITE sip:\+442071117600@/);
    expect(header(invite, "P-Asserted-Identity")).toBe(`<sip:${tenantNumber}@${tenant.sipDomain}>`);
    // the caller's leg; the carrier's leg has no extension to belong to (a CDR is an extension's leg)
    const [leg] = await legsOf((c) => c.extensionNumber === "7002" && c.calleeNumber === "7600", 1);
    expect(leg).toMatchObject({ disposition: "ANSWERED" });
  }, 60_000);

  it("an extension's caller ID change applies to the next forwarded call", async () => {
    await handle("7001", { forwardAlways: external("+442071234568") });
    await ts.ok(UpdateExtensionDocument, { id: ids.get("7001")!, input: { callerIdNumber: tenantNumber } as never });
    try {
      const before = answering.invites().length;
      expect((await call("7002", "7001")).status).toBe(200);
      expect(header(answering.invites().slice(before).find((m) => m.startsWith("INVITE "))!, "P-Asserted-Identity")).toBe(`<sip:${tenantNumber}@${tenant.sipDomain}>`);
    } finally {
      await ts.ok(UpdateExtensionDocument, { id: ids.get("7001")!, input: { callerIdNumber: extNumber } as never });
      await handle("7001", { forwardAlways: null });
    }
  }, 60_000);
});
