import {
  AuditLogDocument,
  CreateExtensionDocument,
  CreateOutboundRouteDocument,
  CreateQueueDocument,
  DeleteQueueDocument,
  UpdateQueueDocument,
  CreatePhoneNumberDocument,
  CreateTrunkDocument,
  DeleteExtensionDocument,
  DeletePhoneNumberDocument,
  DeleteTrunkDocument,
  ExtensionOutboundDocument,
  OutboundRouteDocument,
  PhoneNumberDocument,
  TenantPhoneNumbersDocument,
  TenantTrunksDocument,
  TrunkDocument,
  TrunksDocument,
  UpdateExtensionDocument,
  UpdateOutboundRouteDocument,
  UpdatePhoneNumberDocument,
  UpdateTenantDocument,
  UpdateTrunkDocument,
} from "../graphql/generated";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { startTestServer, type GraphQLResponse, type TestServer } from "../support/server";

/**
 * Contract §11's model over GraphQL: phone numbers, trunks, outbound routes, the extension's and
 * the tenant's outbound settings. Every refusal names its field (or is NOT_FOUND/FORBIDDEN) and
 * changes nothing; another tenant's ids answer as missing; every change is audited.
 */
describe("numbers, trunks and outbound routes (GraphQL)", () => {
  let ts: TestServer;
  let a: Awaited<ReturnType<typeof tenantWithKeys>>;
  let b: Awaited<ReturnType<typeof tenantWithKeys>>;
  let seq = 0;
  const did = () => `+4420${String(Date.now() % 1_000_000).padStart(6, "0")}${String(++seq).padStart(2, "0")}`;

  beforeAll(async () => {
    ts = await startTestServer();
    [a, b] = await Promise.all([tenantWithKeys(ts), tenantWithKeys(ts)]);
  }, 60_000);
  afterAll(() => ts?.stop());

  const code = (r: GraphQLResponse<unknown>) => r.errors?.[0]?.extensions?.code;
  const fields = (r: GraphQLResponse<unknown>) => Object.keys(r.errors?.[0]?.extensions?.fields ?? {});

  describe("phone numbers", () => {
    it("ADMIN assigns a number (default HANGUP); TENANT_ADMIN points it at an extension; the tenant lists it; every change is audited", async () => {
      const ext = await createExtension(ts, a.tenant.id, { extensionNumber: "5101" });
      const number = did();
      const { createPhoneNumber: n } = await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: a.tenant.id, number, label: "Main" } });
      expect(n).toMatchObject({ tenantId: a.tenant.id, number, label: "Main", destination: { type: "HANGUP", target: null } });
      const { updatePhoneNumber: u } = await ts.ok(
        UpdatePhoneNumberDocument,
        { id: n.id, input: { destination: { type: "EXTENSION", target: ext.extensionNumber }, label: "Reception" } },
        a.adminKey,
      );
      expect(u).toMatchObject({ label: "Reception", destination: { type: "EXTENSION", target: "5101" } });
      const list = await ts.ok(TenantPhoneNumbersDocument, { id: a.tenant.id, search: number.slice(1, 8) }, a.viewerKey);
      expect(list.tenant?.phoneNumbers.nodes.map((x) => x.number)).toContain(number);
      const audit = await ts.ok(AuditLogDocument, { tenantId: a.tenant.id, filter: { entityType: "phone_number", entityId: n.id } });
      expect(audit.auditLog.nodes.map((e) => [e.action, e.changes])).toEqual([
        ["phone_number.updated", { label: ["Main", "Reception"], destination: ["HANGUP", "EXTENSION:5101"] }],
        ["phone_number.created", { tenantId: [null, a.tenant.id], number: [null, number], label: [null, "Main"], destination: [null, "HANGUP"] }],
      ]);
    });

    it("refusals: a TENANT_ADMIN cannot assign, a number is one tenant's, bad E.164 and bad destinations name their field, nothing changes", async () => {
      const number = did();
      expect(code(await ts.gql(CreatePhoneNumberDocument, { input: { tenantId: a.tenant.id, number } }, a.adminKey))).toBe("FORBIDDEN");
      const { createPhoneNumber: n } = await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: a.tenant.id, number } });
      const dup = await ts.gql(CreatePhoneNumberDocument, { input: { tenantId: b.tenant.id, number } });
      expect([code(dup), fields(dup)]).toEqual(["BAD_USER_INPUT", ["number"]]);
      const bad = await ts.gql(CreatePhoneNumberDocument, { input: { tenantId: a.tenant.id, number: "02071234567" } });
      expect([code(bad), fields(bad)]).toEqual(["BAD_USER_INPUT", ["number"]]);
      // Another tenant's extension does not exist here.
      await createExtension(ts, b.tenant.id, { extensionNumber: "5901" });
      for (const destination of [{ type: "EXTENSION" as const, target: "5901" }, { type: "QUEUE" as const, target: "1" }, { type: "EXTERNAL" as const, target: "123" }]) {
        const r = await ts.gql(UpdatePhoneNumberDocument, { id: n.id, input: { destination } }, a.adminKey);
        expect([code(r), fields(r)]).toEqual(["BAD_USER_INPUT", ["destination"]]);
      }
      const fresh = await ts.gql(CreatePhoneNumberDocument, { input: { tenantId: a.tenant.id, number: did(), destination: { type: "EXTENSION", target: "5901" } } });
      expect([code(fresh), fields(fresh)]).toEqual(["BAD_USER_INPUT", ["destination"]]);
      expect((await ts.ok(PhoneNumberDocument, { id: n.id })).phoneNumber.destination).toEqual({ type: "HANGUP", target: null });
      // Cross-tenant: B's keys see A's number as missing, and cannot change it.
      expect(code(await ts.gql(PhoneNumberDocument, { id: n.id }, b.viewerKey))).toBe("NOT_FOUND");
      expect(code(await ts.gql(UpdatePhoneNumberDocument, { id: n.id, input: { label: "x" } }, b.adminKey))).toBe("NOT_FOUND");
      expect(code(await ts.gql(UpdatePhoneNumberDocument, { id: n.id, input: { label: "x" } }, a.viewerKey))).toBe("FORBIDDEN");
      expect(code(await ts.gql(DeletePhoneNumberDocument, { id: n.id }, a.adminKey))).toBe("FORBIDDEN");
      expect(code(await ts.gql(TenantPhoneNumbersDocument, { id: a.tenant.id }, b.viewerKey))).toBe("NOT_FOUND");
    });

    it("deleting an extension a number points at is refused (CONFLICT naming it) unless force, which turns it into HANGUP; a rename follows", async () => {
      const ext = await createExtension(ts, a.tenant.id, { extensionNumber: "5201" });
      const number = did();
      const { createPhoneNumber: n } = await ts.ok(CreatePhoneNumberDocument, {
        input: { tenantId: a.tenant.id, number, destination: { type: "EXTENSION", target: "5201" } },
      });
      await ts.ok(UpdateExtensionDocument, { id: ext.id, input: { extensionNumber: "5202" } }, a.adminKey);
      expect((await ts.ok(PhoneNumberDocument, { id: n.id })).phoneNumber.destination).toEqual({ type: "EXTENSION", target: "5202" });
      const refused = await ts.gql(DeleteExtensionDocument, { id: ext.id }, a.adminKey);
      expect(code(refused)).toBe("CONFLICT");
      expect(refused.errors?.[0].message).toContain(number);
      expect(refused.errors?.[0].extensions?.references).toEqual([`phone number ${number} (destination)`]);
      const rest = await ts.http(`/api/extensions/${ext.id}`, { method: "DELETE", key: a.adminKey });
      expect(rest.status).toBe(409);
      expect(await rest.json()).toMatchObject({ references: [`phone number ${number} (destination)`] });
      expect((await ts.ok(PhoneNumberDocument, { id: n.id })).phoneNumber.destination.type).toBe("EXTENSION");
      await ts.ok(DeleteExtensionDocument, { id: ext.id, force: true }, a.adminKey);
      expect((await ts.ok(PhoneNumberDocument, { id: n.id })).phoneNumber.destination).toEqual({ type: "HANGUP", target: null });
      const audit = await ts.ok(AuditLogDocument, { tenantId: a.tenant.id, filter: { entityType: "phone_number", entityId: n.id } });
      expect(audit.auditLog.nodes[0]).toMatchObject({ action: "phone_number.updated", changes: { destination: ["EXTENSION:5202", "HANGUP"] } });
    });

    it("a queue a number points at: deleteQueue is refused (CONFLICT) unless force; a renamed queue keeps the reference", async () => {
      const { createQueue: queue } = await ts.ok(CreateQueueDocument, { input: { tenantId: a.tenant.id, name: "Support", number: "7701" } }, a.adminKey);
      const number = did();
      const { createPhoneNumber: n } = await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: a.tenant.id, number, destination: { type: "QUEUE", target: "7701" } } });
      await ts.ok(UpdateQueueDocument, { id: queue.id, input: { number: "7702" } }, a.adminKey);
      expect((await ts.ok(PhoneNumberDocument, { id: n.id })).phoneNumber.destination).toEqual({ type: "QUEUE", target: "7702" });
      const refused = await ts.gql(DeleteQueueDocument, { id: queue.id }, a.adminKey);
      expect([code(refused), refused.errors?.[0].extensions?.references]).toEqual(["CONFLICT", [`phone number ${number} (destination)`]]);
      await ts.ok(DeleteQueueDocument, { id: queue.id, force: true }, a.adminKey);
      expect((await ts.ok(PhoneNumberDocument, { id: n.id })).phoneNumber.destination).toEqual({ type: "HANGUP", target: null });
    });

    it("caller IDs: only the tenant's own numbers; a number in use as caller ID cannot be released", async () => {
      const mine = did();
      const theirs = did();
      await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: a.tenant.id, number: mine } });
      await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: b.tenant.id, number: theirs } });
      const refused = await ts.gql(CreateExtensionDocument, { input: { tenantId: a.tenant.id, extensionNumber: "5301", secret: "long-secret-5301", callerIdNumber: theirs } }, a.adminKey);
      expect([code(refused), fields(refused)]).toEqual(["BAD_USER_INPUT", ["callerIdNumber"]]);
      const ext = await createExtension(ts, a.tenant.id, { extensionNumber: "5301", callerIdNumber: mine, allowedCallClasses: ["NATIONAL", "INTERNATIONAL"] }, a.adminKey);
      expect((await ts.ok(ExtensionOutboundDocument, { id: ext.id })).extension).toMatchObject({ callerIdNumber: mine, allowedCallClasses: ["NATIONAL", "INTERNATIONAL"] });
      const other = await createExtension(ts, a.tenant.id, { extensionNumber: "5302" });
      expect((await ts.ok(ExtensionOutboundDocument, { id: other.id })).extension?.allowedCallClasses).toEqual(["EMERGENCY", "NATIONAL", "MOBILE"]);
      const badTenant = await ts.gql(UpdateTenantDocument, { id: a.tenant.id, input: { defaultCallerIdNumber: theirs } });
      expect([code(badTenant), fields(badTenant)]).toEqual(["BAD_USER_INPUT", ["defaultCallerIdNumber"]]);
      await ts.ok(UpdateTenantDocument, { id: a.tenant.id, input: { defaultCallerIdNumber: mine, maxOutboundCalls: 3 } });
      expect((await ts.ok(TenantTrunksDocument, { id: a.tenant.id })).tenant).toMatchObject({ defaultCallerIdNumber: mine, maxOutboundCalls: 3 });
      const list = await ts.ok(TenantPhoneNumbersDocument, { id: a.tenant.id, search: mine });
      const released = await ts.gql(DeletePhoneNumberDocument, { id: list.tenant!.phoneNumbers.nodes[0].id });
      expect(code(released)).toBe("CONFLICT");
      expect(released.errors?.[0].message).toMatch(/extension 5301.*tenant default|tenant default.*extension 5301/);
      await ts.ok(UpdateExtensionDocument, { id: ext.id, input: { callerIdNumber: null } }, a.adminKey);
      await ts.ok(UpdateTenantDocument, { id: a.tenant.id, input: { defaultCallerIdNumber: null } });
      expect((await ts.ok(DeletePhoneNumberDocument, { id: list.tenant!.phoneNumbers.nodes[0].id })).deletePhoneNumber).toBeTruthy();
    });
  });

  describe("trunks", () => {
    it("shared trunks are ADMIN's; a tenant's own are its TENANT_ADMIN's; each tenant sees the shared and its own; the secret never comes back", async () => {
      const { createTrunk: shared } = await ts.ok(CreateTrunkDocument, {
        input: { name: "Carrier A", host: "127.0.0.1", port: 5091, inboundAddresses: ["127.0.0.1"], username: "pbx", secret: "carrier-secret-1" },
      });
      expect(shared).toMatchObject({ tenantId: null, transport: "UDP", hasSecret: true, register: false, registrationState: null, enabled: true });
      expect(JSON.stringify(shared)).not.toContain("carrier-secret-1");
      const { createTrunk: own } = await ts.ok(CreateTrunkDocument, { input: { name: "BYOC", host: "10.0.0.5", register: true, username: "u", secret: "byoc-secret-1" } }, a.adminKey);
      expect(own).toMatchObject({ tenantId: a.tenant.id, inboundAddresses: ["10.0.0.5"], register: true, registrationState: "UNREGISTERED" });
      const seenByA = (await ts.ok(TrunksDocument, {}, a.viewerKey)).trunks.map((t) => t.id);
      expect(seenByA).toEqual(expect.arrayContaining([shared.id, own.id]));
      const seenByB = (await ts.ok(TenantTrunksDocument, { id: b.tenant.id }, b.viewerKey)).tenant!.trunks.map((t) => t.id);
      expect(seenByB).toContain(shared.id);
      expect(seenByB).not.toContain(own.id);
      expect(code(await ts.gql(TrunkDocument, { id: own.id }, b.adminKey))).toBe("NOT_FOUND");
      expect(code(await ts.gql(UpdateTrunkDocument, { id: own.id, input: { name: "x" } }, b.adminKey))).toBe("NOT_FOUND");
      expect(code(await ts.gql(UpdateTrunkDocument, { id: shared.id, input: { name: "x" } }, a.adminKey))).toBe("FORBIDDEN");
      expect(code(await ts.gql(UpdateTrunkDocument, { id: own.id, input: { name: "x" } }, a.viewerKey))).toBe("FORBIDDEN");
      const { updateTrunk } = await ts.ok(UpdateTrunkDocument, { id: own.id, input: { secret: "rotated-secret-2", maxChannels: 2 } }, a.adminKey);
      expect(updateTrunk).toMatchObject({ hasSecret: true, maxChannels: 2 });
      const audit = await ts.ok(AuditLogDocument, { tenantId: a.tenant.id, filter: { entityType: "trunk", entityId: own.id } });
      expect(audit.auditLog.nodes[0].changes).toEqual({ secret: ["[redacted]", "[redacted]"], maxChannels: [null, 2] });
      expect(JSON.stringify(audit)).not.toMatch(/byoc-secret|rotated-secret/);
    });

    it("the engine's registration reports (type trunk on /api/events) set registrationState; refusals change nothing", async () => {
      const { createTrunk: reg } = await ts.ok(CreateTrunkDocument, { input: { name: "Reg", host: "127.0.0.1", register: true, username: "u", secret: "reg-secret-1" } }, a.adminKey);
      const { createTrunk: plain } = await ts.ok(CreateTrunkDocument, { input: { name: "Plain", host: "127.0.0.1" } });
      const [ingest, bIngest] = await Promise.all([createKey(ts, "INGEST", null), createKey(ts, "INGEST", b.tenant.id)]);
      const post = (body: unknown, key = ingest) =>
        ts.http("/api/events", { method: "POST", key, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      const report = (trunk: string, state: string) => ({ type: "trunk", action: "registration", trunk_id: Number(trunk), state });
      expect((await post(report(reg.id, "registered"))).status).toBe(200);
      expect((await ts.ok(TrunkDocument, { id: reg.id })).trunk.registrationState).toBe("REGISTERED");
      const again = await post(report(reg.id, "registered"));
      expect(await again.json()).toMatchObject({ data: { status: "duplicate" } });
      const refusals: Array<[unknown, string, string?]> = [
        [report(reg.id, "sleepy"), "state"],
        [report(plain.id, "failed"), "trunk_id"],
        [{ ...report(reg.id, "failed"), trunk_id: "x" }, "trunk_id"],
        [report(reg.id, "failed"), "trunk_id", bIngest],
      ];
      for (const [body, field, key] of refusals) {
        const r = await post(body, key);
        expect([r.status, Object.keys(((await r.json()) as { errors: object }).errors)]).toEqual([422, [field]]);
      }
      expect((await ts.ok(TrunkDocument, { id: reg.id })).trunk.registrationState).toBe("REGISTERED");
      expect((await ts.ok(TrunkDocument, { id: plain.id })).trunk.registrationState).toBeNull();
    });

    it("refusals name their field and change nothing", async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ name: "", host: "127.0.0.1" }, "name"],
        [{ name: "x", host: "not a host" }, "host"],
        [{ name: "x", host: "127.0.0.1", port: 70000 }, "port"],
        [{ name: "x", host: "127.0.0.1", transport: "WS" }, "transport"],
        [{ name: "x", host: "127.0.0.1", inboundAddresses: ["300.1.1.1"] }, "inboundAddresses"],
        [{ name: "x", host: "127.0.0.1", inboundAddresses: ["10.0.0.0/33"] }, "inboundAddresses"],
        [{ name: "x", host: "127.0.0.1", secret: "short" }, "secret"],
        [{ name: "x", host: "127.0.0.1", register: true, username: "u" }, "secret"],
        [{ name: "x", host: "127.0.0.1", maxChannels: 0 }, "maxChannels"],
      ];
      const before = (await ts.ok(TrunksDocument, {})).trunks.length;
      for (const [input, field] of cases) {
        const r = await ts.gql(CreateTrunkDocument, { input: input as never }, a.adminKey);
        expect([JSON.stringify(input), code(r), fields(r)]).toEqual([JSON.stringify(input), "BAD_USER_INPUT", [field]]);
      }
      expect((await ts.ok(TrunksDocument, {})).trunks.length).toBe(before);
    });
  });

  describe("outbound routes", () => {
    it("a route through shared and own trunks, in order; deleting a trunk in use is refused; the portable subset is enforced on match and transform", async () => {
      const { createTrunk: t1 } = await ts.ok(CreateTrunkDocument, { input: { name: "R1", host: "127.0.0.1", port: 5092 } });
      const { createTrunk: t2 } = await ts.ok(CreateTrunkDocument, { input: { name: "R2", host: "127.0.0.1", port: 5093 } }, a.adminKey);
      const { createTrunk: theirs } = await ts.ok(CreateTrunkDocument, { input: { name: "B's", host: "127.0.0.1", port: 5094 } }, b.adminKey);
      const input = { tenantId: a.tenant.id, name: "UK national", priority: 10, match: "^0([1-9][0-9]{8,9})$", transform: "+44\\1", callClass: "NATIONAL" as const, trunkIds: [t2.id, t1.id] };
      const { createOutboundRoute: route } = await ts.ok(CreateOutboundRouteDocument, { input }, a.adminKey);
      expect(route).toMatchObject({ priority: 10, callClass: "NATIONAL", enabled: true, trunks: [{ id: t2.id }, { id: t1.id }] });
      const conflictDelete = await ts.gql(DeleteTrunkDocument, { id: t1.id });
      expect(code(conflictDelete)).toBe("CONFLICT");
      expect(conflictDelete.errors?.[0].message).toContain("UK national");
      for (const [bad, field] of [
        [{ match: "0[1-9].*" }, "match"],
        [{ match: "^0(?:1)$" }, "match"],
        [{ match: "^0[a-z]$" }, "match"],
        [{ match: "^0\\w+$" }, "match"],
        [{ match: "^0(1$" }, "match"],
        [{ transform: "+44\\2" }, "transform"],
        [{ transform: "+44 \\1" }, "transform"],
        [{ trunkIds: [theirs.id] }, "trunkIds"],
        [{ trunkIds: [] }, "trunkIds"],
        [{ priority: -1 }, "priority"],
      ] as Array<[Record<string, unknown>, string]>) {
        const r = await ts.gql(CreateOutboundRouteDocument, { input: { ...input, ...bad } as never }, a.adminKey);
        expect([JSON.stringify(bad), code(r), fields(r)]).toEqual([JSON.stringify(bad), expect.any(String), [field]]);
        const u = await ts.gql(UpdateOutboundRouteDocument, { id: route.id, input: bad as never }, a.adminKey);
        expect([JSON.stringify(bad), fields(u)]).toEqual([JSON.stringify(bad), [field]]);
      }
      expect((await ts.ok(OutboundRouteDocument, { id: route.id })).outboundRoute).toMatchObject({ match: input.match, transform: input.transform, trunks: [{ id: t2.id }, { id: t1.id }] });
      // The emergency short code and a wider subset that is allowed.
      const { createOutboundRoute: sos } = await ts.ok(
        CreateOutboundRouteDocument,
        { input: { ...input, name: "Emergency", priority: 1, match: "^(112|999)$", transform: "\\1", callClass: "EMERGENCY", trunkIds: [t1.id] } },
        a.adminKey,
      );
      expect(sos.callClass).toBe("EMERGENCY");
      await ts.ok(CreateOutboundRouteDocument, { input: { ...input, name: "Any", priority: 99, match: "^(\\+|00)(4[0-9]|3[0-9])\\d{6,12}$", transform: "+\\2", callClass: "INTERNATIONAL" } }, a.adminKey);
      const routes = (await ts.ok(TenantTrunksDocument, { id: a.tenant.id }, a.viewerKey)).tenant!.outboundRoutes.map((r) => r.name);
      expect(routes).toEqual(["Emergency", "UK national", "Any"]);
      expect((await ts.ok(TenantTrunksDocument, { id: b.tenant.id }, b.viewerKey)).tenant!.outboundRoutes).toEqual([]);
      expect(code(await ts.gql(OutboundRouteDocument, { id: route.id }, b.viewerKey))).toBe("NOT_FOUND");
      expect(code(await ts.gql(UpdateOutboundRouteDocument, { id: route.id, input: { name: "x" } }, b.adminKey))).toBe("NOT_FOUND");
    });
  });
});
