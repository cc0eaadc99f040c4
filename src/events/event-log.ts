import type { DataSource, EntityManager } from "typeorm";
import { Gauge, Histogram } from "prom-client";
import { badInput } from "../common/errors";
import type { Logger } from "../common/logger";
import type { Metrics } from "../observability/metrics";
import { EVENT_KINDS, type PendingEvent } from "../subscriptions/events";
import { allTenantsTopic, tenantTopic } from "../subscriptions/topics";
import type { PubSubEngine } from "./pubsub";

/** A logged event as the relay and webhooks see it. */
export interface LoggedEvent extends PendingEvent {
  sequence: string;
}

export interface EventLogOptions {
  /** How often every instance looks for events committed but not relayed (a crashed committer's). */
  pollMs: number;
  retentionHours: number;
  /** Test hook: relay passes start this late, so a test can kill the process between commit and publication. */
  relayDelayMs: number;
}

/** Events relayed per pass; a longer backlog takes several passes, each its own short transaction. */
const RELAY_BATCH = 500;
/** Rows deleted per pruning statement: whole chunks, off the hot path. */
const PRUNE_BATCH = 10_000;
const PRUNE_EVERY_MS = 10 * 60_000;
/** A nudge that found another instance relaying the tenant retries this soon (that pass may predate our commit). */
const BUSY_RETRY_MS = 25;
const MAX_CACHED = 20_000;

/** A relay pass whose events pub/sub did not all take: rolled back, made again by the poller. */
class RelayPublishFailed extends Error {
  constructor() {
    super("pub/sub dropped an event of the relay pass");
  }
}

/** Decimal sequence, as `after` and `sequence` travel. */
const SEQUENCE = /^(0|[1-9][0-9]{0,18})$/;

/**
 * Sees every relayed event exactly once, inside the relay pass's transaction (webhook deliveries
 * are made there); `committed` runs after that transaction when `inTransaction` answered true.
 */
export interface RelaySink {
  inTransaction(manager: EntityManager, tenantId: number, events: LoggedEvent[]): Promise<boolean>;
  committed?(): void;
}

/**
 * The tenants' event log (`event_log`, `tenant_event_seq`, `event_relay`): its only writer.
 *
 * append() runs inside the committing transaction, as its last statement: one statement takes each
 * tenant's counter row (so later committers of the tenant wait until this commit: sequence order
 * is commit order) and inserts every buffered event. After the commit the committer nudges the
 * relay, which publishes at once from memory; every instance also polls for tenants whose log is
 * ahead of their relay watermark, so an event whose committer died is published by another
 * instance — late, never lost. A relay pass holds its tenant's `event_relay` row (FOR UPDATE SKIP
 * LOCKED): one instance relays a tenant at a time, in sequence order; a pass repeated after a
 * crash publishes a few events twice, which subscribers drop by sequence.
 */
export class EventLog {
  private readonly cache = new Map<number, Map<string, LoggedEvent>>();
  private readonly running = new Map<number, Promise<void>>();
  private readonly again = new Set<number>();
  private readonly sinks: RelaySink[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private relayDelay: Histogram | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly pubsub: PubSubEngine | null,
    private readonly options: EventLogOptions,
    private readonly log: Logger,
  ) {}

  /** Webhooks (and anything else that must see each event exactly once) hook into the relay pass. */
  onRelay(sink: RelaySink): void {
    this.sinks.push(sink);
  }

  /** Writes the transaction's events to the log: ONE statement, the transaction's last. */
  async append(manager: EntityManager, events: PendingEvent[]): Promise<LoggedEvent[]> {
    const perTenant = new Map<number, number>();
    const index: number[] = [];
    for (const event of events) {
      const n = (perTenant.get(event.tenantId) ?? 0) + 1;
      perTenant.set(event.tenantId, n);
      index.push(n);
    }
    const rows: Array<{ tenantId: number; last: string }> = await manager.query(
      `WITH counts AS (SELECT * FROM unnest($1::int[], $2::bigint[]) AS c(tenant_id, n)),
       bumped AS (
         INSERT INTO tenant_event_seq AS s (tenant_id, last) SELECT tenant_id, n FROM counts ORDER BY tenant_id
         ON CONFLICT (tenant_id) DO UPDATE SET last = s.last + EXCLUDED.last
         RETURNING s.tenant_id, s.last
       ),
       logged AS (
         INSERT INTO event_log (tenant_id, sequence, kind, type, payload)
         SELECT e.tenant_id, b.last - c.n + e.idx, e.kind, e.type, e.payload::jsonb
         FROM unnest($3::int[], $4::int[], $5::text[], $6::text[], $7::text[]) AS e(tenant_id, idx, kind, type, payload)
         JOIN bumped b ON b.tenant_id = e.tenant_id JOIN counts c ON c.tenant_id = e.tenant_id
         RETURNING 1
       )
       SELECT tenant_id AS "tenantId", last::text AS last FROM bumped`,
      [
        [...perTenant.keys()],
        [...perTenant.values()],
        events.map((e) => e.tenantId),
        index,
        events.map((e) => e.kind),
        events.map((e) => e.type),
        events.map((e) => JSON.stringify(e.payload)),
      ],
    );
    // The tenant's events took the numbers last - n + 1 … last, in the order they were recorded.
    const firstOf = new Map(rows.map((r) => [r.tenantId, BigInt(r.last) - BigInt(perTenant.get(r.tenantId)!)]));
    return events.map((event, i) => ({ ...event, sequence: (firstOf.get(event.tenantId)! + BigInt(index[i])).toString() }));
  }

  /** After a commit: the committed events are relayed now, from memory. */
  committed(events: LoggedEvent[]): void {
    if (!this.pubsub || this.stopped) return;
    const tenants = new Set<number>();
    for (const event of events) {
      let byTenant = this.cache.get(event.tenantId);
      if (!byTenant) this.cache.set(event.tenantId, (byTenant = new Map()));
      if (byTenant.size < MAX_CACHED) byTenant.set(event.sequence, event);
      tenants.add(event.tenantId);
    }
    for (const tenantId of tenants) this.nudge(tenantId);
  }

  /** Relays the tenant's unrelayed events soon; coalesces with a pass already running here. */
  nudge(tenantId: number, delayMs = this.options.relayDelayMs): void {
    if (this.stopped) return;
    if (this.running.has(tenantId)) {
      this.again.add(tenantId);
      return;
    }
    const run = (async () => {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs).unref());
      try {
        for (;;) {
          this.again.delete(tenantId);
          const outcome = await this.pass(tenantId);
          if (outcome === "busy") {
            setTimeout(() => this.nudge(tenantId, 0), BUSY_RETRY_MS).unref();
            break;
          }
          if (outcome === "waiting") break;
          if (outcome === 0 && !this.again.has(tenantId)) break;
          if (this.stopped) break;
        }
      } catch (error) {
        this.log.error({ err: error, tenantId }, "event relay pass failed; the poller retries");
      } finally {
        this.running.delete(tenantId);
      }
    })();
    this.running.set(tenantId, run);
  }

  /**
   * One relay pass of one tenant in one short transaction: claim, publish in order, hand to sinks,
   * advance. While pub/sub cannot publish (Redis away, a Sentinel failover under way) the relay
   * waits ("waiting"): the poller comes back every EVENT_RELAY_POLL_MS, and what was committed
   * meanwhile is published, in order, once Redis is back — not dropped.
   */
  private async pass(tenantId: number): Promise<number | "busy" | "waiting"> {
    if (this.pubsub?.canPublish && !this.pubsub.canPublish()) return "waiting";
    const touched: RelaySink[] = [];
    const outcome = await this.dataSource
      .transaction(async (manager): Promise<number | "busy" | "waiting"> => {
      let [claim]: Array<{ relayed: string }> = await manager.query(
        `SELECT relayed::text AS relayed FROM event_relay WHERE tenant_id = $1 FOR UPDATE SKIP LOCKED`,
        [tenantId],
      );
      if (!claim) {
        [claim] = await manager.query(
          `INSERT INTO event_relay (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING RETURNING relayed::text AS relayed`,
          [tenantId],
        );
        if (!claim) return "busy";
      }
      const relayed = BigInt(claim.relayed);
      const events = this.fromCache(tenantId, relayed) ?? (await this.fromLog(manager, tenantId, relayed));
      if (events.length === 0) return 0;
      // A publish Redis did not take (a command timeout on a loaded shard, a failover's first
      // moments): the pass is rolled back and made again, from the same watermark, by the poller.
      // Subscribers drop what they already had by sequence and take the one that was missing.
      const published = await Promise.all(events.map((event) => this.publish(event)));
      if (published.includes(false)) throw new RelayPublishFailed();
      for (const sink of this.sinks) if (await sink.inTransaction(manager, tenantId, events)) touched.push(sink);
      const last = events[events.length - 1].sequence;
      await manager.query(`UPDATE event_relay SET relayed = $2 WHERE tenant_id = $1`, [tenantId, last]);
      return events.length;
    })
      .catch((error: unknown) => {
        // (thrown before any sink ran: nothing of the pass was handed on)
        if (!(error instanceof RelayPublishFailed)) throw error;
        return "waiting" as const;
      });
    for (const sink of touched) sink.committed?.();
    return outcome;
  }

  /** The events after `relayed` that this process committed itself, when they follow on without a gap. */
  private fromCache(tenantId: number, relayed: bigint): LoggedEvent[] | undefined {
    const byTenant = this.cache.get(tenantId);
    if (!byTenant) return undefined;
    for (const seq of byTenant.keys()) if (BigInt(seq) <= relayed) byTenant.delete(seq);
    const events: LoggedEvent[] = [];
    for (let next = relayed + 1n; events.length < RELAY_BATCH; next++) {
      const event = byTenant.get(String(next));
      if (!event) break;
      byTenant.delete(String(next));
      events.push(event);
    }
    if (byTenant.size === 0) this.cache.delete(tenantId);
    return events.length ? events : undefined;
  }

  private async fromLog(manager: EntityManager, tenantId: number, relayed: bigint): Promise<LoggedEvent[]> {
    const rows: Array<{ sequence: string; kind: string; type: string; payload: LoggedEvent["payload"]; age: number }> = await manager.query(
      `SELECT e.sequence::text AS sequence, e.kind, e.type, e.payload, EXTRACT(EPOCH FROM now() - e.committed_at)::float8 AS age
       FROM event_log e WHERE e.tenant_id = $1 AND e.sequence > $2 ORDER BY e.sequence LIMIT ${RELAY_BATCH}`,
      [tenantId, relayed.toString()],
    );
    for (const row of rows) this.relayDelay?.observe(row.age);
    return rows.map((row) => ({ tenantId, sequence: row.sequence, kind: row.kind, type: row.type, payload: row.payload }));
  }

  /** False when pub/sub dropped it (on either topic). */
  private async publish(event: LoggedEvent): Promise<boolean> {
    const live = EVENT_KINDS.get(event.kind)?.live;
    if (!live || !this.pubsub) return true;
    const payload = { ...event.payload, sequence: event.sequence };
    const sent = await Promise.all([this.pubsub.publish(tenantTopic(live, event.tenantId), payload), this.pubsub.publish(allTenantsTopic(live), payload)]);
    return !sent.includes(false);
  }

  /** Tenants whose log is ahead of what reached pub/sub: relayed by whichever instance gets there first. */
  private async poll(): Promise<void> {
    const rows: Array<{ tenantId: number }> = await this.dataSource.query(
      `SELECT s.tenant_id AS "tenantId" FROM tenant_event_seq s LEFT JOIN event_relay r ON r.tenant_id = s.tenant_id
       WHERE s.last > COALESCE(r.relayed, 0) LIMIT 1000`,
    );
    for (const { tenantId } of rows) this.nudge(tenantId, 0);
  }

  /** `after` of a resumed subscription: a sequence the log still holds everything after. */
  async assertResumable(tenantId: number, after: string): Promise<bigint> {
    if (!SEQUENCE.test(after)) throw badInput({ after: ["The after argument must be a sequence (a decimal number)."] });
    const [row]: Array<{ pruned: string }> = await this.dataSource.query(`SELECT pruned::text AS pruned FROM event_relay WHERE tenant_id = $1`, [tenantId]);
    if (row && BigInt(after) < BigInt(row.pruned)) {
      throw badInput({ after: [`The events after ${after} are no longer kept (the event log keeps ${this.options.retentionHours} hours).`] });
    }
    return BigInt(after);
  }

  /** Logged events of one tenant and kind after a sequence, oldest first, with their sequence. */
  async read(tenantId: number, kind: string, after: bigint, limit: number): Promise<Array<{ sequence: string; payload: object }>> {
    const rows: Array<{ sequence: string; payload: object }> = await this.dataSource.query(
      // Ordered by the bigint column (e.sequence), not by the text output column of the same name.
      `SELECT e.sequence::text AS sequence, e.payload FROM event_log e WHERE e.tenant_id = $1 AND e.kind = $2 AND e.sequence > $3 ORDER BY e.sequence LIMIT $4`,
      [tenantId, kind, after.toString(), limit],
    );
    return rows.map((row) => ({ sequence: row.sequence, payload: { ...row.payload, sequence: row.sequence } }));
  }

  /** Deletes relayed entries older than the retention, a chunk per statement, and moves each tenant's prune watermark. */
  async prune(now = new Date()): Promise<number> {
    const cutoff = new Date(now.getTime() - this.options.retentionHours * 3600_000);
    let total = 0;
    for (;;) {
      const [{ deleted }]: Array<{ deleted: number }> = await this.dataSource.query(
        `WITH doomed AS (
           SELECT e.tenant_id, e.sequence FROM event_log e JOIN event_relay r ON r.tenant_id = e.tenant_id
           WHERE e.committed_at < $1 AND e.sequence <= r.relayed LIMIT ${PRUNE_BATCH}
         ),
         gone AS (DELETE FROM event_log e USING doomed d WHERE e.tenant_id = d.tenant_id AND e.sequence = d.sequence RETURNING e.tenant_id, e.sequence),
         marks AS (
           UPDATE event_relay r SET pruned = GREATEST(r.pruned, m.top)
           FROM (SELECT tenant_id, max(sequence) AS top FROM gone GROUP BY tenant_id) m WHERE r.tenant_id = m.tenant_id
           RETURNING 1
         )
         SELECT (SELECT count(*) FROM gone)::int AS deleted, (SELECT count(*) FROM marks)::int AS marked`,
        [cutoff],
      );
      total += deleted;
      if (deleted < PRUNE_BATCH) return total;
    }
  }

  /** Prometheus: the log's size and the relay's lag, read when scraped; the relay delay as observed. */
  registerMetrics(metrics: Metrics): void {
    const dataSource = this.dataSource;
    const log = this.log;
    // A scrape while the database is away keeps the last figures rather than failing /metrics.
    const safely = (read: () => Promise<void>) => read().catch((error: unknown) => log.warn({ err: error }, "event log metrics unavailable"));
    new Gauge({
      name: "event_log_entries",
      help: "Entries in the event log (the planner's estimate once the table has been analysed).",
      registers: [metrics.registry],
      async collect() {
        await safely(async () => {
          const [row]: Array<{ estimate: number }> = await dataSource.query(`SELECT reltuples::float8 AS estimate FROM pg_class WHERE oid = 'event_log'::regclass`);
          const estimate = row?.estimate ?? -1;
          this.set(estimate >= 0 ? estimate : Number((await dataSource.query(`SELECT count(*)::int AS n FROM event_log`))[0].n));
        });
      },
    });
    new Gauge({
      name: "event_relay_lag_events",
      help: "Events committed but not yet relayed to pub/sub, over every tenant.",
      registers: [metrics.registry],
      async collect() {
        await safely(async () => {
          const [row]: Array<{ lag: number }> = await dataSource.query(
            `SELECT COALESCE(sum(s.last - COALESCE(r.relayed, 0)), 0)::float8 AS lag FROM tenant_event_seq s LEFT JOIN event_relay r ON r.tenant_id = s.tenant_id`,
          );
          this.set(row.lag);
        });
      },
    });
    this.relayDelay = new Histogram({
      name: "event_relay_delay_seconds",
      help: "Commit-to-publication delay of events relayed from the log (not from the committer's memory).",
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [metrics.registry],
    });
  }

  start(): void {
    if (!this.pubsub) return;
    const poll = () => void this.poll().catch((error: unknown) => this.log.warn({ err: error }, "event relay poll failed"));
    this.pollTimer = setTimeout(function again(this: EventLog) {
      poll();
      this.pollTimer = setTimeout(again.bind(this), this.options.pollMs).unref();
    }.bind(this), this.options.relayDelayMs).unref();
    const prune = () => void this.prune().catch((error: unknown) => this.log.warn({ err: error }, "event log pruning failed"));
    prune();
    this.pruneTimer = setInterval(prune, Math.min(PRUNE_EVERY_MS, this.options.retentionHours * 3600_000)).unref();
  }

  /** Resolves once no relay pass runs here: a quiet moment (tests count the statements of one read). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  /** Stops polling and waits for relay passes in flight (their events are published before the pub/sub closes). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    clearInterval(this.pruneTimer);
    await Promise.allSettled([...this.running.values()]);
  }
}
