import path from "node:path";
import type { HostPort, RedisTopology } from "../events/redis-topology";

/** The process configuration, read once from the environment and validated at boot. */
export interface AppConfig {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  /** DATABASE_REPLICA_URL (contract §14): a streaming replica for the reads of requests that write nothing. */
  databaseReplicaUrl: string | undefined;
  /** REPLICA_WAIT_MS: how long a read with x-pbx-read-after waits for the replica before the primary answers it. */
  replicaWaitMs: number;
  /** PostgreSQL schema to work in (tests give each server its own); undefined = the connection's default. */
  databaseSchema: string | undefined;
  dataDir: string;
  /** REDIS_URL only (one server); `redis` says whether and how Redis is used on every topology. */
  redisUrl: string | undefined;
  /** Redis on any topology (REDIS_URL, REDIS_SENTINELS + REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES); undefined: in-process pub/sub. */
  redis: RedisTopology | undefined;
  /** Prefix for every Redis key and channel this instance uses (isolates test runs sharing one Redis). */
  redisPrefix: string;
  adminApiKey: string | undefined;
  /** A platform-wide INGEST key accepted as given: `npm run pbx` hands one to the Kamailio it starts. */
  engineApiKey: string | undefined;
  /** When set, a demo tenant with this SIP domain and extension 1001 are ensured at start and printed (`npm run pbx`). */
  pbxDemoDomain: string | undefined;
  secretEncryptionKey: string | undefined;
  migrateOnStart: boolean;
  logLevel: string;
  /** Largest accepted request body, in bytes. */
  bodyLimitBytes: number;
  /** Per-statement timeout on PostgreSQL, in milliseconds. */
  statementTimeoutMs: number;
  /** CDR partitions (months) that ended more than this many whole months ago are dropped; 0 keeps every CDR. */
  cdrRetentionMonths: number;
  /** Audit entries older than this many days are deleted (in batches, hourly); 0 keeps every entry. */
  auditRetentionDays: number;
  /** Largest accepted body of POST /api/extensions/import, in bytes (10,000 rows need more than BODY_LIMIT_BYTES). */
  importBodyLimitBytes: number;
  /** Redis-stream entries pending this long on another consumer are claimed: that instance is presumed dead. */
  streamClaimIdleMs: number;
  /** A stream entry delivered more times than this is logged and acknowledged as rejected, so a poison entry cannot loop. */
  streamMaxDeliveries: number;
  /** ENGINE_RECONCILE_S (contract §14): the product converges with the engine's snapshots within this; a node silent this long no longer counts. 0: off. */
  engineReconcileS: number;
  graphql: { maxDepth: number; maxComplexity: number; maxTokens: number; compiledReads: boolean };
  /** Operations one graphql-ws socket may have running at once; one more closes it with 4429. */
  wsMaxSubscriptions: number;
  /** TEST_FAULT_ROUTES: mounts /__faults (tests of the process guard only). */
  testFaultRoutes: boolean;
  /** Distinct live subscriptions one API key, and one tenant's keys together, may hold on an instance. */
  subscriptionMaxDistinctPerKey: number;
  subscriptionMaxDistinctPerTenant: number;
  /** How often registrations past their expiry are expired (with an EXPIRED event). */
  expirySweepMs: number;
  /** Server processes sharing the port (Node cluster); more than 1 needs DATABASE_URL and REDIS_URL. */
  webConcurrency: number;
  /** /metrics answers only `Authorization: Bearer <token>` when set. */
  metricsToken: string | undefined;
  /** /metrics on this port of HOST instead of the API's port, when set. */
  metricsPort: number | undefined;
  /** The engine's SIP-over-WebSocket listener that the softphone page (GET /phone) registers to; undefined: the page asks. */
  phoneWsUrl: string | undefined;
  /** Event log entries older than this are pruned; an `after` older than what is kept is refused. */
  eventLogRetentionHours: number;
  /** How often each instance relays events committed but not yet published (a crashed committer's). */
  eventRelayPollMs: number;
  /** Test hook: relay passes start this late (0 in production). */
  eventRelayDelayMs: number;
  webhooks: {
    /** Attempts per delivery before it is FAILED. */
    maxAttempts: number;
    /** Allow URLs that resolve to loopback, private or link-local addresses. */
    allowPrivate: boolean;
    /** The first retry delay; each further one doubles (with jitter). */
    retryBaseMs: number;
    /** How often each instance looks for due deliveries. */
    pollMs: number;
  };
  /** After SIGTERM, how long requests in flight may take to finish before their connections are cut. */
  shutdownGraceMs: number;
  voicemail: {
    /** Largest accepted audio of one message, in bytes (HTTP 413 above). */
    maxBytes: number;
    /** Messages one extension's mailbox holds; a deposit beyond is refused. */
    maxMessages: number;
    /** Messages received longer ago than this many days are deleted; 0 keeps them. */
    retentionDays: number;
    /** How often the retention sweep runs. */
    sweepMs: number;
  };
}

export class ConfigError extends Error {}

/** With the 2 s main.ts allows after it to close the rest, a default stop fits in 10 s (docker stop's default). */
export const DEFAULT_SHUTDOWN_GRACE_MS = 8_000;
/** What the process allows after the grace to close the stream consumer, pub/sub and database before it exits 1. */
export const SHUTDOWN_CLOSE_MS = 2_000;

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function optional(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === "" ? undefined : raw.trim();
}

/** A connection URL with one of the given schemes; the message names the variable and what it takes, never the password. */
function url(env: NodeJS.ProcessEnv, name: string, schemes: string[], example: string): string | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL: set it like ${example} (percent-encode special characters such as @ or / in the password)`);
  }
  if (!schemes.includes(parsed.protocol.replace(/:$/, ""))) {
    throw new ConfigError(`${name} must be a ${schemes.map((x) => `${x}://`).join(" or ")} URL (got ${parsed.protocol}//…): set it like ${example}`);
  }
  if (!parsed.hostname && !parsed.searchParams.has("host")) throw new ConfigError(`${name} names no host: set it like ${example}`);
  return raw;
}

/** `host:port,host:port`: each a host name or IPv4 address (IPv6 in brackets) and a port. */
function hostPorts(env: NodeJS.ProcessEnv, name: string, example: string): HostPort[] | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return undefined;
  const out: HostPort[] = [];
  for (const item of raw.split(",").map((x) => x.trim())) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(item);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 1 || port > 65535) {
      throw new ConfigError(`${name} must list host:port pairs separated by commas, like ${example}; "${item}" is not one`);
    }
    out.push({ host: m[1].replace(/^\[|\]$/g, ""), port });
  }
  return out;
}

/** Which Redis, if any (contract §14): exactly one of the three ways, each complete. */
function redisTopology(env: NodeJS.ProcessEnv, redisUrl: string | undefined, prefix: string): RedisTopology | undefined {
  const sentinels = hostPorts(env, "REDIS_SENTINELS", "10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379");
  const sentinelName = optional(env, "REDIS_SENTINEL_NAME");
  const clusterNodes = hostPorts(env, "REDIS_CLUSTER_NODES", "10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379");
  const given = [redisUrl && "REDIS_URL", sentinels && "REDIS_SENTINELS", clusterNodes && "REDIS_CLUSTER_NODES"].filter(Boolean);
  if (given.length > 1) {
    throw new ConfigError(`${given.join(" and ")} are both set: set one of REDIS_URL (one server), REDIS_SENTINELS with REDIS_SENTINEL_NAME (Sentinel), or REDIS_CLUSTER_NODES (Cluster)`);
  }
  if (sentinelName !== undefined && !sentinels) throw new ConfigError("REDIS_SENTINEL_NAME is set without REDIS_SENTINELS: list the sentinels as host:port,… or unset REDIS_SENTINEL_NAME");
  if (sentinels) {
    if (sentinelName === undefined) throw new ConfigError("REDIS_SENTINELS needs REDIS_SENTINEL_NAME: the master name the sentinels monitor (sentinel monitor <name> …)");
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(sentinelName)) throw new ConfigError(`REDIS_SENTINEL_NAME must be a master name of letters, digits, dots, dashes or underscores, got "${sentinelName}"`);
    return { kind: "sentinel", sentinels, name: sentinelName };
  }
  if (clusterNodes) {
    // A brace in the prefix would become every key's and channel's hash tag: one shard for everything.
    if (/[{}]/.test(prefix)) throw new ConfigError("REDIS_PREFIX must not contain { or } with REDIS_CLUSTER_NODES: the product places keys and channels on shards with its own hash tags");
    return { kind: "cluster", nodes: clusterNodes };
  }
  return redisUrl ? { kind: "single", url: redisUrl } : undefined;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const adminApiKey = optional(env, "ADMIN_API_KEY");
  if (adminApiKey !== undefined && adminApiKey.length < 16) {
    throw new ConfigError("ADMIN_API_KEY must be at least 16 characters long");
  }
  const engineApiKey = optional(env, "ENGINE_API_KEY");
  if (engineApiKey !== undefined && engineApiKey.length < 16) {
    throw new ConfigError("ENGINE_API_KEY must be at least 16 characters long");
  }
  const databaseSchema = optional(env, "DATABASE_SCHEMA");
  if (databaseSchema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(databaseSchema)) {
    throw new ConfigError("DATABASE_SCHEMA must be a lower-case SQL identifier");
  }
  const databaseReplicaUrl = url(env, "DATABASE_REPLICA_URL", ["postgres", "postgresql"], "postgres://user:password@replica-host:5432/database");
  if (databaseReplicaUrl && !optional(env, "DATABASE_URL")) {
    throw new ConfigError("DATABASE_REPLICA_URL needs DATABASE_URL (the primary): the embedded database has no replicas");
  }
  const redisUrl = url(env, "REDIS_URL", ["redis", "rediss"], "redis://host:6379");
  const redisPrefix = optional(env, "REDIS_PREFIX") ?? "";
  return {
    port: int(env, "PORT", 4000, 0, 65535),
    host: optional(env, "HOST") ?? "0.0.0.0",
    databaseUrl: url(env, "DATABASE_URL", ["postgres", "postgresql"], "postgres://user:password@host:5432/database"),
    databaseSchema,
    databaseReplicaUrl,
    replicaWaitMs: int(env, "REPLICA_WAIT_MS", 2_000, 0, 60_000),
    dataDir: path.resolve(optional(env, "DATA_DIR") ?? "./.data"),
    redisUrl,
    redis: redisTopology(env, redisUrl, redisPrefix),
    redisPrefix,
    adminApiKey,
    engineApiKey,
    pbxDemoDomain: optional(env, "PBX_DEMO_DOMAIN")?.toLowerCase(),
    secretEncryptionKey: optional(env, "SECRET_ENCRYPTION_KEY"),
    migrateOnStart: bool(env, "MIGRATE_ON_START", true),
    logLevel: optional(env, "LOG_LEVEL") ?? "info",
    bodyLimitBytes: int(env, "BODY_LIMIT_BYTES", 1024 * 1024, 1024),
    statementTimeoutMs: int(env, "STATEMENT_TIMEOUT_MS", 15_000, 100),
    cdrRetentionMonths: int(env, "CDR_RETENTION_MONTHS", 0, 0, 1200),
    auditRetentionDays: int(env, "AUDIT_RETENTION_DAYS", 0, 0, 36_500),
    importBodyLimitBytes: int(env, "IMPORT_BODY_LIMIT_BYTES", 8 * 1024 * 1024, 1024),
    streamClaimIdleMs: int(env, "STREAM_CLAIM_IDLE_MS", 30_000, 100, 86_400_000),
    streamMaxDeliveries: int(env, "STREAM_MAX_DELIVERIES", 10, 1, 1000),
    engineReconcileS: int(env, "ENGINE_RECONCILE_S", 60, 0, 86_400),
    expirySweepMs: int(env, "EXPIRY_SWEEP_MS", 5_000, 100, 3_600_000),
    webConcurrency: int(env, "WEB_CONCURRENCY", 1, 1, 64),
    metricsToken: optional(env, "METRICS_TOKEN"),
    metricsPort: optional(env, "METRICS_PORT") === undefined ? undefined : int(env, "METRICS_PORT", 0, 0, 65535),
    phoneWsUrl: url(env, "PHONE_WS_URL", ["ws", "wss"], "ws://127.0.0.1:8080 (Kamailio's WS_LISTEN)"),
    eventLogRetentionHours: int(env, "EVENT_LOG_RETENTION_HOURS", 72, 1, 24 * 366),
    eventRelayPollMs: int(env, "EVENT_RELAY_POLL_MS", 1000, 10, 600_000),
    eventRelayDelayMs: int(env, "EVENT_RELAY_DELAY_MS", 0, 0, 3_600_000),
    webhooks: {
      maxAttempts: int(env, "WEBHOOK_MAX_ATTEMPTS", 8, 1, 100),
      allowPrivate: bool(env, "WEBHOOK_ALLOW_PRIVATE", false),
      retryBaseMs: int(env, "WEBHOOK_RETRY_BASE_MS", 1000, 10, 3_600_000),
      pollMs: int(env, "WEBHOOK_POLL_MS", 500, 10, 600_000),
    },
    shutdownGraceMs: int(env, "SHUTDOWN_GRACE_MS", DEFAULT_SHUTDOWN_GRACE_MS, 1_000, 600_000),
    voicemail: {
      maxBytes: int(env, "VOICEMAIL_MAX_BYTES", 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      maxMessages: int(env, "VOICEMAIL_MAX_MESSAGES", 100, 1, 100_000),
      retentionDays: int(env, "VOICEMAIL_RETENTION_DAYS", 0, 0, 36_500),
      sweepMs: int(env, "VOICEMAIL_SWEEP_MS", 60_000, 100, 86_400_000),
    },
    graphql: {
      maxDepth: int(env, "GRAPHQL_MAX_DEPTH", 12, 2, 100),
      maxComplexity: int(env, "GRAPHQL_MAX_COMPLEXITY", 50_000, 10),
      maxTokens: int(env, "GRAPHQL_MAX_TOKENS", 5_000, 100, 1_000_000),
      compiledReads: bool(env, "GRAPHQL_COMPILED_READS", true),
    },
    wsMaxSubscriptions: int(env, "WS_MAX_SUBSCRIPTIONS", 100, 1, 100_000),
    testFaultRoutes: bool(env, "TEST_FAULT_ROUTES", false),
    subscriptionMaxDistinctPerKey: int(env, "SUBSCRIPTION_MAX_DISTINCT_PER_KEY", 1_000, 1, 1_000_000),
    subscriptionMaxDistinctPerTenant: int(env, "SUBSCRIPTION_MAX_DISTINCT_PER_TENANT", 5_000, 1, 1_000_000),
  };
}
