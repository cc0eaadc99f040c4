import type { DataSource, EntityManager } from "typeorm";
import type { Logger } from "../common/logger";
import type { Principal } from "../auth/principal";
import type { Services } from "../services";
import type { Loaders } from "../graphql/loaders";
import type { PubSubEngine } from "../events/pubsub";
import type { LiveSocketBinding } from "../subscriptions/live";
import type { PendingEvent } from "../subscriptions/events";
import type { DbScope } from "../db/replica";

/**
 * Everything one request (or one subscription event) works with. Built once per transport call;
 * services take it first so that nothing escapes the request's principal, logger or transaction.
 */
/**
 * The door a request came through, as the audit trail records it: GraphQL (HTTP or WebSocket), the
 * REST adapter, or telephony ingestion. `cli` marks the operator's own scripts (seed), no public transport.
 */
export type Transport = "graphql" | "rest" | "ingest" | "cli";

export interface RequestContext {
  requestId: string;
  transport: Transport;
  principal: Principal | null;
  log: Logger;
  dataSource: DataSource;
  /** The transaction's manager while inside `transactional`, else the data source's. */
  manager: EntityManager;
  services: Services;
  loaders: Loaders;
  /** Work queued during a transaction (event publication), run only after it commits. */
  afterCommit: Array<() => Promise<void> | void>;
  /** Inside `transactional`: the events recorded so far, written to the event log just before COMMIT. */
  outbox?: PendingEvent[];
  pubsub: PubSubEngine;
  /** HTTP requests on real PostgreSQL: replica routing of its reads, WAL position of its commits (src/db/replica.ts). */
  db?: DbScope;
  /** Set by the graphql-ws transport for a subscription: hands the subscriber to the shared fan-out. */
  live?: LiveSocketBinding;
}
