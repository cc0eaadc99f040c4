import { Redis } from "ioredis";
import { Role } from "../../src/auth/role";
import { STREAM_KEY } from "../../src/ingest/stream-consumer";
import { RegistrationEventsDocument } from "../graphql/generated";
import { requireReal } from "../support/env";
import { createExtension, createKey, createTenant, uniq } from "../support/factories";
import { subscribe, type LiveSubscription } from "../support/live";
import { hasRedisServer, killRedis, startSentinelSetup, type SentinelSetup } from "../support/redis-topology";
import { startTestServer, type TestServer } from "../support/server";
import { waitFor } from "../support/wait";

/**
 * Contract §14, Redis behind Sentinel (issue 25 item 1): the product connects through
 * REDIS_SENTINELS + REDIS_SENTINEL_NAME; the master is killed by PID under a live subscription and
 * a running ingestion; Sentinel promotes the replica. Every change committed before, during and
 * after the failover reaches the subscriber once (what pub/sub lost is relayed again from the event
 * log), ingestion through the stream goes on on the new master, no request hangs, and /readyz says
 * 503 only until the new master is reachable. Its own Redis processes on ports 26380–26384.
 */
const run = requireReal("redis") && requireReal("postgres") && hasRedisServer() ? describe : describe.skip;

const PORTS = { master: 26380, replica: 26381, sentinels: [26382, 26383, 26384] as [number, number, number] };

run("Redis Sentinel failover", () => {
  let setup: SentinelSetup;
  let ts: TestServer;
  let producer: Redis;
  const logs: string[] = [];
  const prefix = `test:sentinel:${uniq()}:`;

  beforeAll(async () => {
    setup = await startSentinelSetup(PORTS);
    ts = await startTestServer({
      redis: false,
      env: { REDIS_SENTINELS: setup.sentinelList, REDIS_SENTINEL_NAME: setup.name, REDIS_PREFIX: prefix, STREAM_CLAIM_IDLE_MS: "2000" },
      logSink: (line) => void logs.push(line),
    });
    // The engine's side: it writes the stream through Sentinel too (ndb_redis, or this client).
    producer = new Redis({ sentinels: setup.sentinels.map((s) => ({ host: "127.0.0.1", port: s.port })), name: setup.name, maxRetriesPerRequest: 20 });
    producer.on("error", () => undefined);
  }, 60_000);

  afterAll(async () => {
    producer?.disconnect();
    await ts?.stop();
    await setup?.stop();
  });

  it("keeps a live subscription whole, ingests on the new master, never hangs, and is 503 only while no master is reachable", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id);
    const ingestKey = await createKey(ts, Role.INGEST, null);
    const sub: LiveSubscription<{ registrationEvents: { device: { contactUri: string } | null } }> = await subscribe(ts, RegistrationEventsDocument, { tenantId: tenant.id }, ts.adminKey);
    const registration = (contact: string) => ({
      type: "registration",
      action: "register",
      domain: tenant.sipDomain,
      extension: ext.extensionNumber,
      contact,
      user_agent: "Yealink SIP-T54W",
      source_address: "198.51.100.20:5060",
      transport: "udp",
      expires: 3600,
    });
    const contact = (tag: string, i: number) => `sip:${ext.extensionNumber}-${tag}${i}@198.51.100.20:5060`;
    const xadd = (c: string) => producer.xadd(`${prefix}${STREAM_KEY}`, "*", "event", JSON.stringify(registration(c)));
    /** Answers within 3 s, or the test fails: no request may hang on Redis. */
    const timed = async (path: string, init: Parameters<TestServer["http"]>[1] = {}) => {
      const started = performance.now();
      const res = await ts.http(path, { ...init, signal: AbortSignal.timeout(3_000) });
      const ms = performance.now() - started;
      return { res, ms };
    };
    const expected: string[] = [];

    // Before: through the stream, on the first master.
    for (let i = 0; i < 3; i++) {
      expected.push(contact("before", i));
      await xadd(contact("before", i));
    }
    await waitFor("the events before the failover", () => expected.every((c) => sub.received.some((m) => m.data?.registrationEvents.device?.contactUri === c)) || undefined, 15_000);
    expect((await timed("/readyz", { key: null })).res.status).toBe(200);

    // The master dies. Changes keep being committed over HTTP while Sentinel elects the replica.
    const killedAt = performance.now();
    await killRedis(setup.master);
    const statuses: Array<{ at: number; status: number }> = [];
    let slowest = 0;
    let promotedAt: number | undefined;
    for (let i = 0; ; i++) {
      const c = contact("during", i);
      const { res, ms } = await timed("/api/events", { key: ingestKey, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(registration(c)) });
      expect(res.status).toBe(200);
      expected.push(c);
      const ready = await timed("/readyz", { key: null });
      slowest = Math.max(slowest, ms, ready.ms);
      statuses.push({ at: performance.now() - killedAt, status: ready.res.status });
      if (promotedAt === undefined && (await setup.masterPort()) === PORTS.replica) promotedAt = performance.now() - killedAt;
      if (promotedAt !== undefined && ready.res.status === 200) break;
      if (performance.now() - killedAt > 30_000) throw new Error(`no failover within 30 s: ${JSON.stringify(statuses)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const readyAgainAt = statuses[statuses.length - 1].at;
    // 503 while no master was reachable, 200 once the new master answers (and not long after Sentinel named it).
    expect(statuses.some((s) => s.status === 503)).toBe(true);
    expect(readyAgainAt - promotedAt!).toBeLessThan(5_000);
    expect(slowest).toBeLessThan(3_000);

    // After: the engine writes the stream on the new master; the consumer group goes on there.
    for (let i = 0; i < 3; i++) {
      expected.push(contact("after", i));
      await xadd(contact("after", i));
    }
    const missing = () => expected.filter((c) => !sub.received.some((m) => m.data?.registrationEvents.device?.contactUri === c));
    await waitFor("every committed change at the subscriber", () => missing().length === 0 || undefined, 20_000, 100).catch((error: Error) => {
      const notes = logs.filter((l) => /restored|relayed|"level":"(warn|error)"/.test(l)).map((l) => l.slice(0, 300));
      throw new Error(`${error.message}: missing ${JSON.stringify(missing())}\n${notes.join("\n")}`);
    });
    const contacts = sub.received.map((m) => m.data?.registrationEvents.device?.contactUri).filter((c): c is string => !!c);
    // Each change once: nothing lost, nothing doubled by the relay-again.
    expect(contacts.filter((c) => expected.includes(c)).sort()).toEqual([...expected].sort());
    const devices: Array<{ n: number }> = await ts.server.db.dataSource.query(`SELECT count(*)::int AS n FROM device WHERE tenant_id = $1 AND contact_uri = ANY($2)`, [Number(tenant.id), expected]);
    expect(devices[0].n).toBe(expected.length);
    const relayedAgain = logs
      .filter((l) => /relayed again from the event log/.test(l))
      .reduce((sum, l) => sum + Number((JSON.parse(l) as { relayed?: number }).relayed ?? 0), 0);
    // eslint-disable-next-line no-console
    console.log(
      `sentinel failover: promoted ${Math.round(promotedAt!)} ms after the kill, /readyz 200 again after ${Math.round(readyAgainAt)} ms, ` +
        `${statuses.filter((s) => s.status === 503).length}/${statuses.length} probes 503, slowest request ${Math.round(slowest)} ms, ` +
        `${expected.length - 6} events committed during the gap, ${relayedAgain} relayed again from the event log`,
    );
    await sub.close();
  }, 90_000);
});
