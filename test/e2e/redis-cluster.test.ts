import { Cluster } from "ioredis";
import { Role } from "../../src/auth/role";
import { ConfigError, loadConfig } from "../../src/config/config";
import { topicHashTag } from "../../src/events/redis-topology";
import { STREAM_KEY } from "../../src/ingest/stream-consumer";
import { tenantTopic } from "../../src/subscriptions/topics";
import { RegistrationEventsDocument } from "../graphql/generated";
import { requireReal } from "../support/env";
import { createExtension, createKey, createTenant, uniq } from "../support/factories";
import { subscribe } from "../support/live";
import { command, hasRedisServer, killRedis, startCluster, type ClusterSetup } from "../support/redis-topology";
import { startTestServer, type TestServer } from "../support/server";
import { waitFor } from "../support/wait";

/**
 * Contract §14, Redis Cluster (issue 25 item 1): three masters built by the test (ports
 * 26390–26392). Live events travel by sharded pub/sub (SSUBSCRIBE/SPUBLISH) on channels hash-tagged
 * by tenant, so tenants on different shards are served by different masters; the engine's events go
 * through the stream and its consumer group in the cluster.
 */
const run = requireReal("redis") && requireReal("postgres") && hasRedisServer() ? describe : describe.skip;

const PORTS = [26390, 26391, 26392];

describe("Redis topology configuration", () => {
  const refused = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error("accepted");
  };
  it("accepts each topology and refuses incomplete, mixed or malformed ones with a line that says what to set", () => {
    expect(loadConfig({ REDIS_SENTINELS: "10.0.0.1:26379, 10.0.0.2:26379", REDIS_SENTINEL_NAME: "pbx" }).redis).toEqual({
      kind: "sentinel",
      name: "pbx",
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "10.0.0.2", port: 26379 },
      ],
    });
    expect(loadConfig({ REDIS_CLUSTER_NODES: "redis-a:6379,[::1]:7000" }).redis).toEqual({ kind: "cluster", nodes: [{ host: "redis-a", port: 6379 }, { host: "::1", port: 7000 }] });
    expect(loadConfig({ REDIS_URL: "redis://h:6379" }).redis).toEqual({ kind: "single", url: "redis://h:6379" });
    expect(loadConfig({}).redis).toBeUndefined();
    expect(refused({ REDIS_SENTINELS: "10.0.0.1:26379" })).toMatch(/REDIS_SENTINELS needs REDIS_SENTINEL_NAME/);
    expect(refused({ REDIS_SENTINEL_NAME: "pbx" })).toMatch(/REDIS_SENTINEL_NAME is set without REDIS_SENTINELS/);
    expect(refused({ REDIS_URL: "redis://h:6379", REDIS_CLUSTER_NODES: "h:7000" })).toMatch(/REDIS_URL and REDIS_CLUSTER_NODES are both set: set one of/);
    expect(refused({ REDIS_SENTINELS: "h:1", REDIS_SENTINEL_NAME: "x", REDIS_CLUSTER_NODES: "h:7000" })).toMatch(/REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set/);
    expect(refused({ REDIS_CLUSTER_NODES: "h:7000,h" })).toMatch(/REDIS_CLUSTER_NODES must list host:port pairs separated by commas.*"h" is not one/);
    expect(refused({ REDIS_CLUSTER_NODES: "h:70000" })).toMatch(/"h:70000" is not one/);
    expect(refused({ REDIS_SENTINELS: "h:1", REDIS_SENTINEL_NAME: "no spaces" })).toMatch(/REDIS_SENTINEL_NAME must be a master name/);
    expect(refused({ REDIS_CLUSTER_NODES: "h:7000", REDIS_PREFIX: "{x}" })).toMatch(/REDIS_PREFIX must not contain \{ or \}/);
  });
});

run("Redis Cluster: sharded pub/sub by tenant, the stream in the cluster", () => {
  let cluster: ClusterSetup;
  let ts: TestServer;
  let producer: Cluster;
  const prefix = `test-cluster-${uniq()}:`;
  /** The server's log (info and up): printed when events do not arrive. */
  const serverLog: string[] = [];

  beforeAll(async () => {
    cluster = await startCluster(PORTS);
    ts = await startTestServer({
      redis: false,
      env: { REDIS_CLUSTER_NODES: cluster.nodeList, REDIS_PREFIX: prefix, STREAM_CLAIM_IDLE_MS: "2000", LOG_LEVEL: "info" },
      logSink: (line) => serverLog.push(line),
    });
    producer = new Cluster(PORTS.map((port) => ({ host: "127.0.0.1", port })));
  }, 60_000);

  afterAll(async () => {
    producer?.disconnect();
    await ts?.stop();
    await cluster?.stop();
  });

  /** The port of the master serving a key's slot. */
  const ownerOf = async (key: string): Promise<number> => {
    const slot = Number(await command(PORTS[0], "CLUSTER", "KEYSLOT", key));
    const slots = (await command(PORTS[0], "CLUSTER", "SLOTS")) as Array<[number, number, [string, number]]>;
    const range = slots.find(([from, to]) => slot >= from && slot <= to)!;
    return Number(range[2][1]);
  };
  const channelOf = (tenantId: number) => {
    const topic = tenantTopic("registrations", tenantId);
    return `${prefix}pbx:{${topicHashTag(topic)}}:topic:${topic}`;
  };

  it("serves tenants on different shards through their own masters, each subscriber only its tenant's events, ingested from the stream", async () => {
    // Tenants until two of them live on different masters.
    const tenants: Array<{ id: string; sipDomain: string; port: number }> = [];
    while (new Set(tenants.map((t) => t.port)).size < 2) {
      const t = await createTenant(ts);
      tenants.push({ id: t.id, sipDomain: t.sipDomain, port: await ownerOf(channelOf(Number(t.id))) });
      if (tenants.length > 20) throw new Error("20 tenants all on one shard");
    }
    const a = tenants[0];
    const b = tenants.find((t) => t.port !== a.port)!;
    const extA = await createExtension(ts, a.id);
    const extB = await createExtension(ts, b.id);
    type Reg = { registrationEvents: { tenantId: string; device: { contactUri: string } | null } };
    const subA = await subscribe<Reg, { tenantId: string }>(ts, RegistrationEventsDocument, { tenantId: a.id }, ts.adminKey);
    const subB = await subscribe<Reg, { tenantId: string }>(ts, RegistrationEventsDocument, { tenantId: b.id }, ts.adminKey);

    // Sharded pub/sub: each tenant's channel is SSUBSCRIBEd on the master that owns its slot, and only there.
    for (const t of [a, b]) {
      await waitFor(`tenant ${t.id}'s shard channel on its master`, async () => ((await command(t.port, "PUBSUB", "SHARDCHANNELS")) as string[]).includes(channelOf(Number(t.id))) || undefined);
      for (const port of PORTS.filter((p) => p !== t.port)) expect((await command(port, "PUBSUB", "SHARDCHANNELS")) as string[]).not.toContain(channelOf(Number(t.id)));
      // and not on classic pub/sub, which a cluster broadcasts to every node
      expect((await command(t.port, "PUBSUB", "CHANNELS")) as string[]).not.toContain(channelOf(Number(t.id)));
    }

    // The engine's events, through the stream (one key, its consumer group beside it in the same slot).
    const registration = (domain: string, extension: string, contact: string) =>
      JSON.stringify({ type: "registration", action: "register", domain, extension, contact, user_agent: "Yealink SIP-T54W", source_address: "198.51.100.20:5060", transport: "udp", expires: 3600 });
    const contactsA = [1, 2, 3].map((i) => `sip:${extA.extensionNumber}-${i}@198.51.100.21:5060`);
    const contactsB = [1, 2, 3].map((i) => `sip:${extB.extensionNumber}-${i}@198.51.100.22:5060`);
    for (let i = 0; i < 3; i++) {
      await producer.xadd(`${prefix}${STREAM_KEY}`, "*", "event", registration(a.sipDomain, extA.extensionNumber, contactsA[i]));
      await producer.xadd(`${prefix}${STREAM_KEY}`, "*", "event", registration(b.sipDomain, extB.extensionNumber, contactsB[i]));
    }
    const seen = (sub: typeof subA) => sub.received.map((m) => m.data?.registrationEvents.device?.contactUri).filter((c): c is string => !!c);
    await waitFor("both tenants' events at their subscribers", () => (contactsA.every((c) => seen(subA).includes(c)) && contactsB.every((c) => seen(subB).includes(c))) || undefined, 20_000, 100).catch(async (error: Error) => {
      // which side lost them: the ingestion group (pending, lag) or the live delivery
      const groups = await producer.xinfo("GROUPS", `${prefix}${STREAM_KEY}`).catch((e: Error) => e.message);
      // what was committed (sequence, type, contact) and what each subscriber received, with sequences
      const logged = await ts.server.db.dataSource
        .query(`SELECT tenant_id, sequence::text, type, payload->'device'->>'contactUri' AS contact FROM event_log WHERE tenant_id = ANY($1) ORDER BY tenant_id, sequence`, [[Number(a.id), Number(b.id)]])
        .catch((e: Error) => e.message);
      const received = (sub: typeof subA) => sub.received.map((m) => JSON.stringify(m.data ?? m)).join("\n    ");
      const warnings = serverLog.filter((l) => !/"msg":"request"/.test(l)).slice(-40);
      throw new Error(
        `${error.message}: A saw ${JSON.stringify(seen(subA))}, B saw ${JSON.stringify(seen(subB))}; the stream's groups: ${JSON.stringify(groups)}; ` +
          `the event log: ${JSON.stringify(logged)}\n  A received:\n    ${received(subA)}\n  B received:\n    ${received(subB)}\n  server log:\n${warnings.join("\n")}`,
        { cause: error },
      );
    });
    expect(seen(subA).sort()).toEqual([...contactsA].sort());
    expect(seen(subB).sort()).toEqual([...contactsB].sort());
    // every entry acknowledged by the group in the cluster
    await waitFor("the group to have acknowledged every entry", async () => Number(((await producer.xpending(`${prefix}${STREAM_KEY}`, "pbx-api")) as [number])[0]) === 0 || undefined);
    expect((await ts.http("/readyz", { key: null })).status).toBe(200);
    await subA.close();
    await subB.close();
  }, 60_000);
});

const FAILOVER_PORTS = [26393, 26394, 26395, 26396, 26397, 26398];

run("Redis Cluster: a master killed under a live subscription", () => {
  let cluster: ClusterSetup;
  let ts: TestServer;
  let producer: Cluster;
  const logs: string[] = [];
  const prefix = `test-cluster-fo-${uniq()}:`;

  beforeAll(async () => {
    cluster = await startCluster(FAILOVER_PORTS, 1);
    ts = await startTestServer({
      redis: false,
      env: { REDIS_CLUSTER_NODES: cluster.nodeList, REDIS_PREFIX: prefix, STREAM_CLAIM_IDLE_MS: "2000" },
      logSink: (line) => void logs.push(line),
    });
    producer = new Cluster(FAILOVER_PORTS.map((port) => ({ host: "127.0.0.1", port })), { retryDelayOnClusterDown: 300, retryDelayOnFailover: 300 });
    producer.on("error", () => undefined);
  }, 90_000);

  afterAll(async () => {
    producer?.disconnect();
    await ts?.stop();
    await cluster?.stop();
  });

  /** The port of the master serving a key's slot, asked of any node that answers. */
  const ownerOf = async (key: string, ports = FAILOVER_PORTS): Promise<number | undefined> => {
    for (const port of ports) {
      try {
        const slot = Number(await command(port, "CLUSTER", "KEYSLOT", key));
        const slots = (await command(port, "CLUSTER", "SLOTS")) as Array<[number, number, [string, number]]>;
        const range = slots.find(([from, to]) => slot >= from && slot <= to);
        return range ? Number(range[2][1]) : undefined;
      } catch {
        // that node is down: ask the next
      }
    }
    return undefined;
  };

  it("relays again what the dead shard lost, keeps ingesting, and never hangs a request", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id);
    const ingestKey = await createKey(ts, Role.INGEST, null);
    const topic = tenantTopic("registrations", Number(tenant.id));
    const channel = `${prefix}pbx:{${topicHashTag(topic)}}:topic:${topic}`;
    type Reg = { registrationEvents: { device: { contactUri: string } | null } };
    const sub = await subscribe<Reg, { tenantId: string }>(ts, RegistrationEventsDocument, { tenantId: tenant.id }, ts.adminKey);
    const registration = (c: string) => ({ type: "registration", action: "register", domain: tenant.sipDomain, extension: ext.extensionNumber, contact: c, user_agent: "Yealink SIP-T54W", source_address: "198.51.100.20:5060", transport: "udp", expires: 3600 });
    const contact = (tag: string, i: number) => `sip:${ext.extensionNumber}-${tag}${i}@198.51.100.23:5060`;
    const post = async (c: string) => {
      const started = performance.now();
      const res = await ts.http("/api/events", { key: ingestKey, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(registration(c)), signal: AbortSignal.timeout(3_000) });
      expect(res.status).toBe(200);
      return performance.now() - started;
    };
    const expected: string[] = [];
    const seen = () => sub.received.map((m) => m.data?.registrationEvents.device?.contactUri).filter((c): c is string => !!c);

    expected.push(contact("before", 0));
    await post(contact("before", 0));
    await waitFor("the event before the kill", () => seen().includes(contact("before", 0)) || undefined);

    const owner = (await ownerOf(channel))!;
    const victim = cluster.nodes.find((n) => n.port === owner)!;
    const killedAt = performance.now();
    await killRedis(victim);
    let slowest = 0;
    let promotedAt: number | undefined;
    const survivors = FAILOVER_PORTS.filter((p) => p !== owner);
    for (let i = 0; ; i++) {
      const c = contact("during", i);
      slowest = Math.max(slowest, await post(c));
      expected.push(c);
      const now = await ownerOf(channel, survivors);
      if (promotedAt === undefined && now !== undefined && now !== owner && /cluster_state:ok/.test(String(await command(now, "CLUSTER", "INFO")))) promotedAt = performance.now() - killedAt;
      if (promotedAt !== undefined && performance.now() - killedAt > promotedAt + 1_000) break;
      if (performance.now() - killedAt > 40_000) throw new Error("no replica took over within 40 s");
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(slowest).toBeLessThan(3_000);

    // the engine's side: the stream in the healed cluster
    for (let i = 0; i < 2; i++) {
      expected.push(contact("after", i));
      await producer.xadd(`${prefix}${STREAM_KEY}`, "*", "event", JSON.stringify(registration(contact("after", i))));
    }
    const missing = () => expected.filter((c) => !seen().includes(c));
    await waitFor("every committed change at the subscriber", () => missing().length === 0 || undefined, 40_000, 100).catch((error: Error) => {
      const notes = logs.filter((l) => /restored|relayed|"level":"(warn|error)"/.test(l)).map((l) => l.slice(0, 300));
      throw new Error(`${error.message}: missing ${JSON.stringify(missing())}\n${notes.join("\n")}`);
    });
    expect(seen().filter((c) => expected.includes(c)).sort()).toEqual([...expected].sort());
    const relayedAgain = logs.filter((l) => /relayed again from the event log/.test(l)).reduce((sum, l) => sum + Number((JSON.parse(l) as { relayed?: number }).relayed ?? 0), 0);
    // eslint-disable-next-line no-console
    console.log(
      `cluster master killed: replica took the slot ${Math.round(promotedAt!)} ms after the kill, all ${expected.length} events at the subscriber ` +
        `${Math.round(performance.now() - killedAt)} ms after it, ${relayedAgain} relayed again from the event log, slowest request ${Math.round(slowest)} ms`,
    );
    await sub.close();
  }, 120_000);
});
