import { EventEmitter } from "node:events";
import { Redis } from "ioredis";
import type { Logger } from "../common/logger";
import { closeRedis, RedisHealth } from "./redis-health";
import { parseJson } from "../common/json";

/** /readyz waits this long for Redis at most. */
const READY_TIMEOUT_MS = 500;

export type Listener = (payload: unknown) => void;

/**
 * Topic pub/sub between API instances. Listeners get the decoded payload; one message is decoded
 * once per instance, however many local listeners share its topic.
 */
export interface PubSubEngine {
  readonly kind: "redis" | "in-process";
  publish(topic: string, payload: unknown): Promise<void>;
  /** Returns the function that removes this listener (and unsubscribes the topic when it was the last). */
  subscribe(topic: string, listener: Listener): () => void;
  /** Resolves once every subscribe() issued so far is in effect (Redis acknowledges SUBSCRIBE asynchronously). */
  flushSubscriptions?(): Promise<void>;
  /** Whether the engine can deliver right now (for /readyz). */
  isReady(): Promise<boolean>;
  close(): Promise<void>;
}

/** Single-process engine for the embedded default: events never leave this process. */
export class InProcessPubSub implements PubSubEngine {
  readonly kind = "in-process" as const;
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  async publish(topic: string, payload: unknown): Promise<void> {
    // Same copy semantics as Redis: listeners see a fresh JSON value, never the publisher's object.
    const copy = JSON.parse(JSON.stringify(payload)) as unknown;
    this.emitter.emit(topic, copy);
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
 * itself after a reconnect.
 */
export class RedisPubSub implements PubSubEngine {
  readonly kind = "redis" as const;
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Outage tracking shared by every Redis connection of this instance (the stream consumer's too). */
  readonly health: RedisHealth;

  constructor(
    url: string,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {
    this.health = new RedisHealth(log);
    // Commands fail at once while Redis is away (no offline queue that grows and makes callers
    // wait until it is back); a command Redis does not answer fails after a second.
    this.publisher = new Redis(url, { lazyConnect: false, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1_000 });
    // SUBSCRIBE is replayed by ioredis after a reconnect; nothing waits on this connection's queue.
    this.subscriber = new Redis(url, { maxRetriesPerRequest: null });
    this.health.attach(this.publisher, "publisher");
    this.health.attach(this.subscriber, "subscriber");
    this.subscriber.on("message", (channel: string, message: string) => this.dispatch(channel, message));
  }

  private channel(topic: string): string {
    return `${this.prefix}pbx:topic:${topic}`;
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
   * Publishes, or drops the event while Redis is away (counted and logged once per outage): the
   * change it reports is already committed and its request must still answer.
   */
  async publish(topic: string, payload: unknown): Promise<void> {
    try {
      await this.publisher.publish(this.channel(topic), JSON.stringify(payload));
    } catch {
      this.health.dropped(topic);
    }
  }

  subscribe(topic: string, listener: Listener): () => void {
    const channel = this.channel(topic);
    let set = this.listeners.get(channel);
    if (!set) {
      this.listeners.set(channel, (set = new Set()));
      this.subscriber.subscribe(channel).catch((error: unknown) => this.log.error({ err: error, channel }, "redis SUBSCRIBE failed"));
    }
    set.add(listener);
    return () => {
      const current = this.listeners.get(channel);
      if (!current?.delete(listener) || current.size > 0) return;
      this.listeners.delete(channel);
      this.subscriber.unsubscribe(channel).catch((error: unknown) => this.log.warn({ err: error, channel }, "redis UNSUBSCRIBE failed"));
    };
  }

  /** Resolves once every SUBSCRIBE issued so far has been acknowledged by Redis. */
  async flushSubscriptions(): Promise<void> {
    await this.subscriber.ping();
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

  /** The publisher connection, for other Redis work of this instance (streams). */
  get client(): Redis {
    return this.publisher;
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.health.close();
    await Promise.allSettled([closeRedis(this.subscriber), closeRedis(this.publisher)]);
  }
}

export function createPubSub(redisUrl: string | undefined, prefix: string, log: Logger): PubSubEngine {
  if (!redisUrl) {
    log.warn("REDIS_URL is not set: using in-process pub/sub; run a single API instance only");
    return new InProcessPubSub();
  }
  return new RedisPubSub(redisUrl, prefix, log);
}
