import { randomUUID } from "node:crypto";
import type { DataSource } from "typeorm";
import type { Principal } from "../auth/principal";
import type { Logger } from "../common/logger";
import { createLoaders } from "../graphql/loaders";
import type { Services } from "../services";
import type { PubSubEngine } from "../events/pubsub";
import type { RequestContext, Transport } from "./request-context";
import type { DbScope } from "../db/replica";

export interface ContextDeps {
  dataSource: DataSource;
  services: Services;
  log: Logger;
  pubsub: PubSubEngine;
}

/** The one builder every transport uses (HTTP GraphQL, graphql-ws per event, REST, ingestion). */
export function buildContext(deps: ContextDeps, principal: Principal | null, transport: Transport, requestId: string = randomUUID(), db?: DbScope): RequestContext {
  const ctx = {
    requestId,
    transport,
    principal,
    dataSource: deps.dataSource,
    manager: deps.dataSource.manager,
    services: deps.services,
    pubsub: deps.pubsub,
    afterCommit: [],
    ...(db ? { db } : {}),
  } as Omit<RequestContext, "loaders" | "log"> as RequestContext;
  // Made on first use: a compiled read (one statement, no resolver) needs neither its loaders nor a
  // child logger, and they were a measurable share of its server time.
  let log: RequestContext["log"] | undefined;
  let loaders: RequestContext["loaders"] | undefined;
  Object.defineProperties(ctx, {
    log: { enumerable: true, get: () => (log ??= deps.log.child({ requestId })), set: (value: RequestContext["log"]) => void (log = value) },
    loaders: { enumerable: true, get: () => (loaders ??= createLoaders(ctx)), set: (value: RequestContext["loaders"]) => void (loaders = value) },
  });
  return ctx;
}
