import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import {
  CdrsDocument,
  CreateExtensionDocument,
  ExtensionDevicesDocument,
  RegistrationEventsDocument,
  TenantActiveCallsDocument,
} from "../graphql/generated";
import { databaseUrl, requireReal } from "../support/env";
import { createKey, createTenant } from "../support/factories";
import { postEvents, subscribe, type LiveSubscription } from "../support/live";
import { trackChild } from "../support/run";
import { startTestServer, type TestServer } from "../support/server";
import { answerCall, createEngineRole, freeTcpPort, startKamailio, startPhone, stopProcess, waitFor, type EngineRole, type Kamailio, type Phone } from "../support/sip";

/**
 * Contract §14, "the engine's view converges": the shipped Kamailio publishes snapshots of what it
 * holds (deploy/kamailio/routes/reconcile.cfg) and the product corrects what lost events left wrong,
 * within ENGINE_RECONCILE_S, with the usual events and CDRs. Real Kamailio, real phones (baresip),
 * and a private redis-server this suite stops and starts again by PID.
 */
const real = requireReal("postgres");
const suite = real ? describe : describe.skip;

/** Seconds between the engine's snapshots in this suite, and the product's period. */
const INTERVAL_S = 2;
const RECONCILE_S = 4;

type Registrations = LiveSubscription<import("../graphql/generated").RegistrationEventsSubscription>;

interface PrivateRedis {
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  remove(): void;
}

/** A redis-server of this suite's own on a free port, without persistence (a restart starts empty). */
async function privateRedis(): Promise<PrivateRedis> {
  const port = await freeTcpPort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-reconcile-redis-"));
  let child: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;
  return {
    url,
    async start() {
      if (child) return;
      child = trackChild(spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" }));
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      try {
        await waitFor("the private redis-server to answer", async () => {
          try {
            await probe.connect();
            return (await probe.ping()) === "PONG" || undefined;
          } catch {
            probe.disconnect();
            return undefined;
          }
        }, 10_000);
      } finally {
        probe.disconnect();
      }
    },
    async stop() {
      if (child) await stopProcess(child);
      child = undefined;
    },
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

suite("reconciliation with the engine's snapshots (Redis away, Kamailio restarted)", () => {
  let redis: PrivateRedis;
  let ts: TestServer;
  let role: EngineRole;
  let kamailio: Kamailio;
  let tenant: { id: string; sipDomain: string };
  let registrations: Registrations;
  const phones: Phone[] = [];
  const engine = () =>
    startKamailio({
      databaseUrl: role.url,
      redisUrl: redis.url,
      streamKey: "rc:pbx:events",
      defines: [`RECONCILE_INTERVAL=${INTERVAL_S}`, 'NODE_ID="reconcile-test"'],
    });

  beforeAll(async () => {
    redis = await privateRedis();
    await redis.start();
    ts = await startTestServer({ env: { REDIS_URL: redis.url, REDIS_PREFIX: "rc:", ENGINE_RECONCILE_S: String(RECONCILE_S) } });
    role = await createEngineRole(databaseUrl()!, ts.schema);
    kamailio = await engine();
    tenant = await createTenant(ts);
    registrations = await subscribe(ts, RegistrationEventsDocument, { tenantId: tenant.id }, ts.adminKey);
  }, 60_000);
  afterAll(async () => {
    for (const phone of phones.splice(0)) await phone.stop();
    await registrations?.close();
    await kamailio?.stop();
    await role?.drop();
    // running again if a test stopped it, so the server's stop can clean its keys
    await redis?.start().catch(() => undefined);
    await ts?.stop();
    await redis?.stop();
    redis?.remove();
  });

  const create = async (extensionNumber: string) =>
    (await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber, secret: `secret-${extensionNumber}-x`, displayName: `Ext ${extensionNumber}` } })).createExtension;
  const phone = async (number: string) => {
    const p = await startPhone(kamailio.port, number, tenant.sipDomain, `secret-${number}-x`, `Phone ${number}`);
    phones.push(p);
    return p;
  };
  const devices = async (id: string) => (await ts.ok(ExtensionDevicesDocument, { id })).extension!;
  const activeCalls = async () => (await ts.ok(TenantActiveCallsDocument, { id: tenant.id })).tenant!.activeCalls;
  const cdrsOf = async (number: string) => (await ts.ok(CdrsDocument, { tenantId: tenant.id, filter: { number }, first: 100 })).cdrs.nodes;
  const eventsFor = (number: string, type: string) =>
    registrations.received.map((m) => m.data?.registrationEvents).filter((e) => e?.extension.extensionNumber === number && e.type === type);

  it("Redis away while a phone registers and a call ends: once it is back, the product shows the phone registered and the call ended with its CDRs", async () => {
    const [a, b, c] = await Promise.all([create("7101"), create("7102"), create("7103")]);
    const caller = await phone("7101");
    const callee = await phone("7102");
    await waitFor("both phones registered in the product", async () => (await devices(a.id)).registered && (await devices(b.id)).registered, 20_000);

    await caller.command("/dial 7102");
    await waitFor("7102 to ring", () => /Incoming call/.test(callee.output()) || undefined, 20_000);
    await answerCall(callee);
    await waitFor("the call answered in the product (both legs)", async () => {
      const calls = await activeCalls();
      return calls.length === 2 && calls.every((call) => call.state === "ANSWERED") || undefined;
    }, 20_000);

    await redis.stop();
    // Kamailio handles both while no event can reach the product
    const late = await phone("7103");
    await caller.command("/hangup");
    await waitFor("the callee to see the call closed", () => /closed|terminated/i.test(callee.output()) || undefined, 20_000);
    expect(late.output()).toMatch(/200 OK|OK/);

    const back = Date.now();
    await redis.start();
    await waitFor("7103 registered in the product", async () => (await devices(c.id)).registered || undefined, (RECONCILE_S + 20) * 1000);
    await waitFor("the call ended in the product", async () => ((await activeCalls()).length === 0) || undefined, (RECONCILE_S + 20) * 1000);
    const converged = Date.now() - back;
    const legs = (await cdrsOf("7102")).filter((cdr) => cdr.callerNumber === "7101");
    expect(legs).toHaveLength(2);
    for (const leg of legs) expect(leg).toMatchObject({ disposition: "ANSWERED", hangupCause: "engine_lost" });
    const device = (await devices(c.id)).devices.find((d) => d.registered)!;
    expect(device.contactUri).toMatch(/^sip:7103[^@]*@127\.0\.0\.1:/);
    expect(device.transport).toBe("UDP");
    // the phones registered before stay registered: the engine still holds them
    expect((await devices(a.id)).registered).toBe(true);
    expect((await devices(b.id)).registered).toBe(true);
    process.stderr.write(`reconcile: converged ${converged} ms after Redis came back (ENGINE_RECONCILE_S=${RECONCILE_S}, RECONCILE_INTERVAL=${INTERVAL_S})\n`);
  }, 120_000);

  it("Kamailio restarted (its bindings forgotten): the product's devices go unregistered, each with an UNREGISTERED event, without waiting for the phones", async () => {
    const [d] = await Promise.all([create("7201")]);
    await phone("7201");
    await waitFor("7201 registered in the product", async () => (await devices(d.id)).registered || undefined, 20_000);
    // a snapshot in which 7201 is held: nothing changes
    const seen = registrations.received.length;
    const client = new Redis(redis.url);
    const snapshots = () => client.xlen("rc:pbx:events");
    const before = await snapshots();
    await waitFor("two more snapshots", async () => (await snapshots()) >= before + 4 || undefined, 20_000);
    client.disconnect();
    expect(registrations.received.slice(seen).filter((m) => m.data?.registrationEvents.type === "UNREGISTERED")).toHaveLength(0);

    await kamailio.stop();
    const restarted = Date.now();
    kamailio = await engine();
    await waitFor("every device of the tenant unregistered in the product", async () => {
      for (const number of ["7101", "7102", "7103", "7201"]) if (eventsFor(number, "UNREGISTERED").length === 0) return undefined;
      return true;
    }, (RECONCILE_S + 20) * 1000);
    const converged = Date.now() - restarted;
    expect((await devices(d.id)).registered).toBe(false);
    for (const number of ["7101", "7102", "7103", "7201"]) expect(eventsFor(number, "UNREGISTERED")).toHaveLength(1);
    process.stderr.write(`reconcile: devices unregistered ${converged} ms after Kamailio restarted\n`);
  }, 120_000);

  it("a broken or forged snapshot changes nothing: refused over HTTP, ignored on the stream, and an old one judges nothing newer", async () => {
    const [e] = await Promise.all([create("7301")]);
    await phone("7301");
    await waitFor("7301 registered in the product", async () => (await devices(e.id)).registered || undefined, 20_000);
    const seen = registrations.received.length;

    const part = (extra: Record<string, unknown>) =>
      JSON.stringify({ type: "snapshot", node: "intruder", kind: "location", generation: "1", taken_at: "1", interval: 2, part: 0, parts: 1, data: Buffer.from('{"result":{"Domains":[]}}').toString("base64"), ...extra });
    const client = new Redis(redis.url);
    try {
      for (const bad of [
        part({ data: Buffer.from("not json").toString("base64"), generation: "2" }),
        part({ part: 1, generation: "3" }),
        part({ kind: "everything", generation: "4" }),
        part({ taken_at: "yesterday", generation: "5" }),
        part({ data: undefined, generation: "6" }),
        // well formed, from a node nobody knows, saying it holds nothing — but taken in 1970: nothing the product holds is older
        part({}),
      ]) {
        await client.xadd("rc:pbx:events", "*", "event", bad);
      }
      const before = await client.xlen("rc:pbx:events");
      await waitFor("two more snapshots of the engine", async () => (await client.xlen("rc:pbx:events")) >= before + 4 || undefined, 20_000);
    } finally {
      client.disconnect();
    }
    expect((await devices(e.id)).registered).toBe(true);
    expect(registrations.received.slice(seen).filter((m) => m.data?.registrationEvents.type === "UNREGISTERED")).toHaveLength(0);

    // HTTP ingestion takes telephony events only: a snapshot there is refused, and changes nothing
    const ingestKey = await createKey(ts, "INGEST", null);
    const posted = await postEvents(ts, ingestKey, [JSON.parse(part({ node: "http" })) as unknown]);
    expect(posted.status).toBe(422);
    expect(JSON.stringify(posted.body)).toMatch(/The type must be registration, call or queue/);
    expect((await devices(e.id)).registered).toBe(true);
  }, 120_000);
});
