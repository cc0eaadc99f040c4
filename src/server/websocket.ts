import type http from "node:http";
import type { GraphQLFormattedError, GraphQLSchema } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import type { Principal } from "../auth/principal";
import type { AppConfig } from "../config/config";
import type { Logger } from "../common/logger";
import { buildContext, type ContextDeps } from "../context/build-context";
import { clientError, prepareOperation } from "../graphql/prepare";
import { boundedOperationName } from "../observability/metrics";
import { bearerKey } from "../modules/api-key/api-key.service";
import type { Metrics } from "../observability/metrics";
import { FanoutHub } from "../subscriptions/fanout-hub";
import { API_KEY_REVOKED_TOPIC } from "../subscriptions/topics";

/** Close code for a socket that asks for more operations at once than WS_MAX_SUBSCRIPTIONS (graphql-ws's 4429 family: fatal, no retry). */
export const TOO_MANY_SUBSCRIPTIONS = 4429;

/** How long a socket may keep a key without re-checking it (revocations also arrive at once via pub/sub). */
const KEY_RECHECK_MS = 30_000;

export interface WebSocketTransport {
  hub: FanoutHub;
  /** Closes every socket with 1001 (going away) and stops accepting new ones. */
  dispose(): Promise<void>;
}

/**
 * graphql-ws on `/graphql` of the HTTP server: the key arrives in `connection_init`, operations get
 * the same depth and complexity limits as HTTP (Apollo's plugins do not run here), and
 * subscriptions go through the shared fan-out hub.
 */
export function attachWebSockets(
  httpServer: http.Server,
  schema: GraphQLSchema,
  deps: ContextDeps,
  config: AppConfig,
  metrics: Metrics,
  log: Logger,
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError,
): WebSocketTransport {
  const hub = new FanoutHub(deps.pubsub, deps, metrics, log, formatError, {
    perKey: config.subscriptionMaxDistinctPerKey,
    perTenant: config.subscriptionMaxDistinctPerTenant,
  });
  const wss = new WebSocketServer({ server: httpServer, path: "/graphql", maxPayload: config.bodyLimitBytes });
  // ws re-emits the HTTP server's errors (a taken port); startServer reports those, once.
  wss.on("error", () => undefined);
  const stopRevocations = deps.pubsub.subscribe(API_KEY_REVOKED_TOPIC, (payload) => {
    const id = (payload as { apiKeyId?: unknown }).apiKeyId;
    deps.services.apiKeys.invalidateCache();
    if (typeof id === "number") hub.closeKey(id);
  });

  const server = useServer<Record<string, unknown> | undefined, { principal: Principal }>(
    {
      schema,
      // A "__proto__" key in a message is dropped while parsing, as in HTTP bodies (common/json.ts).
      jsonMessageReviver: (key, value: unknown) => (key === "__proto__" ? undefined : value),
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const principal = await deps.services.apiKeys.authenticate(bearerKey(params.authorization ?? params.Authorization));
        if (!principal) return false;
        ctx.extra.principal = principal;
        const socket = ctx.extra.socket;
        const recheck = setInterval(async () => {
          if (!(await deps.services.apiKeys.isStillValid(principal).catch(() => true))) socket.close(4403, "Forbidden: API key revoked");
        }, KEY_RECHECK_MS);
        recheck.unref();
        socket.once("close", () => {
          clearInterval(recheck);
          hub.forgetSocket(socket, principal.apiKeyId);
        });
        return true;
      },
      // Parse (token-capped), validate, coerce variables and cost here, so every client mistake gets
      // its client code; the returned arguments run as they are (graphql-ws skips its own checks).
      onSubscribe: (ctx, _id, payload) => {
        if (Object.keys(ctx.subscriptions).length > config.wsMaxSubscriptions) {
          const socket = ctx.extra.socket;
          setImmediate(() => socket.close(TOO_MANY_SUBSCRIPTIONS, `Too many operations on one socket (at most ${config.wsMaxSubscriptions})`));
          return [clientError(`Too many operations on one socket (at most ${config.wsMaxSubscriptions}).`, "BAD_REQUEST")];
        }
        const prepared = prepareOperation(schema, payload, config.graphql);
        if (Array.isArray(prepared)) return prepared;
        const execArgs = { schema, document: prepared.document, operationName: prepared.operationName, variableValues: prepared.variableValues };
        // Past SUBSCRIPTION_MAX_DISTINCT_PER_KEY / _PER_TENANT: a graphql-ws `error` naming the limit; the socket stays.
        const principal = ctx.extra.principal;
        const refusal = principal && prepared.operation.operation === "subscription" ? hub.refusal(principal, execArgs) : undefined;
        return refusal ? [refusal] : execArgs;
      },
      context: (ctx, id, _payload, execArgs) => {
        const principal = ctx.extra.principal ?? null;
        const context = buildContext(deps, principal, "graphql");
        if (principal) {
          context.live = { register: (plan) => hub.register(ctx.extra.socket, id, principal, execArgs, plan) };
        }
        return context;
      },
      onOperation: (_ctx, _id, payload, _args, result) => {
        const operation = /^\s*(subscription|mutation)/.exec(payload.query)?.[1] ?? "query";
        const failed = typeof result === "object" && result !== null && "errors" in result && Array.isArray(result.errors);
        metrics.graphqlOperations.inc({ operation: boundedOperationName(payload.operationName), type: operation, outcome: failed ? "error" : "success", transport: "ws" });
      },
      // Queries, mutations and refused subscriptions answer through graphql-ws: format their errors as HTTP does.
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors ? { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e)) } : undefined,
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => formatError(e.toJSON(), e)),
    },
    wss,
  );
  wss.on("connection", (socket) => {
    metrics.websocketsOpen.inc();
    socket.once("close", () => metrics.websocketsOpen.dec());
  });

  return {
    hub,
    dispose: async () => {
      stopRevocations();
      hub.close();
      await server.dispose();
    },
  };
}
