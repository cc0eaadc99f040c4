import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** Distinct operation names a process labels metrics with; later new names count as "other". */
export const MAX_OPERATION_NAMES = 200;
const operationNames = new Set<string>();

/**
 * The `operation` label of a GraphQL operation: its name while the process has seen fewer than
 * MAX_OPERATION_NAMES distinct ones (clients use a fixed set of named operations), else "other" —
 * so names chosen by a caller cannot grow the label set, the memory or /metrics without bound.
 */
export function boundedOperationName(name: unknown): string {
  if (name === undefined || name === null || name === "") return "anonymous";
  if (typeof name !== "string" || !/^[_A-Za-z][_0-9A-Za-z]{0,63}$/.test(name)) return "other";
  if (operationNames.has(name)) return name;
  if (operationNames.size >= MAX_OPERATION_NAMES) return "other";
  operationNames.add(name);
  return name;
}

/** The process's Prometheus metrics, one registry per server (tests run several in one process). */
export class Metrics {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request duration by method, route and status.",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly graphqlOperations = new Counter({
    name: "graphql_operations_total",
    help: "GraphQL operations by name, type and outcome.",
    labelNames: ["operation", "type", "outcome", "transport"] as const,
    registers: [this.registry],
  });

  readonly dbReads = new Counter({
    name: "pbx_db_reads_total",
    help: "Requests that may read on the replica (DATABASE_REPLICA_URL), by where their reads went: replica, primary_lagging (x-pbx-read-after not replayed within REPLICA_WAIT_MS), primary_replica_down.",
    labelNames: ["target"] as const,
    registers: [this.registry],
  });

  readonly websocketsOpen = new Gauge({
    name: "websocket_connections_open",
    help: "Open graphql-ws connections.",
    registers: [this.registry],
  });

  readonly subscriptionGroups = new Gauge({
    name: "subscription_groups",
    help: "Distinct live subscriptions (root field and arguments, selection as the client shapes it, topic, role, tenant) rendered once per event.",
    registers: [this.registry],
  });

  readonly subscriptionExecutions = new Counter({
    name: "subscription_executions_total",
    help: "GraphQL executions of live events (one per event per feed while the shared execution succeeds).",
    registers: [this.registry],
  });

  readonly subscriptionsActive = new Gauge({
    name: "subscriptions_active",
    help: "Live graphql-ws subscriptions on this instance.",
    registers: [this.registry],
  });

  readonly subscriptionMessages = new Counter({
    name: "subscription_messages_total",
    help: "Subscription messages written to WebSockets.",
    registers: [this.registry],
  });

  readonly subscriptionEventsDropped = new Counter({
    name: "subscription_events_dropped_total",
    help: "Events dropped because a subscription group's queue was full.",
    registers: [this.registry],
  });

  readonly slowConsumersClosed = new Counter({
    name: "websocket_slow_consumers_closed_total",
    help: "WebSockets cut off because their unsent data passed the limit.",
    registers: [this.registry],
  });

  readonly ingestEvents = new Counter({
    name: "ingest_events_total",
    help: "Telephony events handled, by path (http, stream), kind (registration, call, queue, voicemail, unknown) and outcome (applied, duplicate, ignored, rejected).",
    labelNames: ["source", "type", "outcome"] as const,
    registers: [this.registry],
  });

  readonly streamEntriesAbandoned = new Counter({
    name: "ingest_stream_entries_abandoned_total",
    help: "Redis-stream entries acknowledged unapplied after STREAM_MAX_DELIVERIES failed deliveries (also counted as rejected).",
    registers: [this.registry],
  });

  readonly expirySweeps = new Counter({
    name: "pbx_registration_expiry_sweeps_total",
    help: "Registration expiry sweeps finished by this instance, by outcome (ok, failed).",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly registrationsExpired = new Counter({
    name: "pbx_registrations_expired_total",
    help: "Registrations this instance expired (past expiresAt with no refresh); each publishes an EXPIRED event.",
    registers: [this.registry],
  });

  readonly queueStatsRecomputes = new Counter({
    name: "queue_stats_recomputes_total",
    help: "Recomputes of watched queues' figures, by outcome: published (they moved), unchanged (nothing sent), failed.",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly webhookAttempts = new Counter({
    name: "webhook_delivery_attempts_total",
    help: "Webhook delivery attempts by outcome: delivered, retry (failed, tried again later), failed (the last attempt failed).",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly webhookDeliveryDuration = new Histogram({
    name: "webhook_delivery_duration_seconds",
    help: "Duration of webhook delivery attempts, by outcome (delivered, failed).",
    labelNames: ["outcome"] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Tells apart the processes behind one address (WEB_CONCURRENCY workers, replicas).
    new Gauge({ name: "pbx_instance_info", help: "This server process.", labelNames: ["pid"] as const, registers: [this.registry] }).set(
      { pid: String(process.pid) },
      1,
    );
  }
}
