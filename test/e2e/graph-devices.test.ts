import "reflect-metadata";
import type { Principal } from "../../src/auth/principal";
import { Role } from "../../src/auth/role";
import { createLogger } from "../../src/common/logger";
import { buildContext } from "../../src/context/build-context";
import { Transport } from "../../src/modules/device/device.entity";
import { RegistrationInput, UnregistrationInput } from "../../src/modules/device/device.inputs";
import { DeviceDocument, ExtensionDevicesDocument, UpdateExtensionDocument } from "../graphql/generated";
import { createExtension, createKey, tenantWithKeys, uniq } from "../support/factories";
import { startTestServer, type GraphQLResponse, type TestServer } from "../support/server";

let ts: TestServer;
let a: Awaited<ReturnType<typeof tenantWithKeys>>;
let b: Awaited<ReturnType<typeof tenantWithKeys>>;

beforeAll(async () => {
  ts = await startTestServer();
  a = await tenantWithKeys(ts, { name: "Tenant A" });
  b = await tenantWithKeys(ts, { name: "Tenant B" });
});
afterAll(() => ts?.stop());

const codeOf = (r: GraphQLResponse<unknown>) => r.errors?.[0]?.extensions?.code;
const MISSING_ID = "2147483000";
const MINUTE = 60_000;

interface DeviceRowInput {
  contactUri?: string;
  userAgent?: string | null;
  sourceAddress?: string | null;
  transport?: string | null;
  registeredAt?: Date;
  expiresAt?: Date;
  unregisteredAt?: Date | null;
}

/** Devices arrive through registrations (a later path); these tests write rows directly. */
async function insertDevice(extensionId: string, row: DeviceRowInput = {}): Promise<string> {
  const [inserted]: Array<{ id: number }> = await ts.server.db.dataSource.query(
    `INSERT INTO device (tenant_id, extension_id, contact_uri, user_agent, source_address, transport, registered_at, expires_at, unregistered_at)
     SELECT tenant_id, id, $2, $3, $4, $5, $6, $7, $8 FROM extension WHERE id = $1 RETURNING id`,
    [
      Number(extensionId),
      row.contactUri ?? `sip:${uniq()}@192.0.2.1:5060`,
      row.userAgent ?? null,
      row.sourceAddress ?? null,
      row.transport === undefined ? "udp" : row.transport,
      row.registeredAt ?? new Date(Date.now() - 5 * MINUTE),
      row.expiresAt ?? new Date(Date.now() + 55 * MINUTE),
      row.unregisteredAt ?? null,
    ],
  );
  return String(inserted.id);
}

const deviceCount = async (extensionId: string): Promise<number> =>
  (await ts.server.db.dataSource.query(`SELECT count(*)::int AS count FROM device WHERE extension_id = $1`, [Number(extensionId)]))[0].count;

describe("devices over GraphQL", () => {
  it("reads a device with its extension, transport as the contract's enum", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    const registeredAt = new Date(Date.now() - 10 * MINUTE);
    const expiresAt = new Date(Date.now() + 50 * MINUTE);
    const id = await insertDevice(extension.id, {
      contactUri: "sip:1001@198.51.100.7:49152;transport=wss",
      userAgent: "Zoiper 5.6",
      sourceAddress: "198.51.100.7:49152",
      transport: "wss",
      registeredAt,
      expiresAt,
    });
    const { device } = await ts.ok(DeviceDocument, { id }, a.viewerKey);
    expect(device).toEqual({
      id,
      tenantId: a.tenant.id,
      extensionId: extension.id,
      contactUri: "sip:1001@198.51.100.7:49152;transport=wss",
      userAgent: "Zoiper 5.6",
      sourceAddress: "198.51.100.7:49152",
      transport: "WSS",
      registered: true,
      registeredAt: registeredAt.toISOString(),
      expiresAt: expiresAt.toISOString(),
      unregisteredAt: null,
      extension: { id: extension.id, extensionNumber: extension.extensionNumber, registered: true },
    });
  });

  it("maps every transport value", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    for (const transport of ["udp", "tcp", "tls", "ws", "wss", null]) await insertDevice(extension.id, { transport });
    const { extension: read } = await ts.ok(ExtensionDevicesDocument, { id: extension.id });
    expect(read.devices.map((d) => d.transport).sort()).toEqual(["TCP", "TLS", "UDP", "WS", "WSS", null].sort());
  });

  it("the database refuses a transport outside the contract's set", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    await expect(insertDevice(extension.id, { transport: "sip" })).rejects.toMatchObject({
      driverError: expect.objectContaining({ constraint: "ck_device__transport" }),
    });
    expect(await deviceCount(extension.id)).toBe(0);
  });

  it("registered means neither expired nor unregistered, for the device and for its extension", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    const read = async () => (await ts.ok(ExtensionDevicesDocument, { id: extension.id })).extension;
    expect(await read()).toMatchObject({ registered: false, devices: [] });

    const expired = await insertDevice(extension.id, { registeredAt: new Date(Date.now() - 2 * 60 * MINUTE), expiresAt: new Date(Date.now() - MINUTE) });
    const gone = await insertDevice(extension.id, { expiresAt: new Date(Date.now() + 30 * MINUTE), unregisteredAt: new Date(Date.now() - MINUTE) });
    let state = await read();
    expect(state.registered).toBe(false);
    expect(state.devices.map((d) => [d.id, d.registered])).toEqual(
      expect.arrayContaining([
        [expired, false],
        [gone, false],
      ]),
    );

    const live = await insertDevice(extension.id);
    state = await read();
    expect(state.registered).toBe(true);
    expect(state.devices[0]).toMatchObject({ id: live, registered: true });
    expect(state.devices).toHaveLength(3);
    expect((await ts.ok(DeviceDocument, { id: expired })).device.registered).toBe(false);
  });

  it("keeps one row per extension and contact URI", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    await insertDevice(extension.id, { contactUri: "sip:dup@192.0.2.9" });
    await expect(insertDevice(extension.id, { contactUri: "sip:dup@192.0.2.9" })).rejects.toMatchObject({
      driverError: expect.objectContaining({ constraint: "uq_device__extension_id__contact_uri" }),
    });
    // The same contact may be registered for another extension.
    await expect(insertDevice((await createExtension(ts, a.tenant.id)).id, { contactUri: "sip:dup@192.0.2.9" })).resolves.toBeDefined();
  });

  it("an INGEST key reads no devices", async () => {
    const ingest = await createKey(ts, "INGEST", null);
    const id = await insertDevice((await createExtension(ts, a.tenant.id)).id);
    expect(codeOf(await ts.gql(DeviceDocument, { id }, ingest))).toBe("FORBIDDEN");
  });

  describe.each([
    ["TENANT_ADMIN", () => b.adminKey],
    ["VIEWER", () => b.viewerKey],
  ])("a %s key of tenant B (invariant 4)", (_role, key) => {
    it("reads A's device and A's extension devices as NOT_FOUND, like missing ids", async () => {
      const extension = await createExtension(ts, a.tenant.id);
      const id = await insertDevice(extension.id);
      const foreign = await ts.gql(DeviceDocument, { id }, key());
      expect(codeOf(foreign)).toBe("NOT_FOUND");
      expect(foreign.errors).toEqual((await ts.gql(DeviceDocument, { id: MISSING_ID }, key())).errors);
      const viaExtension = await ts.gql(ExtensionDevicesDocument, { id: extension.id }, key());
      expect(codeOf(viaExtension)).toBe("NOT_FOUND");
      expect(viaExtension.errors).toEqual((await ts.gql(ExtensionDevicesDocument, { id: MISSING_ID }, key())).errors);
    });
  });
});

describe("DeviceService registrations (the event path's entry points)", () => {
  const log = createLogger("silent");
  const as = (role: Role, tenantId: number | null) => {
    const principal: Principal = { role, tenantId, apiKeyId: null };
    return buildContext({ dataSource: ts.server.db.dataSource, services: ts.server.services, pubsub: ts.server.pubsub, log }, principal, "graphql");
  };
  const ingest = () => as(Role.INGEST, null);
  const devices = () => ts.server.services.devices;
  const register = (fields: Partial<RegistrationInput> & { occurredAt: Date }) =>
    Object.assign(new RegistrationInput(), { contactUri: "sip:phone@192.0.2.50:5060", expiresInSeconds: 3600, ...fields });
  const unregistration = (fields: Partial<UnregistrationInput> & { occurredAt: Date }) =>
    Object.assign(new UnregistrationInput(), { contactUri: "sip:phone@192.0.2.50:5060", ...fields });

  it("registers, refreshes, ignores stale events, unregisters and registers again", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    const t0 = new Date(Date.now() - 10 * MINUTE);
    const at = (minutes: number) => new Date(t0.getTime() + minutes * MINUTE);

    const first = await devices().upsertRegistration(ingest(), extension.id, register({ occurredAt: t0, userAgent: "Phone/1", transport: Transport.UDP }));
    expect(first.change).toBe("REGISTERED");
    expect(first.device).toMatchObject({ registered: true, registeredAt: t0, expiresAt: at(60), userAgent: "Phone/1", unregisteredAt: null });

    const refresh = await devices().upsertRegistration(ingest(), extension.id, register({ occurredAt: at(1), userAgent: "Phone/2", transport: Transport.TLS }));
    expect(refresh.change).toBe("REFRESHED");
    expect(refresh.device).toMatchObject({ id: first.device.id, registeredAt: t0, expiresAt: at(61), userAgent: "Phone/2", transport: "tls" });

    const stale = await devices().upsertRegistration(ingest(), extension.id, register({ occurredAt: at(-1), userAgent: "Old" }));
    expect(stale.change).toBeNull();
    expect(stale.device).toMatchObject({ userAgent: "Phone/2", expiresAt: at(61) });

    const gone = await devices().unregister(ingest(), extension.id, unregistration({ occurredAt: at(2) }));
    expect(gone.change).toBe("UNREGISTERED");
    expect(gone.device).toMatchObject({ registered: false, unregisteredAt: at(2) });
    expect((await ts.ok(ExtensionDevicesDocument, { id: extension.id })).extension.registered).toBe(false);

    expect((await devices().unregister(ingest(), extension.id, unregistration({ occurredAt: at(3) }))).change).toBeNull();
    const lateRefresh = await devices().upsertRegistration(ingest(), extension.id, register({ occurredAt: at(1.5) }));
    expect(lateRefresh.change).toBeNull();
    expect(lateRefresh.device.registered).toBe(false);

    const again = await devices().upsertRegistration(ingest(), extension.id, register({ occurredAt: at(4) }));
    expect(again.change).toBe("REGISTERED");
    expect(again.device).toMatchObject({ id: first.device.id, registered: true, registeredAt: at(4), unregisteredAt: null });
    expect(await deviceCount(extension.id)).toBe(1);
    expect((await ts.ok(ExtensionDevicesDocument, { id: extension.id })).extension.registered).toBe(true);
  });

  it("starts a new registration when the previous one had expired", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    const t0 = new Date(Date.now() - 30 * MINUTE);
    await devices().upsertRegistration(ingest(), extension.id, register({ occurredAt: t0, expiresInSeconds: 60 }));
    const later = new Date(t0.getTime() + 10 * MINUTE);
    const renewed = await devices().upsertRegistration(ingest(), extension.id, register({ occurredAt: later }));
    expect(renewed.change).toBe("REGISTERED");
    expect(renewed.device.registeredAt).toEqual(later);
  });

  it("applies concurrent registrations of one new contact one at a time: one device", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    const now = new Date();
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () => devices().upsertRegistration(ingest(), extension.id, register({ occurredAt: now, contactUri: "sip:race@192.0.2.77" }))),
    );
    expect(outcomes.map((o) => o.change).sort()).toEqual(["REFRESHED", "REFRESHED", "REFRESHED", "REFRESHED", "REGISTERED"]);
    expect(await deviceCount(extension.id)).toBe(1);
  });

  it("refuses a disabled extension and changes nothing", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    await ts.ok(UpdateExtensionDocument, { id: extension.id, input: { status: "DISABLED" } });
    await expect(devices().upsertRegistration(ingest(), extension.id, register({ occurredAt: new Date() }))).rejects.toMatchObject({
      code: "BAD_USER_INPUT",
      fields: { extension: ["The extension is disabled."] },
    });
    expect(await deviceCount(extension.id)).toBe(0);
  });

  it("refuses invalid registrations with field messages and changes nothing", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    const bad = register({
      occurredAt: new Date("not a date"),
      contactUri: "",
      expiresInSeconds: 0,
      transport: "pigeon" as Transport,
      userAgent: "x".repeat(256),
      sourceAddress: "y".repeat(65),
    });
    const refusal = await devices().upsertRegistration(ingest(), extension.id, bad).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ code: "BAD_USER_INPUT" });
    expect(Object.keys((refusal as { fields: object }).fields).sort()).toEqual(
      ["contactUri", "expiresInSeconds", "occurredAt", "sourceAddress", "transport", "userAgent"].sort(),
    );
    expect(await deviceCount(extension.id)).toBe(0);
  });

  it("answers NOT_FOUND for unknown extensions and contacts, and for another tenant's INGEST key", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    const now = new Date();
    await expect(devices().upsertRegistration(ingest(), MISSING_ID, register({ occurredAt: now }))).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(devices().unregister(ingest(), extension.id, unregistration({ occurredAt: now }))).rejects.toMatchObject({ code: "NOT_FOUND" });
    const ingestOfB = as(Role.INGEST, Number(b.tenant.id));
    await expect(devices().upsertRegistration(ingestOfB, extension.id, register({ occurredAt: now }))).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: "Extension not found.",
    });
    await expect(devices().upsertRegistration(as(Role.INGEST, Number(a.tenant.id)), extension.id, register({ occurredAt: now }))).resolves.toMatchObject({
      change: "REGISTERED",
    });
    expect(await deviceCount(extension.id)).toBe(1);
  });

  it("refuses tenant keys: registrations come from the telephony engine", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    for (const role of [Role.TENANT_ADMIN, Role.VIEWER]) {
      await expect(devices().upsertRegistration(as(role, Number(a.tenant.id)), extension.id, register({ occurredAt: new Date() }))).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
    }
    expect(await deviceCount(extension.id)).toBe(0);
  });
});
