import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { Redis } from "ioredis";
import { runEngineRole } from "../../src/cli/engine-role";
import { ENGINE_VIEWS } from "../../src/engine/engine-role";
import {
  ActiveCallEventsDocument,
  CdrsDocument,
  CreateExtensionDocument,
  ExtensionDevicesDocument,
  RegistrationEventsDocument,
  UpdateExtensionDocument,
} from "../graphql/generated";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { createTenant } from "../support/factories";
import { subscribe } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { answerCall, createEngineRole, freeTcpPort, registerOverWebSocket, sippRegister, sippUsers, sipsakRegister, startKamailio, startPhone, udpRegistration, waitFor, type EngineRole, type Kamailio } from "../support/sip";

/**
 * Contract §7 end to end with real SIP clients: Kamailio runs the shipped deploy/kamailio/kamailio.cfg
 * against the server under test (its own schema, read through a role made by the engine:role code;
 * its own stream key), and phones register and call through it.
 */
const real = requireReal("postgres") && requireReal("redis");
const suite = real ? describe : describe.skip;

suite("the engine's database role", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(() => ts?.stop());

  const asRole = async <T>(role: { name: string; password: string }, work: (c: pg.Client) => Promise<T>): Promise<T> => {
    const url = new URL(databaseUrl()!);
    url.username = role.name;
    url.password = role.password;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };

  it("may SELECT the engine views (ENGINE_VIEWS) and nothing else: every table, other view, sequence and function of the product is refused", async () => {
    const role = await createEngineRole(databaseUrl()!, ts.schema);
    try {
      const tenant = await createTenant(ts);
      await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1001", secret: "role-test-secret" } });
      const admin = ts.server.db.dataSource;
      const relations: Array<{ name: string; kind: string }> = await admin.query(
        `SELECT c.relname AS name, c.relkind AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') ORDER BY 1`,
      );
      const functions: Array<{ signature: string }> = await admin.query(
        `SELECT p.oid::regprocedure::text AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()`,
      );
      expect(relations.map((r) => r.name)).toEqual(expect.arrayContaining(["extension", "tenant", "api_key", "device", "cdr", ...ENGINE_VIEWS]));
      expect(functions.length).toBeGreaterThan(0);
      await asRole(role, async (c) => {
        const rows = (await c.query(`SELECT username, domain FROM sip_subscriber`)).rows;
        expect(rows).toEqual([{ username: "1001", domain: tenant.sipDomain }]);
        for (const view of ENGINE_VIEWS) await c.query(`SELECT * FROM ${view} LIMIT 1`);
        expect((await c.query(`SELECT version FROM engine_config`)).rows).toEqual([{ version: expect.stringMatching(/^[0-9]+$/) }]);
        for (const { name, kind } of relations.filter((r) => !ENGINE_VIEWS.includes(r.name))) {
          const sql = kind === "S" ? `SELECT nextval('${ts.schema}.${name}')` : `SELECT 1 FROM ${ts.schema}.${name} LIMIT 1`;
          await expect(c.query(sql)).rejects.toThrow(/permission denied/);
        }
        for (const { signature } of functions) {
          const { rows: [{ allowed }] } = await c.query(`SELECT has_function_privilege($1, 'EXECUTE') AS allowed`, [`${ts.schema}.${signature}`]);
          expect([signature, allowed]).toEqual([signature, false]);
        }
        await expect(c.query(`CREATE TABLE ${ts.schema}.intruder (x int)`)).rejects.toThrow(/permission denied/);
        await expect(c.query(`DELETE FROM sip_subscriber`)).rejects.toThrow(/permission denied|cannot delete from view/);
      });
    } finally {
      await role.drop();
    }
  });

  it("npm run engine:role: --help, refuses unknown flags, creates the role, then updates its password", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const run = (argv: string[], env: NodeJS.ProcessEnv = { DATABASE_URL: databaseUrl()!, DATABASE_SCHEMA: ts.schema! }) =>
      runEngineRole(argv, env, { write: (t: string) => out.push(t) }, { write: (t: string) => err.push(t) });
    expect(await run(["--help"])).toBe(0);
    expect(out.join("")).toContain("--name NAME --password PASSWORD");
    expect(await run(["--name", "kam_x", "--password", "long-enough-pass", "--superuser"])).toBe(2);
    expect(err.join("")).toContain("--superuser");
    expect(await run(["--name", "kam_x"])).toBe(2);
    expect(await run(["--name", "kam_x", "--password", "long-enough-pass"], {})).toBe(2);
    expect(await run(["--name", "Bad Name", "--password", "long-enough-pass"])).toBe(1);
    expect(await run(["--name", "postgres", "--password", "long-enough-pass"])).toBe(1);

    const name = `kam_cli_${Date.now().toString(36)}`;
    out.length = 0;
    try {
      expect(await run(["--name", name, "--password", "first-password-1"])).toBe(0);
      expect(out.join("")).toContain(`created role ${name}`);
      expect(await asRole({ name, password: "first-password-1" }, async (c) => (await c.query(`SELECT count(*)::int AS n FROM sip_subscriber`)).rows[0].n)).toBe(1);
      // (The test server may trust local connections, so the new password is checked where PostgreSQL keeps it.)
      const verifier = async () => (await ts.server.db.dataSource.query(`SELECT rolpassword FROM pg_authid WHERE rolname = $1`, [name]))[0].rolpassword;
      const first = await verifier();
      expect(first).toMatch(/^(SCRAM-SHA-256|md5)/);
      expect(await run(["--name", name, "--password", "second-password-2"])).toBe(0);
      expect(out.join("")).toContain(`updated role ${name}`);
      expect(await verifier()).not.toBe(first);
      expect(await asRole({ name, password: "second-password-2" }, async () => 1)).toBe(1);
      // The password may come from the environment instead, so npm's echo of the command line never shows it.
      const second = await verifier();
      expect(await run(["--name", name], { DATABASE_URL: databaseUrl()!, DATABASE_SCHEMA: ts.schema!, ENGINE_DB_PASSWORD: "third-password-3" })).toBe(0);
      expect(await verifier()).not.toBe(second);
    } finally {
      await ts.server.db.dataSource.query(`DROP OWNED BY ${name}`).catch(() => undefined);
      await ts.server.db.dataSource.query(`DROP ROLE IF EXISTS ${name}`);
    }
  });
});

suite("phones through the shipped Kamailio", () => {
  let ts: TestServer;
  let role: EngineRole;
  let kamailio: Kamailio;
  let redis: Redis;
  let tenant: { id: string; sipDomain: string };
  let other: { id: string; sipDomain: string };

  beforeAll(async () => {
    ts = await startTestServer();
    redis = new Redis(redisUrl()!);
    role = await createEngineRole(databaseUrl()!, ts.schema);
    kamailio = await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: `${ts.redisPrefix}pbx:events` });
    [tenant, other] = await Promise.all([createTenant(ts, { maxExtensions: 500 }), createTenant(ts)]);
  }, 30_000);
  afterAll(async () => {
    // Kamailio logged no error while it worked (a refused authentication is a notice); its shutdown is not judged.
    const logged = kamailio?.output() ?? "";
    await kamailio?.stop();
    await role?.drop();
    redis?.disconnect();
    await ts?.stop();
    expect(logged).not.toMatch(/\b(ERROR|CRITICAL):/);
  });

  const create = async (tenantId: string, extensionNumber: string, secret: string) =>
    (await ts.ok(CreateExtensionDocument, { input: { tenantId, extensionNumber, secret, displayName: `Ext ${extensionNumber}` } })).createExtension;
  const devices = async (id: string) => (await ts.ok(ExtensionDevicesDocument, { id })).extension;
  const streamLength = () => redis.xlen(kamailio.streamKey);

  it("sipsak registers with a secret set over GraphQL: the extension is registered with its device", async () => {
    const ext = await create(tenant.id, "1001", "initial-secret-1001");
    // The secret a phone is given is the one set last.
    await ts.ok(UpdateExtensionDocument, { id: ext.id, input: { secret: "graphql-secret-1001" } });
    const events = await subscribe(ts, RegistrationEventsDocument, { tenantId: tenant.id }, ts.adminKey);
    try {
      const r = await sipsakRegister(kamailio.port, "1001", tenant.sipDomain, "graphql-secret-1001");
      expect([r.status, r.code]).toEqual([200, 0]);
      const event = await events.next((e) => e.registrationEvents.extension.id === ext.id);
      expect(event.registrationEvents).toMatchObject({ type: "REGISTERED", tenantId: tenant.id, device: { transport: "UDP", registered: true } });
      expect(event.registrationEvents.device.userAgent).toMatch(/sipsak/);
      expect(event.registrationEvents.device.contactUri).toMatch(/^sip:1001@127\.0\.0\.1:\d+$/);
      const seen = await devices(ext.id);
      expect(seen?.registered).toBe(true);
      expect(seen?.devices).toEqual([expect.objectContaining({ contactUri: event.registrationEvents.device.contactUri, registered: true, transport: "UDP" })]);
    } finally {
      await events.close();
    }
  });

  it("refuses a wrong secret, a disabled extension and another tenant's domain alike (403), and nothing changes", async () => {
    const ext = await create(tenant.id, "1002", "right-secret-1002");
    const disabled = await create(tenant.id, "1003", "right-secret-1003");
    await ts.ok(UpdateExtensionDocument, { id: disabled.id, input: { status: "DISABLED" } });
    const theirs = await create(other.id, "1004", "their-secret-1004");
    await create(tenant.id, "1004", "our-secret-1004");
    const marker = await create(tenant.id, "1005", "marker-secret-1005");
    const before = await streamLength();

    const attempts: Array<[string, string, string]> = [
      ["1002", tenant.sipDomain, "wrong-secret-1002"],
      ["1003", tenant.sipDomain, "right-secret-1003"],
      // Our 1004's secret in the other tenant's domain, and theirs in ours.
      ["1004", other.sipDomain, "our-secret-1004"],
      ["1004", tenant.sipDomain, "their-secret-1004"],
      ["1999", tenant.sipDomain, "no-such-extension"],
    ];
    const refusals = [];
    for (const [number, domain, secret] of attempts) refusals.push(await sipsakRegister(kamailio.port, number, domain, secret));
    for (const r of refusals) expect({ status: r.status, output: r.status === 403 ? "" : r.output }).toEqual({ status: 403, output: "" });
    // The replies are the same: none tells whether the extension exists.
    const reasons = refusals.map((r) => /SIP\/2\.0 403 [^\r\n]*/.exec(r.output)?.[0]);
    expect(new Set(reasons).size).toBe(1);

    // A registration after the refusals: once it has reached the product, so would anything before it.
    const events = await subscribe(ts, RegistrationEventsDocument, { tenantId: tenant.id }, ts.adminKey);
    try {
      expect((await sipsakRegister(kamailio.port, "1005", tenant.sipDomain, "marker-secret-1005")).status).toBe(200);
      await events.next((e) => e.registrationEvents.extension.id === marker.id);
      expect(events.received.map((m) => m.data?.registrationEvents.extension.id)).toEqual([marker.id]);
    } finally {
      await events.close();
    }
    expect(await streamLength()).toBe(before + 1);
    for (const id of [ext.id, disabled.id, theirs.id]) expect((await devices(id))?.devices).toEqual([]);
  });

  it("connects two baresip phones of one tenant; another API instance sees both legs start, answer and end, and two CDRs share a linked_id", async () => {
    const [alice, bob] = await Promise.all([create(tenant.id, "2001", "alice-secret-2001"), create(tenant.id, "2002", "bob-secret-2002")]);
    const second = await startTestServer({ shareSchemaOf: ts });
    const calls = await subscribe(second, ActiveCallEventsDocument, { tenantId: tenant.id }, ts.adminKey);
    const phones = [] as Array<Awaited<ReturnType<typeof startPhone>>>;
    try {
      phones.push(await startPhone(kamailio.port, "2002", tenant.sipDomain, "bob-secret-2002", "Bob"));
      phones.push(await startPhone(kamailio.port, "2001", tenant.sipDomain, "alice-secret-2001", "Alice Example"));
      const [bobPhone, alicePhone] = phones;
      await waitFor("both phones registered in the product", async () => (await devices(alice.id))?.registered && (await devices(bob.id))?.registered);

      await alicePhone.command("/dial 2002");
      await waitFor("Bob's phone to ring", () => /Incoming call/.test(bobPhone.output()) || undefined);
      // The two legs' events may arrive in either order: wait for both, wherever they are.
      type CallEvent = (typeof calls.received)[number];
      const both = (type: string) =>
        waitFor(`${type} for both legs`, () => {
          const found = [alice.id, bob.id].map((id) =>
            calls.received.find((m: CallEvent) => m.data?.activeCallEvents.type === type && m.data.activeCallEvents.call.extension.id === id)?.data,
          );
          return found.every(Boolean) ? (found as Array<NonNullable<CallEvent["data"]>>) : undefined;
        });
      const started = await both("STARTED");
      await answerCall(bobPhone);
      const answered = await both("ANSWERED");
      await alicePhone.command("/hangup");
      const ended = await both("ENDED");

      const linkedId = started[0].activeCallEvents.call.linkedId;
      expect(linkedId).toBeTruthy();
      for (const e of [...started, ...answered, ...ended]) {
        expect(e.activeCallEvents.call).toMatchObject({ linkedId, direction: "INTERNAL", callerNumber: "2001", calleeNumber: "2002" });
      }
      expect(started[1].activeCallEvents.call.callId).toBe(`${linkedId};callee`);
      for (const e of ended) expect(e.activeCallEvents.cdr).toMatchObject({ disposition: "ANSWERED", direction: "INTERNAL" });

      const { cdrs } = await second.ok(CdrsDocument, { tenantId: tenant.id, filter: {} });
      const legs = cdrs.nodes.filter((c) => c.linkedId === linkedId);
      expect(legs.map((c) => c.extensionNumber).sort()).toEqual(["2001", "2002"]);
      expect(legs.find((c) => c.extensionNumber === "2001")).toMatchObject({ callerName: "Alice Example", hangupCause: "normal_clearing" });
    } finally {
      for (const phone of phones) await phone.stop();
      await calls.close();
      await second.stop();
    }
  }, 60_000);

  it("registers a WebRTC client over SIP-over-WebSocket (WS_LISTEN): the device's transport is WS", async () => {
    const ext = await create(tenant.id, "1006", "webrtc-secret-1006");
    const wsPort = await freeTcpPort();
    const withWebSocket = await startKamailio({
      databaseUrl: role.url,
      redisUrl: redisUrl()!,
      streamKey: kamailio.streamKey,
      defines: [`WS_LISTEN=tcp:127.0.0.1:${wsPort}`],
    });
    const events = await subscribe(ts, RegistrationEventsDocument, { tenantId: tenant.id }, ts.adminKey);
    try {
      expect((await registerOverWebSocket(wsPort, "1006", tenant.sipDomain, "wrong-secret")).status).toBe(403);
      const { status, contact } = await registerOverWebSocket(wsPort, "1006", tenant.sipDomain, "webrtc-secret-1006");
      expect(status).toBe(200);
      const event = await events.next((e) => e.registrationEvents.extension.id === ext.id);
      expect(event.registrationEvents).toMatchObject({ type: "REGISTERED", device: { contactUri: contact, transport: "WS", userAgent: "pbx-test-webrtc" } });
      expect(events.received).toHaveLength(1);
      expect(withWebSocket.output()).not.toMatch(/\b(ERROR|CRITICAL):/);
    } finally {
      await events.close();
      await withWebSocket.stop();
    }
  });

  it("refuses an extension that keeps failing authentication from an address outright, right secret or not (AUTH_FAIL_LIMIT); the address's other extensions stay welcome", async () => {
    const ext = await create(tenant.id, "1007", "guarded-secret-1007");
    await create(tenant.id, "1008", "neighbour-secret-1008");
    const guarded = await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: kamailio.streamKey, defines: ["AUTH_FAIL_LIMIT=3"] });
    try {
      expect((await sipsakRegister(guarded.port, "1007", tenant.sipDomain, "guarded-secret-1007")).status).toBe(200);
      for (const guess of ["guess-1", "guess-2", "guess-3"]) expect((await sipsakRegister(guarded.port, "1007", tenant.sipDomain, guess)).status).toBe(403);
      const banned = await sipsakRegister(guarded.port, "1007", tenant.sipDomain, "guarded-secret-1007");
      expect(banned.status).toBe(403);
      // Refused before any challenge: the ban costs no database query and tells nothing.
      expect(banned.output).not.toMatch(/^SIP\/2\.0 401/m);
      // The lockout is per (address, extension): another phone at the same address registers (engine-safety.test.ts has more).
      expect((await sipsakRegister(guarded.port, "1008", tenant.sipDomain, "neighbour-secret-1008")).status).toBe(200);
      // The engine the other tests use keeps its own count: this source is still welcome there.
      expect((await sipsakRegister(kamailio.port, "1007", tenant.sipDomain, "guarded-secret-1007")).status).toBe(200);
    } finally {
      await guarded.stop();
    }
    expect((await devices(ext.id))?.registered).toBe(true);
  });

  it("a retransmitted REGISTER (same Call-ID and CSeq) adds no event: the product sees REGISTERED, then one REFRESHED for the real refresh", async () => {
    const ext = await create(tenant.id, "1009", "retransmit-secret-1009");
    const events = await subscribe(ts, RegistrationEventsDocument, { tenantId: tenant.id }, ts.adminKey);
    const phone = await udpRegistration(kamailio.port, "1009", tenant.sipDomain, "retransmit-secret-1009");
    const ofPhone = () => events.received.map((m) => m.data!.registrationEvents).filter((e) => e.extension.id === ext.id);
    const entriesOfPhone = async () =>
      ((await redis.xrange(kamailio.streamKey, "-", "+")) as Array<[string, string[]]>)
        .map(([, fields]) => JSON.parse(fields[1]) as { action: string; contact: string })
        .filter((e) => e.contact === phone.contact && e.action === "register").length;
    try {
      expect(await phone.register()).toBe(200);
      await events.next((e) => e.registrationEvents.extension.id === ext.id);
      // the phone missed the 200 OK and sends the same request again: answered again, nothing new
      expect(await phone.retransmit()).toBe(200);
      expect(await phone.retransmit()).toBe(200);
      // a real refresh (a new CSeq) is an event; it follows the retransmissions in the stream, so once
      // it arrived, any event of theirs would have arrived before it
      expect(await phone.register()).toBe(200);
      await events.next((e) => e.registrationEvents.extension.id === ext.id && e.registrationEvents.type === "REFRESHED");
      expect(ofPhone().map((e) => e.type)).toEqual(["REGISTERED", "REFRESHED"]);
      expect(await entriesOfPhone()).toBe(2);
    } finally {
      phone.close();
      await events.close();
    }
  });

  it("SIPp registers 100 extensions with digest auth, and each reaches the product exactly once", async () => {
    const numbers = Array.from({ length: 100 }, (_, i) => String(3000 + i));
    const created = new Map<string, string>();
    for (let i = 0; i < numbers.length; i += 20) {
      await Promise.all(numbers.slice(i, i + 20).map(async (n) => created.set((await create(tenant.id, n, `sipp-secret-${n}`)).id, n)));
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-sipp-users-"));
    const users = path.join(dir, "users.csv");
    fs.writeFileSync(users, sippUsers(numbers.map((number) => ({ number, domain: tenant.sipDomain, secret: `sipp-secret-${number}` }))));
    const events = await subscribe(ts, RegistrationEventsDocument, { tenantId: tenant.id }, ts.adminKey);
    try {
      const result = await sippRegister(kamailio.port, users, 100, 100);
      expect({ successful: result.successful, failed: result.failed }).toEqual({ successful: 100, failed: 0 });
      const reachedNow = () => events.received.map((m) => m.data!.registrationEvents).filter((e) => created.has(e.extension.id));
      await waitFor("100 registrations in the product", () => reachedNow().length >= 100 || undefined, 20_000);
      const reached = reachedNow();
      expect(reached.every((e) => e.type === "REGISTERED")).toBe(true);
      expect(reached.map((e) => created.get(e.extension.id)).sort()).toEqual(numbers);
      const [{ count }] = await ts.server.db.dataSource.query(
        `SELECT count(*)::int AS count FROM device WHERE extension_id = ANY($1::int[]) AND unregistered_at IS NULL`,
        [[...created.keys()].map(Number)],
      );
      expect(count).toBe(100);
    } finally {
      await events.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
