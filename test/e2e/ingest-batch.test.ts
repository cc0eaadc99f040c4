import "reflect-metadata";
import { Redis } from "ioredis";
import { ActiveCallEventsDocument, RegistrationEventsDocument, UpdateExtensionDocument } from "../graphql/generated";
import { CONSUMER_GROUP, STREAM_KEY } from "../../src/ingest/stream-consumer";
import { redisUrl, requireReal } from "../support/env";
import { createExtension, createKey, tenantWithKeys, uniq } from "../support/factories";
import { callEvent, postEvents, registrationEvent, subscribe } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";

/**
 * Batches of telephony events (a POST array, the entries of one stream read) are applied many per
 * transaction: a refused event in the middle changes nothing and the others apply, events of one
 * call leg or extension apply in their order even when they fill several transactions, parallel
 * batches over the same rows neither deadlock nor double-apply, and a batch delivered again after
 * a crash is applied once.
 */
let ts: TestServer;
let ingestKey: string;

beforeAll(async () => {
  ts = await startTestServer();
  ingestKey = await createKey(ts, "INGEST", null);
});
afterAll(() => ts?.stop());

const query = <T>(sql: string, params: unknown[] = []): Promise<T[]> => ts.server.db.dataSource.query(sql, params);

async function tenantWith(numbers: string[]) {
  const t = await tenantWithKeys(ts, { maxExtensions: 50 });
  const extensions = [];
  for (const extensionNumber of numbers) extensions.push(await createExtension(ts, t.tenant.id, { extensionNumber }));
  return { ...t, extensions, domain: t.tenant.sipDomain, tenantId: Number(t.tenant.id) };
}

const register = registrationEvent;
const call = callEvent;
const at = (base: number, seconds: number) => new Date(base + seconds * 1000).toISOString();

describe("POST /api/events with an array", () => {
  it("a refused event in the middle changes nothing; the events around it apply", async () => {
    const { domain, tenantId, extensions } = await tenantWith(["2101", "2102", "2103"]);
    await ts.ok(UpdateExtensionDocument, { id: extensions[2].id, input: { status: "DISABLED" } });
    const callId = `mid-${uniq()}`;
    const posted = await postEvents(ts, ingestKey, [
      register(domain, "2101"),
      call(domain, "2102", "start", callId),
      register(domain, "4040"),
      register(domain, "2103"),
      call(domain, "2102", "start", `q-${callId}`, { queue: "9999" }),
      { ...register(domain, "2101"), expires: -1 },
      register("nowhere.example", "2101"),
      call(domain, "2102", "answer", callId),
      register(domain, "2102"),
    ]);
    expect(posted.status).toBe(207);
    expect(posted.body.message).toBe("5 of 9 events were refused; the others were applied.");
    expect(posted.body.data.map((o: { status: string }) => o.status)).toEqual([
      "applied",
      "applied",
      "rejected",
      "rejected",
      "rejected",
      "rejected",
      "rejected",
      "applied",
      "applied",
    ]);
    expect(posted.body.data[2]).toMatchObject({ index: 2, code: "NOT_FOUND", errors: { extension: ["The tenant has no extension 4040."] } });
    expect(posted.body.data[3]).toMatchObject({ index: 3, code: "BAD_USER_INPUT", errors: { extension: ["The extension is disabled."] } });
    expect(posted.body.data[4]).toMatchObject({ index: 4, code: "NOT_FOUND", errors: { queue: ["The tenant has no queue 9999."] } });
    expect(posted.body.data[5]).toMatchObject({ index: 5, code: "BAD_USER_INPUT" });
    expect(posted.body.data[6]).toMatchObject({ index: 6, code: "NOT_FOUND", errors: { domain: ["No tenant has this SIP domain."] } });

    const devices = await query<{ number: string }>(
      `SELECT e.extension_number AS number FROM device d JOIN extension e ON e.id = d.extension_id WHERE d.tenant_id = $1 ORDER BY 1`,
      [tenantId],
    );
    expect(devices.map((d) => d.number)).toEqual(["2101", "2102"]);
    const calls = await query<{ callId: string; state: string }>(`SELECT call_id AS "callId", state FROM active_call WHERE tenant_id = $1`, [tenantId]);
    expect(calls).toEqual([{ callId, state: "answered" }]);
  });

  it("applies many events of one call leg and one extension in their order, across several transactions", async () => {
    const { domain, tenantId, viewerKey, extensions } = await tenantWith(["2201", "2202"]);
    const callId = `leg-${uniq()}`;
    const t0 = Date.now();
    // 600 events of one leg and one extension: more than one transaction's worth, in one lane.
    const holds = Array.from({ length: 149 }, (_, i) => [
      call(domain, "2201", "hold", callId, { occurred_at: at(t0, 10 + 2 * i) }),
      call(domain, "2201", "resume", callId, { occurred_at: at(t0, 11 + 2 * i) }),
    ]).flat();
    const refreshes = Array.from({ length: 300 }, (_, i) => register(domain, "2202", { occurred_at: at(t0, i), expires: 60 + i }));
    const events = [
      call(domain, "2201", "start", callId, { occurred_at: at(t0, 0) }),
      call(domain, "2201", "answer", callId, { occurred_at: at(t0, 5) }),
      ...holds,
      call(domain, "2201", "end", callId, { occurred_at: at(t0, 400), disposition: "answered" }),
      call(domain, "2201", "end", callId, { occurred_at: at(t0, 401) }),
    ];
    // Interleaved: the leg's events and the extension's registrations alternate in the array.
    const mixed = events.flatMap((event, i) => (i < refreshes.length ? [event, refreshes[i]] : [event]));
    const calls = await subscribe(ts, ActiveCallEventsDocument, {}, viewerKey);
    const registrations = await subscribe(ts, RegistrationEventsDocument, {}, viewerKey);
    try {
      const posted = await postEvents(ts, ingestKey, mixed);
      expect(posted.status).toBe(200);
      const outcomes = posted.body.data as Array<{ index: number; status: string; type: string; action: string }>;
      expect(outcomes.map((o) => o.index)).toEqual(mixed.map((_, i) => i));
      const legOutcomes = outcomes.filter((o) => o.type === "call").map((o) => `${o.action}:${o.status}`);
      expect(legOutcomes).toEqual([...events.slice(0, -1).map((e) => `${e.action}:applied`), "end:duplicate"]);
      expect(outcomes.filter((o) => o.type === "registration").map((o) => o.status)).toEqual(Array(300).fill("applied"));

      const ended = await calls.next((d) => d.activeCallEvents.type === "ENDED", 20_000);
      expect(calls.received.map((m) => m.data!.activeCallEvents.type)).toEqual(["STARTED", "ANSWERED", ...Array(149).fill(["HELD", "RESUMED"]).flat(), "ENDED"]);
      expect(ended.activeCallEvents.cdr).toMatchObject({ callId, disposition: "ANSWERED", durationSeconds: 400, billableSeconds: 395 });
      await registrations.next((d) => d.registrationEvents.device.expiresAt === at(t0, 299 + 60 + 299), 20_000);
      expect(registrations.received.map((m) => m.data!.registrationEvents.type)).toEqual(["REGISTERED", ...Array(299).fill("REFRESHED")]);
    } finally {
      await calls.close();
      await registrations.close();
    }
    expect(await query(`SELECT count(*)::int AS n FROM cdr WHERE tenant_id = $1 AND call_id = $2`, [tenantId, callId])).toEqual([{ n: 1 }]);
    expect(await query(`SELECT count(*)::int AS n FROM active_call WHERE tenant_id = $1`, [tenantId])).toEqual([{ n: 0 }]);
    const [device] = await query<{ expiresAt: Date; registeredAt: Date }>(
      `SELECT expires_at AS "expiresAt", registered_at AS "registeredAt" FROM device WHERE extension_id = $1`,
      [extensions[1].id],
    );
    // The last refresh won, and a refresh keeps the first registration's start.
    expect(device.expiresAt.toISOString()).toBe(at(t0, 299 + 359));
    expect(device.registeredAt.toISOString()).toBe(at(t0, 0));
  });

  it("parallel batches over the same legs and extensions neither deadlock nor apply anything twice", async () => {
    const numbers = Array.from({ length: 12 }, (_, i) => String(2300 + i));
    const { domain, tenantId } = await tenantWith(numbers);
    const legs = numbers.map((n) => ({ n, callId: `par-${n}-${uniq()}` }));
    const batch = (order: typeof legs) =>
      order.flatMap(({ n, callId }) => [
        register(domain, n),
        call(domain, n, "start", callId),
        call(domain, n, "answer", callId),
        call(domain, n, "end", callId, { disposition: "answered" }),
      ]);
    // The same events four times, in opposite orders of extensions: each batch locks the others' rows.
    const results = await Promise.all([batch(legs), batch([...legs].reverse()), batch(legs), batch([...legs].reverse())].map((b) => postEvents(ts, ingestKey, b)));
    for (const r of results) expect(r.status).toBe(200);
    const statuses = results.flatMap((r) => r.body.data.map((o: { type: string; action: string; status: string }) => `${o.type}:${o.action}:${o.status}`));
    expect(statuses.filter((s) => s === "call:end:applied")).toHaveLength(legs.length);
    expect(await query(`SELECT count(*)::int AS n FROM cdr WHERE tenant_id = $1`, [tenantId])).toEqual([{ n: legs.length }]);
    expect(await query(`SELECT count(*)::int AS n FROM device WHERE tenant_id = $1`, [tenantId])).toEqual([{ n: legs.length }]);
    expect(await query(`SELECT count(*)::int AS n FROM active_call WHERE tenant_id = $1`, [tenantId])).toEqual([{ n: 0 }]);
  });

  it("a tenant-bound INGEST key reaches only its tenant: another tenant's events in its batch are NOT_FOUND, the rest apply", async () => {
    const own = await tenantWith(["2401"]);
    const other = await tenantWith(["2401"]);
    const key = await createKey(ts, "INGEST", own.tenant.id);
    const posted = await postEvents(ts, key, [register(own.domain, "2401"), register(other.domain, "2401"), { ...register(own.domain, "2401"), domain: undefined, tenant_id: other.tenantId }]);
    expect(posted.status).toBe(207);
    expect(posted.body.data[1]).toMatchObject({ status: "rejected", code: "NOT_FOUND", errors: { domain: ["No tenant has this SIP domain."] } });
    expect(posted.body.data[2]).toMatchObject({ status: "rejected", code: "NOT_FOUND", errors: { tenant_id: ["No tenant has this id."] } });
    expect(await query(`SELECT count(*)::int AS n FROM device WHERE tenant_id = $1`, [other.tenantId])).toEqual([{ n: 0 }]);
    expect(await query(`SELECT count(*)::int AS n FROM device WHERE tenant_id = $1`, [own.tenantId])).toEqual([{ n: 1 }]);
  });
});

const real = requireReal("redis") && requireReal("postgres");

(real ? describe : describe.skip)("the Redis stream, batch by batch", () => {
  let redis: Redis;
  const keys: string[] = [];
  const started: TestServer[] = [];
  beforeAll(() => void (redis = new Redis(redisUrl()!)));
  afterAll(async () => {
    for (const s of started.reverse()) await s.stop();
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });
  const instance = async (env: Record<string, string> = {}): Promise<{ server: TestServer; key: string }> => {
    const prefix = `test:batch:${uniq()}:`;
    const server = await startTestServer({ shareSchemaOf: ts, env: { REDIS_PREFIX: prefix, ...env } });
    started.push(server);
    keys.push(`${prefix}${STREAM_KEY}`);
    return { server, key: `${prefix}${STREAM_KEY}` };
  };
  const xadd = async (key: string, events: unknown[]): Promise<string[]> => {
    const pipeline = redis.pipeline();
    for (const e of events) pipeline.xadd(key, "*", "event", JSON.stringify(e));
    return ((await pipeline.exec()) ?? []).map(([error, id]) => {
      if (error) throw error;
      return id as string;
    });
  };
  async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const pending = async (key: string) => Number(((await redis.xpending(key, CONSUMER_GROUP)) as [number])[0]);
  async function streamCounts(server: TestServer): Promise<Record<string, number>> {
    const counts: Record<string, number> = { applied: 0, duplicate: 0, ignored: 0, rejected: 0 };
    for (const line of (await (await server.http("/metrics", { key: null })).text()).split("\n")) {
      const m = /^ingest_events_total\{([^}]*)\} (\d+)/.exec(line);
      if (m && m[1].includes('source="stream"')) counts[/outcome="(\w+)"/.exec(m[1])![1]] += Number(m[2]);
    }
    return counts;
  }

  it("a refused entry in the middle of a batch is acknowledged and counted; the entries around it apply", async () => {
    const { domain, tenantId } = await tenantWith(["2501", "2502"]);
    const { server, key } = await instance();
    const ids = await xadd(key, [register(domain, "2501"), register(domain, "4040"), { type: "call" }, register(domain, "2502")]);
    await until("four entries handled", async () => (await streamCounts(server)).applied + (await streamCounts(server)).rejected === 4);
    expect(await streamCounts(server)).toMatchObject({ applied: 2, rejected: 2 });
    await until("every entry acknowledged", async () => (await pending(key)) === 0);
    expect(ids).toHaveLength(4);
    expect(await query(`SELECT count(*)::int AS n FROM device WHERE tenant_id = $1`, [tenantId])).toEqual([{ n: 2 }]);
  });

  it("a batch delivered again after its consumer died half-way is applied once", async () => {
    const numbers = Array.from({ length: 10 }, (_, i) => String(2600 + i));
    const { domain, tenantId } = await tenantWith(numbers);
    const prefix = `test:batch:${uniq()}:`;
    const key = `${prefix}${STREAM_KEY}`;
    keys.push(key);
    const legs = numbers.map((n) => ({ n, callId: `crash-${n}-${uniq()}` }));
    const events = legs.flatMap(({ n, callId }) => [
      register(domain, n),
      call(domain, n, "start", callId),
      call(domain, n, "answer", callId),
      call(domain, n, "end", callId, { disposition: "answered" }),
    ]);
    // A consumer that read the whole batch, committed its first half and died before acknowledging.
    await redis.xgroup("CREATE", key, CONSUMER_GROUP, "0", "MKSTREAM");
    await xadd(key, events);
    const read = (await redis.xreadgroup("GROUP", CONSUMER_GROUP, "dead-consumer", "COUNT", 1000, "STREAMS", key, ">")) as Array<[string, unknown[]]>;
    expect(read[0][1]).toHaveLength(events.length);
    const half = events.slice(0, events.length / 2);
    expect((await postEvents(ts, ingestKey, half)).status).toBe(200);

    const server = await startTestServer({ shareSchemaOf: ts, env: { REDIS_PREFIX: prefix, STREAM_CLAIM_IDLE_MS: "200" } });
    started.push(server);
    await until("the dead consumer's batch claimed and acknowledged", async () => (await pending(key)) === 0);
    const counts = await streamCounts(server);
    // The half already committed is recognised: its 15 call events are repeats (a repeated REGISTER
    // is a refresh and applies again, harmlessly); the other half applies.
    expect(counts).toEqual({ applied: events.length - half.length + legs.length / 2, duplicate: 5, ignored: 10, rejected: 0 });
    expect(await query(`SELECT count(*)::int AS n FROM cdr WHERE tenant_id = $1`, [tenantId])).toEqual([{ n: legs.length }]);
    expect(await query(`SELECT count(*)::int AS n FROM active_call WHERE tenant_id = $1`, [tenantId])).toEqual([{ n: 0 }]);
    expect(await query(`SELECT count(*)::int AS n FROM device WHERE tenant_id = $1`, [tenantId])).toEqual([{ n: legs.length }]);
  });
});
