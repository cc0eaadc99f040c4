import { ApolloServer, type ApolloServerPlugin } from "@apollo/server";
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { expressMiddleware } from "@as-integrations/express5";
import express, { type ErrorRequestHandler, type RequestHandler } from "express";
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { GraphQLError, Kind, type DocumentNode, type GraphQLSchema } from "graphql";
import type { AppConfig } from "../config/config";
import { loadEncryptionKey } from "../config/encryption-key";
import type { Logger } from "../common/logger";
import { SecretBox } from "../common/secret-box";
import { openDatabase, type Database, type OpenDatabaseOptions } from "../db/data-source";
import { migrate } from "../db/migrate";
import { buildContext, type ContextDeps } from "../context/build-context";
import { attachWebSockets } from "./websocket";
import { assertPortFree, assertRedisReachable, listenStartupError } from "./preflight";
import type { RequestContext } from "../context/request-context";
import { createPubSub, type PubSubEngine } from "../events/pubsub";
import { createFormatError } from "../graphql/format-error";
import { assertComplexity, depthRule, parseOptions } from "../graphql/limits";
import { redactVariables, sensitiveVariables } from "../common/redact";
import { compiledReads } from "../graphql/compiled-reads.route";
import { buildAppSchema } from "../graphql/schema";
import { bearerKey } from "../modules/api-key/api-key.service";
import { boundedOperationName, Metrics } from "../observability/metrics";
import { registerPlatformGauges } from "../observability/platform-gauges";
import { createRestRouter } from "../rest/router";
import { createServices, type Services } from "../services";
import { CdrPartitionMaintainer } from "../modules/cdr/cdr-partitions";
import { createEventsRouter } from "../ingest/events.route";
import { RegistrationExpiry } from "../ingest/registration-expiry";
import { voicemailRetention } from "../modules/voicemail/voicemail-retention";
import { StreamConsumer, STREAM_KEY } from "../ingest/stream-consumer";
import { EngineBindingNotes } from "../engine/binding-notes";
import { createExplorer } from "../explorer/explorer.route";
import { createWallboardRouter } from "../wallboard/wallboard.route";
import { createPhoneRouter } from "../phone/phone.route";
import { WebhookDispatcher } from "../modules/webhook/webhook-dispatcher";
import { Drain } from "./drain";
import { requestScope } from "./request-scope";
import { FRONT_LOGGED, graphqlFront, logRequest, requestIdOf } from "./graphql-front";
import { dropPrototypeKeys, markPrototypeKeys } from "../common/json";
import type { Principal } from "../auth/principal";
import { auditRetention } from "../modules/audit/audit.service";
import { ensureDemoPhone, type DemoPhone } from "../pbx/demo";
import { unwrapResolverError } from "@apollo/server/errors";
import { DATABASE_RETRY_AFTER_S, DbScope, isDatabaseUnavailable, parseLsn, READ_AFTER_HEADER, WRITE_LSN_HEADER, type ReplicaRouter } from "../db/replica";

export interface RunningServer {
  url: string;
  port: number;
  /** Where /metrics is served: the API's port, or METRICS_PORT. */
  metricsUrl: string;
  /** Set on the first start without ADMIN_API_KEY: the generated key, to print once. */
  generatedAdminKey: string | null;
  /** With PBX_DEMO_DOMAIN (`npm run pbx`): the demo extension a phone can register as. */
  demoPhone: DemoPhone | null;
  db: Database;
  pubsub: PubSubEngine;
  services: Services;
  metrics: Metrics;
  /**
   * Stops accepting, finishes requests in flight (up to SHUTDOWN_GRACE_MS) and the stream batch in
   * hand, closes WebSockets with 1001, then closes the database and pub/sub.
   */
  stop(): Promise<void>;
}

export interface StartOptions {
  log: Logger;
  database?: OpenDatabaseOptions;
}

function requestLogging(log: Logger, metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    // A POST /graphql the node:http front read and left to Apollo already has its id, metric and log line.
    const front = (res as unknown as Record<symbol, string | undefined>)[FRONT_LOGGED];
    const requestId = front ?? requestIdOf(req);
    res.locals.requestId = requestId;
    if (front === undefined) {
      logRequest(req, res, requestId, log, metrics, () => req.baseUrl + (req.route?.path ?? "") || (req.path.startsWith("/graphql") ? "/graphql" : "unmatched"));
    }
    // Everything this request starts runs in its scope: the process guard finds it there.
    requestScope.run({ requestId, res }, next);
  };
}

/** Body-parser failures as the JSON answers the contract names: malformed JSON 400, oversize 413. */
const bodyErrors: ErrorRequestHandler = (error, _req, res, next) => {
  const e = error as { type?: string; status?: number };
  if (e.type === "entity.too.large") return void res.status(413).json({ message: "The request body is too large." });
  if (e.type === "entity.parse.failed") return void res.status(400).json({ message: "The request body is not valid JSON." });
  if (e.type === "encoding.unsupported" || e.type === "charset.unsupported") return void res.status(415).json({ message: "Unsupported content encoding." });
  next(error);
};

/**
 * JSON bodies: parsed (up to `limit`), their parse failures answered, and any `__proto__` key
 * removed before a route sees them (see common/json.ts). Only a body whose bytes may hold one is
 * walked.
 */
function jsonBody(limit: number): Array<RequestHandler | ErrorRequestHandler> {
  const withoutPrototypeKeys: RequestHandler = (req, _res, next) => {
    if ((req as { prototypeKeys?: boolean }).prototypeKeys) dropPrototypeKeys(req.body);
    next();
  };
  return [express.json({ limit, verify: markPrototypeKeys }), bodyErrors, withoutPrototypeKeys];
}

function finalErrors(log: Logger): ErrorRequestHandler {
  return (error, _req, res, _next) => {
    // The database lost (a failover under way) wherever it surfaced: 503 + Retry-After, never a 500.
    if (isDatabaseUnavailable(error) && !res.headersSent) {
      log.warn({ err: error }, "database unreachable: HTTP request answered 503");
      res.setHeader("Retry-After", String(DATABASE_RETRY_AFTER_S));
      return void res.status(503).json({ message: "The database is unreachable right now; retry shortly." });
    }
    log.error({ err: error }, "unhandled error in HTTP request");
    if (!res.headersSent) res.status(500).json({ message: "Server Error" });
  };
}

/**
 * TEST_FAULT_ROUTES=1 only (never in production): requests that fail the way a bug would, so a test
 * can prove that the process guard keeps the process serving and answers them 500.
 */
function faultRoutes(): express.Router {
  const router = express.Router();
  router.post("/rejection", () => {
    void Promise.reject(new Error("injected unhandled rejection"));
  });
  router.post("/exception", () => {
    setImmediate(() => {
      throw new Error("injected uncaught exception");
    });
  });
  return router;
}

/** Whether an operation asks for the schema itself (`__schema` or `__type` at its root). */
function isIntrospection(document: DocumentNode): boolean {
  return document.definitions.some(
    (d) => d.kind === Kind.OPERATION_DEFINITION && d.selectionSet.selections.some((s) => s.kind === Kind.FIELD && (s.name.value === "__schema" || s.name.value === "__type")),
  );
}

/**
 * Checks between validation and execution (cost, transport, introspection rule), the operation
 * metric with a bounded name label, and variable errors redacted where a variable feeds a
 * write-only field (`input: { secret: $s }` with `$s` = 123 must not echo 123).
 */
function operationsPlugin(metrics: Metrics, schema: GraphQLSchema, config: AppConfig): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, request, operationName, operation, contextValue }) {
          // A query writes nothing: its reads may go to the replica (contract §14); a mutation's never do.
          if (operation?.operation === "query") contextValue.db?.allowReplica();
          if (operation?.operation === "subscription") {
            throw new GraphQLError("Subscriptions are served over WebSocket only (graphql-transport-ws on /graphql).", {
              extensions: { code: "BAD_REQUEST", http: { status: 400 } },
            });
          }
          if (!contextValue.principal && isIntrospection(document)) {
            throw new GraphQLError("Introspection needs an API key (any valid key).", {
              extensions: { code: "UNAUTHENTICATED", http: { status: 401, headers: new Map([["www-authenticate", "Bearer"]]) } },
            });
          }
          assertComplexity(schema, document, request.variables, operationName, config.graphql);
        },
        async willSendResponse({ operation, operationName, errors, response, document, contextValue }) {
          const db = contextValue?.db;
          // Every mutation's answer carries the primary's WAL position (also one that committed nothing).
          if (operation?.operation === "mutation" && db?.tracksWrites) {
            if (!db.writeLsn) await db.recordCommit(contextValue.dataSource);
            if (db.writeLsn) response.http.headers.set(WRITE_LSN_HEADER, db.writeLsn);
          }
          // The database unreachable (the primary lost, a failover under way): 503 + Retry-After, not a 200 with errors.
          if (errors?.some((e) => isDatabaseUnavailable(unwrapResolverError(e)))) {
            response.http.status = 503;
            response.http.headers.set("retry-after", String(DATABASE_RETRY_AFTER_S));
          }
          metrics.graphqlOperations.inc({
            operation: boundedOperationName(operationName),
            type: operation?.operation ?? "unknown",
            outcome: errors?.length ? "error" : "success",
            transport: "http",
          });
          if (response.body.kind === "single" && response.body.singleResult.errors && document) {
            const sensitive = sensitiveVariables(document);
            if (sensitive.size) {
              response.body.singleResult.errors = response.body.singleResult.errors.map((e) => ({ ...e, message: redactVariables(e.message, sensitive) }));
            }
          }
        },
      };
    },
  };
}

/**
 * Per HTTP request on real PostgreSQL (contract §14): a DbScope in res.locals.db (replica routing of
 * its reads after `x-pbx-read-after`, the WAL position of its commits), and `x-pbx-write-lsn` on the
 * answer of a request that committed. A malformed `x-pbx-read-after` is refused with 400.
 */
function databaseScope(engine: "postgres" | "pglite", replica: ReplicaRouter | undefined, transport: "graphql" | "rest"): RequestHandler {
  return (req, res, next) => {
    if (engine !== "postgres") return next();
    let readAfter: bigint | undefined;
    const raw = req.headers[READ_AFTER_HEADER];
    if (raw !== undefined && replica) {
      const parsed = typeof raw === "string" ? parseLsn(raw) : null;
      if (parsed === null) {
        const message = `The ${READ_AFTER_HEADER} header must be a WAL position as ${WRITE_LSN_HEADER} gives it (like 0/16B3748).`;
        return void res.status(400).json(transport === "graphql" ? { errors: [{ message, extensions: { code: "BAD_USER_INPUT" } }] } : { message });
      }
      readAfter = parsed;
    }
    const scope = new DbScope(replica, readAfter, true);
    // A REST read writes nothing; GraphQL decides per operation (operationsPlugin, compiled reads).
    if (transport === "rest" && (req.method === "GET" || req.method === "HEAD")) scope.allowReplica();
    res.locals.db = scope;
    const writeHead = res.writeHead;
    res.writeHead = function (this: typeof res, ...args: unknown[]) {
      if (scope.writeLsn && !this.headersSent && !this.hasHeader(WRITE_LSN_HEADER)) this.setHeader(WRITE_LSN_HEADER, scope.writeLsn);
      return (writeHead as (...a: unknown[]) => typeof res).apply(this, args);
    } as typeof res.writeHead;
    next();
  };
}

/** Prometheus text; with METRICS_TOKEN only for `Authorization: Bearer <token>` (compared in constant time). */
function metricsHandler(metrics: Metrics, config: AppConfig): RequestHandler {
  const expected = config.metricsToken ? createHash("sha256").update(config.metricsToken).digest() : null;
  return async (req, res) => {
    if (expected) {
      const given = createHash("sha256").update(String(bearerKey(req.headers.authorization) ?? "")).digest();
      if (!timingSafeEqual(given, expected)) {
        res.setHeader("www-authenticate", 'Bearer realm="metrics"');
        return void res.status(401).json({ message: "Unauthenticated." });
      }
    }
    res.setHeader("content-type", metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  };
}

export async function startServer(config: AppConfig, options: StartOptions): Promise<RunningServer> {
  const log = options.log;
  const encryption = loadEncryptionKey(config);
  if (encryption.source === "generated") {
    log.warn({ file: encryption.file }, "SECRET_ENCRYPTION_KEY is not set: generated a key beside the data; back it up, or SIP secrets cannot be read");
  }
  await assertPortFree(config.host, config.port);
  if (config.redis) await assertRedisReachable(config.redis);
  const db = await openDatabase(config, { ...options.database, log });
  const pubsub = createPubSub(config.redis, config.redisPrefix, log);
  try {
    if (config.migrateOnStart) {
      const applied = await migrate(db);
      if (applied.length) log.info({ migrations: applied.map((m) => m.name) }, "applied migrations");
    }
    const secretBox = new SecretBox(encryption.key);
    const services = createServices({ dataSource: db.dataSource, config, secretBox, log, pubsub });
    // Extensions stored before the digest columns existed get them now: only the application holds the key.
    await services.credentials.backfill(db.dataSource, log);
    const generatedAdminKey = config.adminApiKey ? null : await services.apiKeys.ensureBootstrapAdmin();
    const metrics = new Metrics();
    services.events.registerMetrics(metrics);
    if (db.replica) db.replica.onRead = (target) => metrics.dbReads.inc({ target });
    const deps: ContextDeps = { dataSource: db.dataSource, services, log, pubsub };
    const demoPhone = config.pbxDemoDomain ? await ensureDemoPhone(deps, config.pbxDemoDomain, log) : null;
    const schema = await buildAppSchema(pubsub);

    const app = express();
    app.disable("x-powered-by");
    app.set("trust proxy", true);
    // Express serves every request, unless the compiled-read front (set below) answers it first.
    let listener: http.RequestListener = app;
    const httpServer = http.createServer((req, res) => listener(req, res));
    const authenticate = (header: unknown): Promise<Principal | null> => services.apiKeys.authenticate(bearerKey(header));
    const formatError = createFormatError(log);
    const ws = attachWebSockets(httpServer, schema, deps, config, metrics, log, formatError);
    const drain = new Drain(config.shutdownGraceMs);

    // Compiled reads validate a document with these same rules before planning it.
    const validationRules = [depthRule(config.graphql)];
    const apollo = new ApolloServer<RequestContext>({
      schema,
      introspection: true,
      includeStacktraceInErrorResponses: false,
      // Auth is a bearer header, never a cookie, so there is no ambient credential to forge.
      csrfPrevention: false,
      // main.ts owns SIGTERM/SIGINT (drain, close sockets with 1001, exit 0); Apollo's own handlers
      // (on whenever NODE_ENV is not "test") would call stop() a second time and hang the shutdown.
      stopOnTerminationSignals: false,
      validationRules,
      parseOptions: parseOptions(config.graphql),
      formatError,
      plugins: [
        // We set no cache hints; the default cache-control plugin would still wrap every field resolver.
        ApolloServerPluginCacheControlDisabled(),
        // GET /graphql in a browser is our own explorer (src/explorer), not Apollo's CDN-hosted page.
        ApolloServerPluginLandingPageDisabled(),
        // Requests in flight get SHUTDOWN_GRACE_MS to finish (Apollo's default is 10 s) before their connections are cut.
        ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownGraceMs }),
        { async serverWillStart() { return { async drainServer() { await ws.dispose(); } }; } },
        operationsPlugin(metrics, schema, config),
      ],
    });
    await apollo.start();

    const reads = config.graphql.compiledReads ? compiledReads(schema, deps, { limits: config.graphql, validationRules }, metrics, authenticate) : null;
    if (reads) listener = graphqlFront({
        reads,
        bodyLimitBytes: config.bodyLimitBytes,
        log,
        metrics,
        next: app,
        // As databaseScope gives Express's requests: a compiled read is a query, its reads may use the replica.
        dbScope: db.engine === "postgres" ? () => new DbScope(db.replica, undefined, true) : undefined,
      });
    app.use(requestLogging(log, metrics));
    app.get("/healthz", (_req, res) => void res.json({ status: "ok" }));
    app.get("/readyz", async (_req, res) => {
      const [database, events] = await Promise.all([
        db.dataSource.query("SELECT 1").then(() => true, () => false),
        pubsub.isReady(),
      ]);
      if (!(database && events)) res.setHeader("Retry-After", String(DATABASE_RETRY_AFTER_S));
      // The replica is reported, not required: without it reads go to the primary.
      const replica = db.replica ? { replica: db.replica.up } : {};
      res.status(database && events ? 200 : 503).json({ status: database && events ? "ready" : "unavailable", database, pubsub: events, ...replica });
    });
    const platformGauges = registerPlatformGauges(metrics, db.dataSource, { redis: config.redis, redisPrefix: config.redisPrefix });
    const metricsServer = config.metricsPort === undefined ? null : express().disable("x-powered-by").get("/metrics", metricsHandler(metrics, config));
    if (!metricsServer) app.get("/metrics", metricsHandler(metrics, config));
    const explorer = createExplorer(log);
    app.use("/graphiql", explorer.assets);
    app.get("/graphql", explorer.page);
    app.use("/graphql", databaseScope(db.engine, db.replica, "graphql"));
    app.use("/api", databaseScope(db.engine, db.replica, "rest"));
    app.use(
      "/graphql",
      ...jsonBody(config.bodyLimitBytes),
      ...(reads ? [reads.middleware] : []),
      expressMiddleware(apollo, {
        context: async ({ req }) => {
          let principal: Principal | null;
          try {
            principal = await authenticate(req.headers.authorization);
          } catch (error) {
            if (!isDatabaseUnavailable(error)) throw error;
            throw new GraphQLError("The database is unreachable right now; retry shortly.", {
              extensions: { code: "SERVICE_UNAVAILABLE", http: { status: 503, headers: new Map([["retry-after", String(DATABASE_RETRY_AFTER_S)]]) } },
            });
          }
          return buildContext(deps, principal, "graphql", String(req.res?.locals.requestId ?? randomUUID()), req.res?.locals.db as DbScope | undefined);
        },
      }),
    );
    app.use("/api/events", ...jsonBody(config.bodyLimitBytes), createEventsRouter(deps, metrics, drain));
    // A bulk import may be larger than any other body (IMPORT_BODY_LIMIT_BYTES); a CSV one is streamed by its route.
    app.use("/api/extensions/import", ...jsonBody(config.importBodyLimitBytes));
    app.use("/api", ...jsonBody(config.bodyLimitBytes), createRestRouter({ ...deps, config }));
    app.use("/wallboard", createWallboardRouter(log));
    app.use("/phone", createPhoneRouter(log, config.phoneWsUrl));
    if (config.testFaultRoutes) app.use("/__faults", faultRoutes());
    app.use((_req, res) => void res.status(404).json({ message: "Not Found" }));
    app.use(finalErrors(log));

    // CDR months exist before the first event can arrive.
    const cdrPartitions = new CdrPartitionMaintainer(db.dataSource, config.cdrRetentionMonths, log);
    await cdrPartitions.start();
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", (error: NodeJS.ErrnoException) => reject(listenStartupError(error, config.host, config.port)));
      httpServer.listen(config.port, config.host, () => resolve());
    });
    const port = (httpServer.address() as AddressInfo).port;
    const metricsHttp = metricsServer ? http.createServer(metricsServer) : null;
    if (metricsHttp) {
      await new Promise<void>((resolve, reject) => {
        metricsHttp.once("error", (error: NodeJS.ErrnoException) => reject(listenStartupError(error, config.host, config.metricsPort!, "METRICS_PORT")));
        metricsHttp.listen(config.metricsPort, config.host, () => resolve());
      });
    }
    const host = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;

    const expiry = new RegistrationExpiry(deps, log, config.expirySweepMs, metrics);
    expiry.start();
    // The SIP engine shares the stream's Redis: it is told there which extensions lost their bindings.
    const bindingNotes = config.redis ? new EngineBindingNotes(config.redis, `${config.redisPrefix}${STREAM_KEY}`, log) : null;
    if (bindingNotes) services.events.onRelay(bindingNotes.relaySink);
    services.events.start();
    const webhookDispatcher = new WebhookDispatcher(db.dataSource, secretBox, config, metrics, log);
    services.webhooks.onDeliveries = () => webhookDispatcher.kick();
    services.queueStats.feed.onRecompute = (outcome) => metrics.queueStatsRecomputes.inc({ outcome });
    webhookDispatcher.start();
    const auditPruner = auditRetention(db.dataSource, config.auditRetentionDays, log);
    void auditPruner?.start();
    const voicemailPruner = voicemailRetention(deps, log, config.voicemail.retentionDays, config.voicemail.sweepMs);
    void voicemailPruner?.start();
    const streamConsumer = config.redis ? new StreamConsumer(deps, metrics, config, config.redis) : null;
    streamConsumer?.start();

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        drain.begin();
        // The stream consumer stops taking entries at once and finishes its batch in hand while HTTP drains.
        await Promise.all([apollo.stop(), streamConsumer?.stop()]);
        await new Promise<void>((resolve) => (metricsHttp ? metricsHttp.close(() => resolve()) : resolve()));
        platformGauges.close();
        services.queueStats.close();
        await expiry.stop();
        // The pruner's deletions record events: it stops before the relay that publishes them.
        await voicemailPruner?.stop();
        await services.events.stop();
        bindingNotes?.close();
        await webhookDispatcher.stop();
        await cdrPartitions.stop();
        await auditPruner?.stop();
        await pubsub.close();
        await db.close();
      })());

    const metricsPort = metricsHttp ? (metricsHttp.address() as AddressInfo).port : port;
    return { url: `http://${host}:${port}`, port, metricsUrl: `http://${host}:${metricsPort}/metrics`, generatedAdminKey, demoPhone, db, pubsub, services, metrics, stop };
  } catch (error) {
    await pubsub.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw error;
  }
}
