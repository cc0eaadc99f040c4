import type http from "node:http";
import { GraphQLError, parse, specifiedRules, validate, type GraphQLFormattedError, type GraphQLSchema } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import type { Principal } from "../auth/principal";
import type { AppConfig } from "../config/config";
import type { Logger } from "../common/logger";
import { buildContext, type ContextDeps } from "../context/build-context";
import { assertComplexity, depthRule } from "../graphql/limits";
import { bearerKey } from "../modules/api-key/api-key.service";
import type { Metrics } from "../observability/metrics";
import { FanoutHub } from "../subscriptions/fanout-hub";
import { API_KEY_REVOKED_TOPIC } from "../subscriptions/topics";

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
  const hub = new FanoutHub(deps.pubsub, deps, metrics, log, formatError);
  const wss = new WebSocketServer({ server: httpServer, path: "/graphql", maxPayload: config.bodyLimitBytes });
  const stopRevocations = deps.pubsub.subscribe(API_KEY_REVOKED_TOPIC, (payload) => {
    const id = (payload as { apiKeyId?: unknown }).apiKeyId;
    deps.services.apiKeys.invalidateCache();
    if (typeof id === "number") hub.closeKey(id);
  });

  const server = useServer<Record<string, unknown> | undefined, { principal: Principal }>(
    {
      schema,
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
      onSubscribe: (_ctx, _id, payload) => {
        try {
          assertComplexity(schema, parse(payload.query), payload.variables ?? undefined, payload.operationName, config.graphql);
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
      },
      validate: (validationSchema, document, rules) => validate(validationSchema, document, [...(rules ?? specifiedRules), depthRule(config.graphql)]),
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
        metrics.graphqlOperations.inc({ operation: payload.operationName ?? "anonymous", type: operation, outcome: failed ? "error" : "success", transport: "ws" });
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
