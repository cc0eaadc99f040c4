import { Cluster } from "ioredis";
import { ConfigError, loadConfig } from "../../src/config/config";
import { topicHashTag } from "../../src/events/redis-topology";
import { STREAM_KEY } from "../../src/ingest/stream-consumer";
import { tenantTopic } from "../../src/subscriptions/topics";
import { RegistrationEventsDocument } from "../graphql/generated";
import { requireReal } from "../support/env";
import { createExtension, createTenant, uniq } from "../support/factories";
import { subscribe } from "../support/live";
import { command, hasRedisServer, startCluster, type ClusterSetup } from "../support/redis-topology";
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

  beforeAll(async () => {
    cluster = await startCluster(PORTS);
    ts = await startTestServer({ redis: false, env: { REDIS_CLUSTER_NODES: cluster.nodeList, REDIS_PREFIX: prefix, STREAM_CLAIM_IDLE_MS: "2000" } });
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
    await waitFor("both tenants' events at their subscribers", () => (contactsA.every((c) => seen(subA).includes(c)) && contactsB.every((c) => seen(subB).includes(c))) || undefined, 20_000, 100);
    expect(seen(subA).sort()).toEqual([...contactsA].sort());
    expect(seen(subB).sort()).toEqual([...contactsB].sort());
    // every entry acknowledged by the group in the cluster
    await waitFor("the group to have acknowledged every entry", async () => Number(((await producer.xpending(`${prefix}${STREAM_KEY}`, "pbx-api")) as [number])[0]) === 0 || undefined);
    expect((await ts.http("/readyz", { key: null })).status).toBe(200);
    await subA.close();
    await subB.close();
  }, 60_000);
});
