import "reflect-metadata";
import { Redis } from "ioredis";
import { CONSUMER_GROUP, STREAM_KEY } from "../../src/ingest/stream-consumer";
import { createExtension, createTenant, uniq } from "../support/factories";
import { redisUrl, requireReal } from "../support/env";
import { startTestServer, type TestServer } from "../support/server";
import { streamReaderBlocked } from "../support/wait";

/**
 * Contract §6, the Redis stream path: one consumer group shared by every instance, each entry
 * handled once and acknowledged after commit, orphans of a dead consumer claimed, entries written
 * while nothing ran handled at start, bad entries acknowledged, counted and logged without changing
 * anything. Two real instances on one PostgreSQL schema and one Redis.
 */
const real = requireReal("redis") && requireReal("postgres");

(real ? describe : describe.skip)("ingestion from the Redis stream (two instances, one group)", () => streamSuite());

function streamSuite(): void {
  const prefix = (): string => `test:stream:${uniq()}:`;
  const keyOf = (p: string): string => `${p}${STREAM_KEY}`;

  let redis: Redis;
  let a: TestServer;
  let b: TestServer;
  const sharedPrefix = prefix();
  const sharedKey = keyOf(sharedPrefix);
  const usedKeys = new Set<string>([sharedKey]);
  const logs: string[] = [];
  let domain: string;
  let tenantId: number;
  const numbers: string[] = [];

  const started: TestServer[] = [];
  const start = async (p: string, env: Record<string, string> = {}, sink = false): Promise<TestServer> => {
    usedKeys.add(keyOf(p));
    const ts = await startTestServer({
      ...(a ? { shareSchemaOf: a } : {}),
      env: { REDIS_PREFIX: p, ...env },
      ...(sink ? { logSink: (line: string) => void logs.push(line) } : {}),
    });
    started.push(ts);
    return ts;
  };
  const stop = async (ts: TestServer): Promise<void> => {
    started.splice(started.indexOf(ts), 1);
    await ts.stop();
  };

  beforeAll(async () => {
    redis = new Redis(redisUrl()!);
    a = await start(sharedPrefix, {}, true);
    b = await start(sharedPrefix, {}, true);
    const tenant = await createTenant(a, { maxExtensions: 50 });
    domain = tenant.sipDomain;
    tenantId = Number(tenant.id);
    for (let i = 0; i < 20; i++) numbers.push((await createExtension(a, tenant.id)).extensionNumber);
  });

  afterAll(async () => {
    // The first instance owns the schema: stop it last.
    for (const ts of started.filter((t) => t !== a).reverse()) await ts.stop();
    await a?.stop();
    if (redis) {
      await redis.del(...usedKeys);
      redis.disconnect();
    }
  });

  const registration = (extension: string, contact: string) => ({
    type: "registration",
    action: "register",
    domain,
    extension,
    contact,
    user_agent: "Yealink SIP-T54W",
    source_address: "198.51.100.20:5060",
    transport: "udp",
    expires: 3600,
  });

  const xadd = async (key: string, entries: Array<string[]>): Promise<string[]> => {
    const pipeline = redis.pipeline();
    for (const fields of entries) pipeline.xadd(key, "*", ...fields);
    const results = (await pipeline.exec()) ?? [];
    return results.map(([error, id]) => {
      if (error) throw error;
      return id as string;
    });
  };
  const event = (value: unknown): string[] => ["event", JSON.stringify(value)];

  const devicesWith = async (contacts: string[]): Promise<number> =>
    (await a.server.db.dataSource.query(`SELECT count(*)::int AS n FROM device WHERE tenant_id = $1 AND contact_uri = ANY($2)`, [tenantId, contacts]))[0].n;
  const tenantDevices = async (): Promise<number> =>
    (await a.server.db.dataSource.query(`SELECT count(*)::int AS n FROM device WHERE tenant_id = $1`, [tenantId]))[0].n;

  const pending = async (key: string): Promise<number> => Number(((await redis.xpending(key, CONSUMER_GROUP)) as [number])[0]);
  /** The group has been handed every entry up to `lastId`, and none is left unacknowledged. */
  const drained = async (key: string, lastId: string): Promise<boolean> => {
    const groups = (await redis.xinfo("GROUPS", key)) as Array<Array<string | number>>;
    const group = groups.map(toRecord).find((g) => g.name === CONSUMER_GROUP);
    return group !== undefined && group["last-delivered-id"] === lastId && Number(group.pending) === 0;
  };
  const consumers = async (key: string): Promise<string[]> =>
    ((await redis.xinfo("CONSUMERS", key, CONSUMER_GROUP)) as Array<Array<string | number>>).map((c) => String(toRecord(c).name));

  async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** ingest_events_total{source="stream"} by outcome, summed over the given instances. */
  async function streamCounts(...servers: TestServer[]): Promise<Record<string, number>> {
    const counts: Record<string, number> = { applied: 0, duplicate: 0, ignored: 0, rejected: 0, abandoned: 0 };
    for (const ts of servers) {
      const text = await (await ts.http("/metrics", { key: null })).text();
      for (const line of text.split("\n")) {
        const m = /^ingest_events_total\{([^}]*)\} (\d+)/.exec(line);
        if (m && m[1].includes('source="stream"')) counts[/outcome="(\w+)"/.exec(m[1])![1]] += Number(m[2]);
        const abandoned = /^ingest_stream_entries_abandoned_total (\d+)/.exec(line);
        if (abandoned) counts.abandoned += Number(abandoned[1]);
      }
    }
    return counts;
  }
  const delta = (after: Record<string, number>, before: Record<string, number>) =>
    Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));

  it("hands each of 200 entries to exactly one of two instances and acknowledges every one", async () => {
    const before = await streamCounts(a, b);
    const contacts = Array.from({ length: 200 }, (_, i) => `sip:${numbers[i % 20]}-${i}-${uniq()}@198.51.100.20:5060`);
    const ids = await xadd(sharedKey, contacts.map((contact, i) => event(registration(numbers[i % 20], contact))));

    await until("200 devices and a drained group", async () => (await devicesWith(contacts)) === 200 && (await drained(sharedKey, ids[ids.length - 1])));
    expect(await pending(sharedKey)).toBe(0);
    // Handled once each: the two instances together applied exactly 200, nothing twice.
    expect(delta(await streamCounts(a, b), before)).toEqual({ applied: 200, duplicate: 0, ignored: 0, rejected: 0, abandoned: 0 });
    const perContact: Array<{ n: number }> = await a.server.db.dataSource.query(
      `SELECT count(*)::int AS n FROM device WHERE tenant_id = $1 AND contact_uri = ANY($2) GROUP BY contact_uri HAVING count(*) > 1`,
      [tenantId, contacts],
    );
    expect(perContact).toEqual([]);
    // Both instances read through the one group; neither has its own copy of the stream.
    expect(await consumers(sharedKey)).toHaveLength(2);
  });

  it("acknowledges malformed and refused entries, counts and logs them, and changes nothing", async () => {
    const before = await streamCounts(a, b);
    const devicesBefore = await tenantDevices();
    logs.length = 0;
    const ids = await xadd(sharedKey, [
      ["event", "{not json"],
      ["payload", JSON.stringify(registration(numbers[0], "sip:nofield@198.51.100.9"))],
      event({ type: "registration", action: "register", domain, extension: "12ab", secret: "hunter2-never-logged", expires: 60 }),
      event(registration("99999", "sip:unknown@198.51.100.9")),
      event([registration(numbers[0], "sip:array@198.51.100.9")]),
    ]);

    await until("the bad entries acknowledged", () => drained(sharedKey, ids[ids.length - 1]));
    expect(delta(await streamCounts(a, b), before)).toEqual({ applied: 0, duplicate: 0, ignored: 0, rejected: 5, abandoned: 0 });
    expect(await tenantDevices()).toBe(devicesBefore);

    const warnings = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "rejected a telephony event from the stream");
    expect(warnings.map((w) => w.entryId).sort()).toEqual([...ids].sort());
    const byEntry = new Map(warnings.map((w) => [w.entryId, w]));
    expect(byEntry.get(ids[0])).toMatchObject({ level: "warn", code: "BAD_USER_INPUT", errors: { event: [expect.stringMatching(/not valid JSON/)] } });
    expect(byEntry.get(ids[1])).toMatchObject({ errors: { event: [expect.stringMatching(/no event field/)] } });
    expect(byEntry.get(ids[2])).toMatchObject({
      type: "registration",
      action: "register",
      extension: "12ab",
      domain,
      errors: { extension: [expect.stringMatching(/digits/)], contact: expect.arrayContaining([expect.stringMatching(/contact/)]) },
    });
    expect(byEntry.get(ids[3])).toMatchObject({ code: "NOT_FOUND", extension: "99999", errors: { extension: [expect.stringMatching(/99999/)] } });
    expect(byEntry.get(ids[4])).toMatchObject({ errors: { event: [expect.any(String)] } });
    // The entry itself never reaches a log line, so neither does anything secret it carried.
    expect(logs.join("\n")).not.toContain("hunter2");
  });

  it("handles entries written while no instance ran, when one starts (new group and existing group)", async () => {
    const p = prefix();
    const key = keyOf(p);
    const first = Array.from({ length: 5 }, (_, i) => `sip:offline-${i}-${uniq()}@203.0.113.5`);
    const firstIds = await xadd(key, first.map((c, i) => event(registration(numbers[i], c))));
    expect(await redis.exists(key)).toBe(1);

    // A claim interval of 5 s (half the idle time): the reader blocks 5 s at a time.
    const c = await start(p, { STREAM_CLAIM_IDLE_MS: "10000" });
    await until("entries written before the group existed", async () => (await devicesWith(first)) === 5 && (await drained(key, firstIds[4])));
    const [consumer] = await consumers(key);
    await until("the reader blocked in XREADGROUP", async () => streamReaderBlocked(await redis.client("LIST"), `${consumer} `));
    const startedAt = Date.now();
    await stop(c);
    // Stopping cuts the blocked XREADGROUP rather than waiting out its 5 s.
    expect(Date.now() - startedAt).toBeLessThan(4_000);

    const second = Array.from({ length: 5 }, (_, i) => `sip:offline2-${i}-${uniq()}@203.0.113.5`);
    const secondIds = await xadd(key, second.map((contact, i) => event(registration(numbers[i], contact))));
    // With every instance stopped nobody reads them: the group has delivered nothing past the first batch.
    expect(await drained(key, firstIds[4])).toBe(true);
    expect(await devicesWith(second)).toBe(0);

    const d = await start(p);
    await until("entries written while every instance was down", async () => (await devicesWith(second)) === 5 && (await drained(key, secondIds[4])));
    expect(await streamCounts(d)).toMatchObject({ applied: 5, rejected: 0 });
    await stop(d);
  });

  it("leaves an entry pending while its handling fails (database trouble) and applies it on a retry", async () => {
    const p = prefix();
    const key = keyOf(p);
    const f = await start(p);
    const service = f.server.services.ingest;
    const original = service.ingestMany.bind(service);
    let failures = 0;
    service.ingestMany = async (ctx, raws, options) => {
      if (failures < 2) {
        failures++;
        throw new Error("Connection terminated unexpectedly");
      }
      return original(ctx, raws, options);
    };
    const contact = `sip:retry-${uniq()}@192.0.2.90`;
    const [id] = await xadd(key, [event(registration(numbers[5], contact))]);
    await until("the entry applied after two failures", async () => (await devicesWith([contact])) === 1 && (await drained(key, id)));
    expect(failures).toBe(2);
    expect(await streamCounts(f)).toMatchObject({ applied: 1, rejected: 0, abandoned: 0 });
    await stop(f);
  });

  it("claims entries left pending by a dead consumer, abandons a poison entry, and prunes the dead consumers", async () => {
    const p = prefix();
    const key = keyOf(p);
    await redis.xgroup("CREATE", key, CONSUMER_GROUP, "0", "MKSTREAM");
    const orphan = `sip:orphan-${uniq()}@192.0.2.77`;
    const poison = `sip:poison-${uniq()}@192.0.2.78`;
    const [orphanId] = await xadd(key, [event(registration(numbers[3], orphan))]);
    // A consumer that read the entry and died before acknowledging it.
    await redis.xreadgroup("GROUP", CONSUMER_GROUP, "dead-instance", "COUNT", 10, "STREAMS", key, ">");
    const [poisonId] = await xadd(key, [event(registration(numbers[4], poison))]);
    await redis.xreadgroup("GROUP", CONSUMER_GROUP, "dead-poisoned", "COUNT", 10, "STREAMS", key, ">");
    // As if every instance that took it had crashed on it: delivered 50 times already.
    await redis.xclaim(key, CONSUMER_GROUP, "dead-poisoned", 0, poisonId, "IDLE", 60_000, "RETRYCOUNT", 50);
    expect(await pending(key)).toBe(2);

    const e = await start(p, { STREAM_CLAIM_IDLE_MS: "500" });
    await until("the orphan applied and both entries acknowledged", async () => (await devicesWith([orphan])) === 1 && (await pending(key)) === 0);
    expect(await devicesWith([poison])).toBe(0);
    expect(await streamCounts(e)).toMatchObject({ applied: 1, rejected: 1, abandoned: 1 });
    expect((await redis.xrange(key, "-", "+")).map(([id]) => id)).toEqual([orphanId, poisonId]);

    // Consumers that hold nothing and stayed idle for 10 x STREAM_CLAIM_IDLE_MS are removed; the live one stays.
    await until("the dead consumers pruned", async () => (await consumers(key)).length === 1);
    expect(await consumers(key)).not.toEqual(expect.arrayContaining(["dead-instance", "dead-poisoned"]));
    await stop(e);
  });

  it("another setup on the same Redis with its own REDIS_PREFIX reads its own stream only: neither takes the other's entries", async () => {
    // Its own database too, so an entry it took from this setup's stream would show as refused there.
    const otherPrefix = prefix();
    usedKeys.add(keyOf(otherPrefix));
    const other = await startTestServer({ env: { REDIS_PREFIX: otherPrefix } });
    try {
      const otherTenant = await createTenant(other);
      const otherNumber = (await createExtension(other, otherTenant.id)).extensionNumber;
      const before = await streamCounts(a, b);
      const mine = `sip:${numbers[1]}-mine-${uniq()}@198.51.100.21:5060`;
      const [mineId] = await xadd(sharedKey, [event(registration(numbers[1], mine))]);
      const [theirsId] = await xadd(keyOf(otherPrefix), [
        event({ ...registration(otherNumber, `sip:${otherNumber}-theirs@198.51.100.22:5060`), domain: otherTenant.sipDomain }),
      ]);
      await until("each setup's entry handled by its own group", async () => (await drained(sharedKey, mineId)) && (await drained(keyOf(otherPrefix), theirsId)));
      expect(await devicesWith([mine])).toBe(1);
      const theirs: Array<{ n: number }> = await other.server.db.dataSource.query(`SELECT count(*)::int AS n FROM device WHERE tenant_id = $1`, [Number(otherTenant.id)]);
      expect(theirs[0].n).toBe(1);
      // Each applied exactly its own entry and refused nothing: neither read the other's stream.
      expect(delta(await streamCounts(a, b), before)).toEqual({ applied: 1, duplicate: 0, ignored: 0, rejected: 0, abandoned: 0 });
      expect(await streamCounts(other)).toEqual({ applied: 1, duplicate: 0, ignored: 0, rejected: 0, abandoned: 0 });
      expect(await consumers(keyOf(otherPrefix))).toHaveLength(1);
    } finally {
      await other.stop();
    }
  });
}

function toRecord(flat: Array<string | number>): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}
