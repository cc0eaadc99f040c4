import { ingestTypeLabel } from "../observability/platform-gauges";
import { randomBytes } from "node:crypto";
import os from "node:os";
import { Role } from "../auth/role";
import { ErrorCode, type FieldErrors } from "../common/errors";
import type { Logger } from "../common/logger";
import type { AppConfig } from "../config/config";
import { buildContext, type ContextDeps } from "../context/build-context";
import type { Metrics } from "../observability/metrics";
import { RedisPubSub } from "../events/pubsub";
import { closeRedis, RedisHealth } from "../events/redis-health";
import { connectRedis, type RedisClient, type RedisTopology } from "../events/redis-topology";
import { EngineReconciler, isSnapshotEntry, parseSnapshotPart, type SnapshotPart } from "./engine-snapshot";
import { IngestInterrupted, type IngestOutcome } from "./ingest.service";
import { parseJson } from "../common/json";

/** The stream and consumer group of contract §6; the key gets REDIS_PREFIX in front (empty in production). */
export const STREAM_KEY = "pbx:events";
export const CONSUMER_GROUP = "pbx-api";

/** Entries read at once: one batch for the handler (which splits it into lanes and transactions). */
const BATCH = 500;
const MAX_CLAIM_INTERVAL_MS = 5_000;
const MAX_BACKOFF_MS = 10_000;
/** XAUTOCLAIM rounds per recovery pass, so a huge backlog of orphans cannot starve new entries. */
const CLAIM_ROUNDS = 10;
/** The commands connection's calls (XACK, XAUTOCLAIM, XPENDING, the prune script) are all quick. */
const COMMAND_TIMEOUT_MS = 5_000;

/** [entry id, flat field/value list]; fields are null for an entry trimmed from the stream while pending. */
type StreamEntry = [id: string, fields: string[] | null];

/**
 * Removes, atomically, the group's consumers other than ours that own no pending entry and have not
 * read for a while (instances that stopped or died; each start uses a fresh name). Checking and
 * deleting in one script means a consumer cannot take entries between the two and lose them.
 */
const PRUNE_CONSUMERS = `
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  local idle = f['inactive']
  if idle == nil or idle < 0 then idle = f['idle'] end
  if f['name'] ~= ARGV[2] and f['pending'] == 0 and idle >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed[#removed + 1] = f['name']
  end
end
return removed`;

/**
 * Reads telephony events from the Redis stream through the `pbx-api` consumer group shared by every
 * instance, so each entry is handled by one instance. An entry is acknowledged only after the
 * handler has committed it (a refused event is acknowledged too: it can never become valid). When
 * the handler throws (infrastructure), the entry stays pending and is retried — by this instance
 * once the database answers again, or by another one that claims it after STREAM_CLAIM_IDLE_MS.
 * Entries are handled in stream order, a batch of them per transaction, so one call's events keep
 * their order here.
 */
export class StreamConsumer {
  readonly key: string;
  /** Unique per process start: a restarted instance never inherits a dead one's pending entries by name. */
  readonly consumer = `${os.hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
  private readonly log: Logger;
  /** Only ever runs the blocking XREADGROUP, so stop() can cut it without touching other commands. */
  private readonly reader: RedisClient;
  private readonly commands: RedisClient;
  private readonly claimIdleMs: number;
  private readonly claimIntervalMs: number;
  private readonly blockMs: number;
  private stopping = false;
  private running?: Promise<void>;
  private wake?: () => void;
  /** Settles (with null) when stop() is called: the blocking read races it. */
  private readonly stopped: Promise<null>;
  private signalStopped!: () => void;
  private readonly health: RedisHealth;
  private readonly reconciler: EngineReconciler;

  constructor(
    private readonly deps: ContextDeps,
    private readonly metrics: Metrics,
    private readonly config: Pick<AppConfig, "redisPrefix" | "streamClaimIdleMs" | "streamMaxDeliveries" | "bodyLimitBytes" | "engineReconcileS">,
    redis: RedisTopology,
  ) {
    this.key = `${config.redisPrefix}${STREAM_KEY}`;
    this.log = deps.log.child({ component: "stream-consumer", stream: this.key, consumer: this.consumer });
    this.claimIdleMs = config.streamClaimIdleMs;
    this.claimIntervalMs = Math.min(MAX_CLAIM_INTERVAL_MS, Math.max(100, Math.floor(this.claimIdleMs / 2)));
    // New entries end the block at once and stop() cuts it, so it only has to come round for claims.
    this.blockMs = this.claimIntervalMs;
    this.stopped = new Promise((resolve) => (this.signalStopped = () => resolve(null)));
    // blockingTimeoutGrace: a read blocked on a connection that died silently (a failover behind a
    // partition) settles after its BLOCK instead of waiting for TCP to notice (ioredis 5.9+).
    this.reader = connectRedis(redis, { maxRetriesPerRequest: null, blockingTimeoutGrace: 2_000, connectionName: `pbx-api:stream-reader:${this.consumer}` });
    // Fails at once while Redis is away, so the loop backs off (and stop() is not held by a queue). A
    // command in flight when the connection drops is not settled by ioredis until it reconnects
    // (redis/ioredis#2197): the timeout ends it, so a batch's XACK cannot hold stop() for the outage.
    this.commands = connectRedis(redis, {
      connectionName: `pbx-api:stream:${this.consumer}`,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: COMMAND_TIMEOUT_MS,
    });
    // One line per outage (RedisHealth), not a stack trace per reconnect attempt.
    this.health = deps.pubsub instanceof RedisPubSub ? deps.pubsub.health : new RedisHealth(this.log);
    this.health.attach(this.reader, "stream-reader");
    this.health.attach(this.commands, "stream-commands");
    this.commands.on("ready", () => this.wake?.());
    this.reconciler = new EngineReconciler(deps, this.commands, config.redisPrefix, config.engineReconcileS, this.log.child({ component: "engine-reconciler" }));
  }

  /** Starts the loop in the background; it creates the group (from the stream's start) when missing. */
  start(): void {
    this.running ??= this.run();
    this.log.info("consuming telephony events from the Redis stream");
  }

  /** Stops reading, lets the batch in hand finish and be acknowledged, then closes the connections. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.signalStopped();
    this.wake?.();
    // Closes the blocked XREADGROUP's connection; entries it was about to deliver stay pending and get
    // claimed. The loop does not wait for ioredis to settle that read: see read().
    this.reader.disconnect();
    await this.running;
    await closeRedis(this.commands);
  }

  private async run(): Promise<void> {
    let groupReady = false;
    /** Entries were left pending in our own list by a failed batch: read them again before new ones. */
    let backlog = false;
    let failures = 0;
    let nextClaimAt = 0;
    while (!this.stopping) {
      try {
        if (this.commands.status !== "ready") {
          // Not connected (yet, or Redis is away): wait for it rather than fail a command at once.
          await this.pause(Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(failures++, 6)));
          continue;
        }
        if (failures > 0) await this.databaseAnswers();
        if (!groupReady) {
          await this.ensureGroup();
          groupReady = true;
        }
        if (Date.now() >= nextClaimAt) {
          await this.claimOrphans();
          nextClaimAt = Date.now() + this.claimIntervalMs;
        }
        if (backlog) {
          const own = await this.read(this.commands, "0");
          backlog = own.length > 0;
          await this.handle(own, true);
        } else {
          await this.handle(await this.read(this.reader, ">"), false);
        }
        failures = 0;
      } catch (error) {
        if (this.stopping) break;
        failures++;
        backlog = true;
        if (/NOGROUP/.test(String((error as Error)?.message))) groupReady = false;
        if (!this.health.isDown) this.log.error({ err: error, failures }, "stream consumption failed; the entries stay pending and will be retried");
        await this.pause(Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  /**
   * After a failure, waits until the database answers before touching the stream again: every read
   * of a pending entry counts as a delivery, and an outage must not push good entries over
   * STREAM_MAX_DELIVERIES.
   */
  private async databaseAnswers(): Promise<void> {
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await this.deps.dataSource.query("SELECT 1");
        return;
      } catch (error) {
        if (attempt === 1) this.log.warn({ err: error }, "waiting for the database before reading the stream again");
        await this.pause(Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  private async ensureGroup(): Promise<void> {
    try {
      // From id 0, so entries written before any instance ever ran are handled too.
      await this.commands.xgroup("CREATE", this.key, CONSUMER_GROUP, "0", "MKSTREAM");
    } catch (error) {
      if (!/BUSYGROUP/.test(String((error as Error)?.message))) throw error;
    }
  }

  /**
   * The blocking read (">") races stop(): a read in flight when Redis went away is kept by ioredis
   * for its next connection and never settled once disconnect() cancels that reconnect
   * (redis/ioredis#2197), so awaiting it alone would hang stop() for as long as Redis is away.
   */
  private async read(conn: RedisClient, from: ">" | "0"): Promise<StreamEntry[]> {
    const reply = (
      from === ">"
        ? await Promise.race([conn.xreadgroup("GROUP", CONSUMER_GROUP, this.consumer, "COUNT", BATCH, "BLOCK", this.blockMs, "STREAMS", this.key, ">"), this.stopped])
        : await conn.xreadgroup("GROUP", CONSUMER_GROUP, this.consumer, "COUNT", BATCH, "STREAMS", this.key, "0")
    ) as unknown as Array<[string, StreamEntry[]]> | null;
    return reply?.[0]?.[1] ?? [];
  }

  /** Takes over entries another consumer has held unacknowledged for STREAM_CLAIM_IDLE_MS, then prunes idle consumers. */
  private async claimOrphans(): Promise<void> {
    let cursor = "0-0";
    for (let round = 0; round < CLAIM_ROUNDS && !this.stopping; round++) {
      const [next, entries] = (await this.commands.xautoclaim(this.key, CONSUMER_GROUP, this.consumer, this.claimIdleMs, cursor, "COUNT", BATCH)) as [
        string,
        StreamEntry[],
      ];
      if (entries.length) {
        this.log.info({ entries: entries.length }, "claimed stream entries left pending by another consumer");
        await this.handle(entries, true);
      }
      cursor = next;
      if (cursor === "0-0") break;
    }
    const removed = (await this.commands.eval(PRUNE_CONSUMERS, 1, this.key, CONSUMER_GROUP, this.consumer, this.claimIdleMs * 10)) as string[];
    if (removed.length) this.log.info({ consumers: removed }, "removed idle stream consumers that held no entries");
  }

  /**
   * Handles the entries as one batch, in order (many per transaction), and acknowledges them once
   * committed — refused ones too. If the database fails part-way, the entries already committed are
   * acknowledged and the rest stay pending. `redelivered` entries (claimed, or re-read after a
   * failure) are first checked against STREAM_MAX_DELIVERIES.
   */
  private async handle(entries: StreamEntry[], redelivered: boolean): Promise<void> {
    if (entries.length === 0) return;
    const done: string[] = [];
    try {
      const deliveries = redelivered ? await this.deliveryCounts(entries) : new Map<string, number>();
      const batch: Array<{ id: string; raw: unknown }> = [];
      const snapshots: Array<{ id: string; part: SnapshotPart }> = [];
      for (const [id, fields] of entries) {
        if (fields === null) {
          done.push(id);
          continue;
        }
        const count = deliveries.get(id) ?? 1;
        const parsed = count > this.config.streamMaxDeliveries ? null : this.decode(fields);
        if (parsed === null) this.abandon(id, fields, count);
        else if ("errors" in parsed) this.report(id, undefined, { status: "rejected", code: ErrorCode.BAD_USER_INPUT, message: "The stream entry is invalid.", errors: parsed.errors });
        else if (isSnapshotEntry(parsed.raw)) {
          // a part of an engine snapshot (engine-snapshot.ts): reconciled after the batch's events
          const part = parseSnapshotPart(parsed.raw);
          if (part) snapshots.push({ id, part });
          else {
            this.log.warn({ entryId: id }, "an invalid engine snapshot part; ignored");
            done.push(id);
          }
        } else batch.push({ id, raw: parsed.raw });
        if (parsed === null || "errors" in parsed) done.push(id);
      }
      if (batch.length) await this.ingest(batch, done);
      for (const { id, part } of snapshots) {
        try {
          await this.reconciler.accept(part);
        } catch (error) {
          // the next snapshot reconciles again: a failed one is not retried
          this.log.warn({ err: error, node: part.node, kind: part.kind }, "reconciliation with an engine snapshot failed");
        }
        done.push(id);
      }
    } finally {
      if (done.length) await this.commands.xack(this.key, CONSUMER_GROUP, ...done);
    }
  }

  /** Applies the batch's telephony events, adding the ids of those committed (or refused) to `done`. */
  private async ingest(batch: Array<{ id: string; raw: unknown }>, done: string[]): Promise<void> {
    const ctx = buildContext(this.deps, { role: Role.INGEST, tenantId: null, apiKeyId: null }, "ingest", `stream:${batch[0].id}`);
    let outcomes: ReadonlyArray<IngestOutcome | undefined>;
    let failure: unknown;
    try {
      outcomes = await ctx.services.ingest.ingestMany(ctx, batch.map((entry) => entry.raw));
    } catch (error) {
      // The handler could not run (database down): the entries not committed stay pending.
      if (!(error instanceof IngestInterrupted)) throw error;
      outcomes = error.outcomes;
      failure = error.cause;
    }
    for (const [i, { id, raw }] of batch.entries()) {
      const outcome = outcomes[i];
      if (outcome === undefined) continue;
      this.report(id, raw, outcome);
      done.push(id);
    }
    if (failure !== undefined) throw failure;
  }

  private async deliveryCounts(entries: StreamEntry[]): Promise<Map<string, number>> {
    const rows = (await this.commands.xpending(this.key, CONSUMER_GROUP, entries[0][0], entries[entries.length - 1][0], BATCH * 10, this.consumer)) as Array<
      [string, string, number, number]
    >;
    return new Map(rows.map(([id, , , count]) => [id, Number(count)]));
  }

  private report(id: string, raw: unknown, outcome: IngestOutcome): void {
    this.metrics.ingestEvents.inc({ source: "stream", type: ingestTypeLabel(raw), outcome: outcome.status });
    const about = describe(raw);
    if (outcome.status === "rejected") {
      this.log.warn({ entryId: id, ...about, code: outcome.code, reason: outcome.message, errors: outcome.errors ?? {} }, "rejected a telephony event from the stream");
    } else {
      this.log.debug({ entryId: id, ...about, outcome: outcome.status, reason: outcome.reason }, "telephony event from the stream");
    }
  }

  private decode(fields: string[]): { raw: unknown } | { errors: FieldErrors } {
    let text: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === "event") text = fields[i + 1];
    if (text === undefined) return { errors: { event: ["The stream entry has no event field (XADD pbx:events * event <json>)."] } };
    if (Buffer.byteLength(text) > this.config.bodyLimitBytes) return { errors: { event: [`The event is larger than ${this.config.bodyLimitBytes} bytes.`] } };
    try {
      return { raw: parseJson(text) };
    } catch {
      return { errors: { event: ["The event field is not valid JSON."] } };
    }
  }

  private abandon(id: string, fields: string[], deliveries: number): void {
    const parsed = this.decode(fields);
    this.metrics.ingestEvents.inc({ source: "stream", type: ingestTypeLabel("raw" in parsed ? parsed.raw : null), outcome: "rejected" });
    this.metrics.streamEntriesAbandoned.inc();
    this.log.error(
      { entryId: id, ...("raw" in parsed ? describe(parsed.raw) : {}), deliveries, maxDeliveries: this.config.streamMaxDeliveries },
      "abandoned a stream entry that failed on every delivery; acknowledged without applying it",
    );
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.wake = done;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}

const LOGGED_FIELDS = ["type", "action", "tenant_id", "domain", "extension", "call_id", "queue"] as const;

/** What a log line may say about an event: identifying fields only, never the whole entry. */
function describe(raw: unknown): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return out;
  for (const field of LOGGED_FIELDS) {
    const value = (raw as Record<string, unknown>)[field];
    if (typeof value === "string") out[field] = value.slice(0, 128);
    else if (typeof value === "number" && Number.isFinite(value)) out[field] = value;
  }
  return out;
}
