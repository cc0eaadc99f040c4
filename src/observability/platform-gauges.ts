import { Counter, Gauge } from "prom-client";
import { connectRedis, type RedisClient, type RedisTopology } from "../events/redis-topology";
import type { DataSource } from "typeorm";
import type { Metrics } from "./metrics";
import { CONSUMER_GROUP, STREAM_KEY } from "../ingest/stream-consumer";

/**
 * The PBX's own figures on /metrics, read when Prometheus scrapes: platform totals only (never a
 * tenant label: a tenant count is unbounded, and one tenant's figures are not another's business).
 * Database gauges are one statement per scrape; the stream's lag and pending entries come from
 * XINFO GROUPS when REDIS_URL is set.
 */
export function registerPlatformGauges(metrics: Metrics, dataSource: DataSource, options: { redis?: RedisTopology; redisPrefix: string }): { close(): void } {
  const registry = metrics.registry;
  let snapshot: Promise<{ devices: number; calls: number; waiting: number }> | undefined;
  // The three gauges share one statement per scrape.
  const read = () =>
    (snapshot ??= dataSource
      .query(
        `SELECT (SELECT count(*) FROM device WHERE unregistered_at IS NULL AND expires_at > now())::int AS devices,
                (SELECT count(*) FROM active_call)::int AS calls,
                (SELECT count(*) FROM queue_call WHERE answered_at IS NULL AND abandoned_at IS NULL)::int AS waiting`,
      )
      .then((rows: Array<{ devices: number; calls: number; waiting: number }>) => rows[0])
      .finally(() => setTimeout(() => (snapshot = undefined), 0)));
  const dbGauge = (name: string, help: string, pick: (s: { devices: number; calls: number; waiting: number }) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(pick(await read()));
      },
    });
  dbGauge("pbx_devices_registered", "SIP devices registered now (not unregistered, not past expiry), every tenant.", (s) => s.devices);
  dbGauge("pbx_active_calls", "Call legs in progress, every tenant.", (s) => s.calls);
  dbGauge("pbx_queue_callers_waiting", "Callers waiting in queues (joined, neither answered nor abandoned), every tenant.", (s) => s.waiting);

  let redis: RedisClient | undefined;
  let connecting: Promise<void> | undefined;
  // One connect for the collectors of a scrape (they run side by side; a second connect() would fail).
  const ready = (conn: RedisClient) => (conn.status === "wait" ? (connecting ??= conn.connect()) : Promise.resolve());
  // Kept by the SIP engine itself (deploy/kamailio/routes/calls.cfg, CALL_UNROUTED): a call to no
  // active extension has no tenant data to record, so the engine INCRs this key beside the stream.
  const unroutedKey = `${options.redisPrefix}${STREAM_KEY}${UNROUTED_CALLS_SUFFIX}`;
  new Counter({
    name: "pbx_engine_calls_unrouted_total",
    help: "Calls the SIP engine refused because the dialled number is no active extension of the caller's tenant (unknown, disabled or deleted); counted by the engine in Redis.",
    registers: [registry],
    async collect() {
      if (!redis) return;
      const conn = redis;
      const count = await (async () => {
        await ready(conn);
        return Number((await conn.get(unroutedKey)) ?? 0);
      })().catch(() => undefined);
      if (count === undefined || !Number.isFinite(count)) return;
      this.reset();
      this.inc(count);
    },
  });
  if (options.redis) {
    // commandTimeout: an XINFO in flight when Redis drops is otherwise held until Redis returns (redis/ioredis#2197).
    redis = connectRedis(options.redis, { connectionName: "pbx-api:gauges", lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 1_000 });
    redis.on("error", () => undefined); // the pub/sub reports Redis outages; a scrape just lacks these figures
    const key = `${options.redisPrefix}${STREAM_KEY}`;
    const conn = redis;
    let group: Promise<{ lag: number; pending: number } | null> | undefined;
    const readGroup = () =>
      (group ??= (async () => {
        await ready(conn);
        const groups = (await conn.xinfo("GROUPS", key)) as Array<Array<string | number>>;
        for (const fields of groups) {
          const info = new Map<string, string | number>();
          for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1]);
          if (info.get("name") === CONSUMER_GROUP) return { lag: Number(info.get("lag") ?? 0), pending: Number(info.get("pending") ?? 0) };
        }
        return null;
      })()
        .catch(() => null)
        .finally(() => setTimeout(() => (group = undefined), 0)));
    new Gauge({
      name: "pbx_event_stream_lag",
      help: "Entries of the Redis stream pbx:events not yet delivered to the consumer group.",
      registers: [registry],
      async collect() {
        const g = await readGroup();
        if (g) this.set(g.lag);
      },
    });
    new Gauge({
      name: "pbx_event_stream_pending",
      help: "Entries of the Redis stream pbx:events delivered but not yet acknowledged.",
      registers: [registry],
      async collect() {
        const g = await readGroup();
        if (g) this.set(g.pending);
      },
    });
  }
  return { close: () => redis?.disconnect() };
}

/** The engine's count of unrouted calls lives in the Redis key <stream>:unrouted-calls. */
export const UNROUTED_CALLS_SUFFIX = ":unrouted-calls";

/** The label for an ingested event's kind: one of the kinds the path knows, never a client's string. */
export function ingestTypeLabel(event: unknown): string {
  const type = (event as { type?: unknown } | null)?.type;
  return type === "registration" || type === "call" || type === "queue" || type === "voicemail" || type === "trunk" ? type : "unknown";
}
