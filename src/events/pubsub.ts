import { EventEmitter } from "node:events";
import type { Logger } from "../common/logger";
import { closeRedis, RedisHealth } from "./redis-health";
import { connectRedis, topicHashTag, type RedisClient, type RedisTopology } from "./redis-topology";
import { parseJson } from "../common/json";

/** /readyz waits this long for Redis at most. */
const READY_TIMEOUT_MS = 500;

export type Listener = (payload: unknown) => void;

export interface InterruptionWatcher {
  interrupted(): void;
  restored(since: number): void;
}

/**
 * Topic pub/sub between API instances. Listeners get the decoded payload; one message is decoded
 * once per instance, however many local listeners share its topic.
 */
export interface PubSubEngine {
  readonly kind: "redis" | "in-process";
  /** Resolves false when the event could not be handed to Redis (it was dropped); never rejects. */
  publish(topic: string, payload: unknown): Promise<boolean>;
  /** Returns the function that removes this listener (and unsubscribes the topic when it was the last). */
  subscribe(topic: string, listener: Listener): () => void;
  /** Resolves once every subscribe() issued so far is in effect (Redis acknowledges SUBSCRIBE asynchronously). */
  flushSubscriptions?(): Promise<void>;
  /**
   * Tells `watcher` when this instance's subscriptions are interrupted (a reconnect, a Sentinel
   * failover, a Cluster shard's failover) and when they are in effect again: what was published
   * from `since` (epoch ms) on may have been lost and must be read from the event log.
   */
  watchInterruptions?(watcher: InterruptionWatcher): () => void;
  /**
   * Whether a publish can reach Redis now (undefined: always). The event log's relay waits while it
   * cannot, so what is committed meanwhile is published once Redis is back instead of dropped.
   */
  canPublish?(): boolean;
  /** Whether the engine can deliver right now (for /readyz). */
  isReady(): Promise<boolean>;
  close(): Promise<void>;
}

/** Single-process engine for the embedded default: events never leave this process. */
export class InProcessPubSub implements PubSubEngine {
  readonly kind = "in-process" as const;
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  async publish(topic: string, payload: unknown): Promise<boolean> {
    // Same copy semantics as Redis: listeners see a fresh JSON value, never the publisher's object.
    const copy = JSON.parse(JSON.stringify(payload)) as unknown;
    this.emitter.emit(topic, copy);
    return true;
  }

  subscribe(topic: string, listener: Listener): () => void {
    this.emitter.on(topic, listener);
    return () => this.emitter.off(topic, listener);
  }

  async isReady(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}

/**
 * Redis engine: one publisher and one subscriber connection per instance, SUBSCRIBE ref-counted
 * per topic so an instance only receives topics it has listeners for. ioredis re-subscribes by
 * itself after a reconnect (and, with Sentinel, on the new master after a failover).
 *
 * In a Redis Cluster, classic pub/sub is broadcast to every node; this engine uses sharded pub/sub
 * instead (SPUBLISH/SSUBSCRIBE, ioredis `shardedSubscribers`: one subscriber connection per shard),
 * each channel carrying its topic's hash tag (`{tenant.42}`): a tenant's events stay on its shard.
 */
export class RedisPubSub implements PubSubEngine {
  readonly kind = "redis" as const;
  private readonly publisher: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly sharded: boolean;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly watchers = new Set<InterruptionWatcher>();
  /** When the subscriber lost its connection (a shard's, in a cluster); undefined while subscribed. */
  private interruptedAt: number | undefined;
  private closing = false;
  /** Outage tracking shared by every Redis connection of this instance (the stream consumer's too). */
  readonly health: RedisHealth;

  constructor(
    readonly topology: RedisTopology,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {
    this.health = new RedisHealth(log);
    this.sharded = topology.kind === "cluster";
    // Commands fail at once while Redis is away (no offline queue that grows and makes callers
    // wait until it is back); a command Redis does not answer fails after a second.
    this.publisher = connectRedis(topology, { connectionName: "pbx-api:publisher", enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1_000 });
    // SUBSCRIBE is replayed by ioredis after a reconnect; nothing waits on this connection's queue.
    this.subscriber = connectRedis(topology, { connectionName: "pbx-api:subscriber", maxRetriesPerRequest: null, shardedSubscriber: this.sharded });
    this.health.attach(this.publisher, "publisher");
    this.health.attach(this.subscriber, "subscriber");
    if (this.sharded) {
      this.subscriber.on("smessage", (channel: string, message: string) => this.dispatch(channel, message));
      // A shard's subscriber connection ended (its master died, or the slots moved); ioredis
      // refreshes the slots and starts subscribers on the new masters, then says subscribersReady.
      this.subscriber.on("-node", () => this.interrupted());
      this.subscriber.on("-subscriber", () => this.interrupted());
      this.subscriber.on("subscribersReady", () => this.restored());
    } else {
      this.subscriber.on("message", (channel: string, message: string) => this.dispatch(channel, message));
      this.subscriber.on("close", () => this.interrupted());
      this.subscriber.on("ready", () => this.restored());
    }
  }

  private interrupted(): void {
    if (this.closing || this.listeners.size === 0 || this.interruptedAt !== undefined) return;
    this.interruptedAt = Date.now();
    for (const watcher of [...this.watchers]) watcher.interrupted();
  }

  /** Subscriptions are back: once ioredis's re-SUBSCRIBE is acknowledged, listeners catch up from `since`. */
  private restored(): void {
    const since = this.interruptedAt;
    if (since === undefined || this.closing) return;
    this.interruptedAt = undefined;
    void this.flushSubscriptions()
      .catch(() => undefined)
      .then(() => {
        this.log.info({ since: new Date(since).toISOString() }, "Redis subscriptions restored; relaying again from the event log what was published meanwhile");
        for (const watcher of [...this.watchers]) watcher.restored(since);
      });
  }

  watchInterruptions(watcher: InterruptionWatcher): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  private channel(topic: string): string {
    return this.sharded ? `${this.prefix}pbx:{${topicHashTag(topic)}}:topic:${topic}` : `${this.prefix}pbx:topic:${topic}`;
  }

  private dispatch(channel: string, message: string): void {
    const set = this.listeners.get(channel);
    if (!set || set.size === 0) return;
    let payload: unknown;
    try {
      payload = parseJson(message);
    } catch (error) {
      this.log.warn({ err: error, channel }, "dropping a pub/sub message that is not JSON");
      return;
    }
    for (const listener of set) listener(payload);
  }

  /**
   * Publishes, or drops the event while Redis is away or does not answer in time (counted and
   * logged once per outage) and resolves false: the change it reports is already committed and its
   * request must still answer. The event log's relay publishes its pass again (see EventLog.pass);
   * subscribers read what they missed from the log once their subscription is back.
   */
  async publish(topic: string, payload: unknown): Promise<boolean> {
    try {
      const channel = this.channel(topic);
      const message = JSON.stringify(payload);
      await (this.sharded ? this.publisher.spublish(channel, message) : this.publisher.publish(channel, message));
      return true;
    } catch {
      this.health.dropped(topic);
      return false;
    }
  }

  canPublish(): boolean {
    return this.publisher.status === "ready";
  }

  subscribe(topic: string, listener: Listener): () => void {
    const channel = this.channel(topic);
    let set = this.listeners.get(channel);
    if (!set) {
      this.listeners.set(channel, (set = new Set()));
      (this.sharded ? this.subscriber.ssubscribe(channel) : this.subscriber.subscribe(channel)).catch((error: unknown) =>
        this.log.error({ err: error, channel }, "redis SUBSCRIBE failed"),
      );
    }
    set.add(listener);
    return () => {
      const current = this.listeners.get(channel);
      if (!current?.delete(listener) || current.size > 0) return;
      this.listeners.delete(channel);
      (this.sharded ? this.subscriber.sunsubscribe(channel) : this.subscriber.unsubscribe(channel)).catch((error: unknown) =>
        this.log.warn({ err: error, channel }, "redis UNSUBSCRIBE failed"),
      );
    };
  }

  /** Resolves once every SUBSCRIBE issued so far has been acknowledged by Redis. */
  async flushSubscriptions(): Promise<void> {
    if (!this.sharded) {
      await this.subscriber.ping();
      return;
    }
    // Each shard has its own subscriber connection; an SSUBSCRIBE is acknowledged on it. Re-issuing
    // SSUBSCRIBE for the channels (idempotent in Redis) and awaiting the replies does the same as a PING.
    const channels = [...this.listeners.keys()];
    await Promise.all(channels.map((channel) => this.subscriber.ssubscribe(channel)));
  }

  async isReady(): Promise<boolean> {
    if (this.publisher.status !== "ready" || this.subscriber.status !== "ready") return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<string>((resolve) => (timer = setTimeout(() => resolve("timeout"), READY_TIMEOUT_MS)));
      return (await Promise.race([this.publisher.ping(), timeout])) === "PONG";
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.listeners.clear();
    this.watchers.clear();
    this.health.close();
    await Promise.allSettled([closeRedis(this.subscriber), closeRedis(this.publisher)]);
  }
}

export function createPubSub(redis: RedisTopology | undefined, prefix: string, log: Logger): PubSubEngine {
  if (!redis) {
    log.warn("REDIS_URL is not set: using in-process pub/sub; run a single API instance only");
    return new InProcessPubSub();
  }
  return new RedisPubSub(redis, prefix, log);
}
