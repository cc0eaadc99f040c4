import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Where this instance's Redis is (contract §14): one server (REDIS_URL), a master watched by
 * Sentinel (REDIS_SENTINELS + REDIS_SENTINEL_NAME), or a Redis Cluster (REDIS_CLUSTER_NODES).
 */
export type RedisTopology =
  | { kind: "single"; url: string }
  | { kind: "sentinel"; sentinels: HostPort[]; name: string }
  | { kind: "cluster"; nodes: HostPort[] };

/** A connection to any topology: ioredis's Redis (one server, Sentinel) or Cluster. */
export type RedisClient = Redis | Cluster;

/** How one of the product's connections behaves; the same on every topology. */
export interface RedisConnectionOptions {
  connectionName?: string;
  lazyConnect?: boolean;
  enableOfflineQueue?: boolean;
  /** null: retry for ever (a subscriber, the blocking stream reader). */
  maxRetriesPerRequest?: number | null;
  commandTimeout?: number;
  connectTimeout?: number;
  /** Blocking commands (XREADGROUP BLOCK) settle on the client after their BLOCK plus this, even on a dead socket. */
  blockingTimeoutGrace?: number;
  /** A probe that tries once (startup check): no reconnection at all. */
  noRetry?: boolean;
  /** Cluster only: one subscriber connection per shard for SSUBSCRIBE (ioredis `shardedSubscribers`). */
  shardedSubscriber?: boolean;
}

/** A short description for logs and errors (never a password). */
export function describeTopology(topology: RedisTopology): string {
  switch (topology.kind) {
    case "single": {
      const url = new URL(topology.url);
      return `REDIS_URL (${url.hostname || "localhost"}:${url.port || 6379})`;
    }
    case "sentinel":
      return `REDIS_SENTINELS (master "${topology.name}" via ${topology.sentinels.map((s) => `${s.host}:${s.port}`).join(",")})`;
    case "cluster":
      return `REDIS_CLUSTER_NODES (${topology.nodes.map((s) => `${s.host}:${s.port}`).join(",")})`;
  }
}

/**
 * Opens one connection. With Sentinel it asks the sentinels for the master and follows a failover
 * (ioredis re-resolves the master on every reconnect); with Cluster it follows MOVED/ASK and slot
 * changes.
 */
export function connectRedis(topology: RedisTopology, options: RedisConnectionOptions): RedisClient {
  const { shardedSubscriber, noRetry, ...common } = options;
  const { blockingTimeoutGrace, ...rest } = common;
  const redisOptions: RedisOptions = blockingTimeoutGrace === undefined ? { ...rest } : { ...rest, blockingTimeout: 60_000, blockingTimeoutGrace };
  if (noRetry) redisOptions.retryStrategy = () => null;
  switch (topology.kind) {
    case "single":
      return new Redis(topology.url, redisOptions);
    case "sentinel":
      return new Redis({
        ...redisOptions,
        sentinels: topology.sentinels,
        name: topology.name,
        // Not ioredis's failoverDetector: its disconnect on +switch-master, landing while a connection
        // is still (re)connecting to the dead master, ends that connection for good (seen with 6.0.0:
        // "connecting -> end", the publisher and the stream reader never came back). Reconnecting
        // asks the sentinels again, so the dead master's connections find the new one; a connection
        // to an old master that was demoted alive gets READONLY on its next write and reconnects.
        reconnectOnError: (error: Error) => (/^READONLY/.test(error.message) ? 2 : false),
        sentinelRetryStrategy: noRetry ? () => null : (times: number) => Math.min(100 * times, 2_000),
        // A sentinel that does not answer must not hold the (re)connection: try the next one.
        sentinelCommandTimeout: 1_000,
      });
    case "cluster": {
      const { enableOfflineQueue, lazyConnect, ...perNode } = redisOptions;
      delete perNode.retryStrategy;
      const clusterOptions: ClusterOptions = {
        enableOfflineQueue: enableOfflineQueue ?? true,
        lazyConnect: lazyConnect ?? false,
        shardedSubscribers: shardedSubscriber ?? false,
        redisOptions: perNode,
        // A failover (cluster-node-timeout, then the election) takes seconds: MOVED/CLUSTERDOWN are
        // retried for about as long before a command fails (retryDelay × maxRedirections).
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        retryDelayOnTryAgain: 200,
        maxRedirections: 16,
        slotsRefreshTimeout: 2_000,
        clusterRetryStrategy: noRetry ? () => null : (times: number) => Math.min(100 * times, 2_000),
      };
      return new Cluster(topology.nodes, clusterOptions);
    }
  }
}

/**
 * The hash tag of a pub/sub topic in a cluster: its first two segments (`tenant.42`, `queue.7`,
 * `all.calls`, `system.api-key-revoked`), so every channel of one tenant lives on one shard (one
 * SSUBSCRIBE connection per shard serves them all) and tenants spread over the shards.
 */
export function topicHashTag(topic: string): string {
  return topic.split(".").slice(0, 2).join(".");
}
