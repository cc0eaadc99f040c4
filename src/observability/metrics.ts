import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

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

  readonly websocketsOpen = new Gauge({
    name: "websocket_connections_open",
    help: "Open graphql-ws connections.",
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
