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
    log: deps.log.child({ requestId }),
    dataSource: deps.dataSource,
    manager: deps.dataSource.manager,
    services: deps.services,
    pubsub: deps.pubsub,
    afterCommit: [],
    ...(db ? { db } : {}),
  } as Omit<RequestContext, "loaders"> as RequestContext;
  ctx.loaders = createLoaders(ctx);
  return ctx;
}
