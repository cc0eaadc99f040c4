import { compileCache } from "./boot";
import "reflect-metadata";
import cluster from "node:cluster";
import { ConfigError, loadConfig, SHUTDOWN_CLOSE_MS, type AppConfig } from "./config/config";
import { createLogger, type Logger } from "./common/logger";
import { StartupError } from "./common/startup-error";
import { loadDotEnv } from "./config/dotenv";
import { openDatabase } from "./db/data-source";
import { migrate } from "./db/migrate";
import { ApiKeyService } from "./modules/api-key/api-key.service";
import type { DemoPhone } from "./pbx/demo";
import { startServer, type RunningServer } from "./server/app";
import { guardProcess } from "./server/process-guard";

interface Started {
  url: string;
  database: "postgres" | "pglite";
  pubsub: "redis" | "in-process";
  /** False when Redis did not answer at start: the banner must not claim it works. */
  pubsubReady?: boolean;
  generatedAdminKey: string | null;
  demoPhone?: DemoPhone | null;
}

/** For the person who ran `npm start`, so straight to stdout rather than through the log pipeline. */
function printBanner(config: AppConfig, started: Started, workers: number): void {
  const { url } = started;
  const lines = [
    "",
    `PBX control plane listening on ${url}${workers > 1 ? ` (${workers} worker processes)` : ""}`,
    `  GraphQL   POST ${url}/graphql   (WebSocket: ${url.replace(/^http/, "ws")}/graphql)`,
    `  REST      ${url}/api/extensions`,
    `  Wallboard ${url}/wallboard`,
    `  Database  ${started.database === "pglite" ? `embedded PostgreSQL in ${config.dataDir}` : "PostgreSQL (DATABASE_URL)"}`,
    `  Pub/sub   ${
      started.pubsub === "redis"
        ? started.pubsubReady === false
          ? "Redis (REDIS_URL) — NOT reachable now: /readyz answers 503 and live events are dropped until it is"
          : "Redis (REDIS_URL)"
        : "in-process (single instance)"
    }`,
  ];
  if (started.generatedAdminKey) {
    lines.push("", `  Admin API key (shown once, store it now): ${started.generatedAdminKey}`);
  } else if (config.adminApiKey) {
    lines.push("", "  Admin API key: the ADMIN_API_KEY you set");
  } else {
    lines.push("", "  Admin API key: printed on the first start; set ADMIN_API_KEY to choose one");
  }
  if (started.demoPhone) {
    // `npm run pbx` reads this line (and prints what a phone needs once the SIP engine answers).
    const { domain, extension, secret, tenantId } = started.demoPhone;
    lines.push(`  Demo phone: domain ${domain} extension ${extension} password ${secret} tenant ${tenantId}`);
  }
  process.stdout.write(lines.join("\n") + "\n\n");
}

function onTermination(log: Logger, graceMs: number, stop: () => Promise<number>): void {
  let signalled = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, "shutting down");
    // Requests in flight have the grace; closing the rest gets a little more; then the process gives up.
    const limitMs = graceMs + SHUTDOWN_CLOSE_MS;
    const force = setTimeout(() => {
      log.error({ limitMs }, "shutdown took longer than SHUTDOWN_GRACE_MS allows; exiting");
      process.exit(1);
    }, limitMs);
    force.unref();
    stop().then(
      (code) => {
        log.info("stopped");
        process.exit(code);
      },
      (error: unknown) => {
        log.error({ err: error }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

/** The code cache is written once the server serves, off the start's path (a second later, idle or not). */
function saveCompileCacheSoon(): void {
  setTimeout(() => compileCache?.save(), 1000).unref();
}

/** One server in this process (the default). */
async function runServer(config: AppConfig, log: Logger): Promise<void> {
  guardProcess(log);
  const server = await startServer(config, { log });
  const pubsubReady = await server.pubsub.isReady();
  log.info({ url: server.url, database: server.db.engine, pubsub: server.pubsub.kind, pubsubReady }, "listening");
  printBanner(config, { url: server.url, database: server.db.engine, pubsub: server.pubsub.kind, pubsubReady, generatedAdminKey: server.generatedAdminKey, demoPhone: server.demoPhone }, 1);
  saveCompileCacheSoon();
  onTermination(log, config.shutdownGraceMs, async () => {
    await server.stop();
    return 0;
  });
}

/**
 * One worker of a cluster. Signals are the primary's to handle (a terminal's Ctrl-C or a group kill
 * reaches every process): it tells each worker when to stop, and a worker whose primary is gone
 * stops too — also when that happens while the worker is still starting.
 */
async function runWorker(config: AppConfig, log: Logger): Promise<void> {
  guardProcess(log);
  const worker: { server?: RunningServer; stopRequested?: boolean; stopping?: Promise<void> } = {};
  const stop = () => {
    worker.stopRequested = true;
    if (worker.server) worker.stopping ??= worker.server.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on("SIGINT", () => undefined);
  process.on("SIGTERM", () => undefined);
  process.on("message", (message: { type?: string }) => {
    if (message?.type === "stop") stop();
  });
  process.on("disconnect", stop);
  const server = (worker.server = await startServer(config, { log }));
  log.info({ url: server.url, pid: process.pid }, "worker listening");
  saveCompileCacheSoon();
  if (worker.stopRequested) stop();
  else process.send?.({ type: "listening", url: server.url });
}

/**
 * WEB_CONCURRENCY > 1: migrations and the first-start admin key happen once here, then the workers
 * share the port (Node's cluster module) and each other's events through Redis. A worker that dies
 * is replaced; on SIGTERM every worker drains as a single server would, and the primary exits 0
 * once they all have.
 */
async function runPrimary(config: AppConfig, log: Logger): Promise<void> {
  const db = await openDatabase(config);
  let generatedAdminKey: string | null = null;
  try {
    if (config.migrateOnStart) await migrate(db);
    if (!config.adminApiKey) generatedAdminKey = await new ApiKeyService(db.dataSource, undefined).ensureBootstrapAdmin();
  } finally {
    await db.close();
  }
  let stopping = false;
  let listening = 0;
  const fork = () => cluster.fork({ MIGRATE_ON_START: "false" });
  // Announced once, when every first-generation worker listens.
  cluster.on("message", (_worker, message: { type?: string; url?: string }) => {
    if (message?.type !== "listening" || !message.url) return;
    if (++listening === config.webConcurrency) {
      printBanner(config, { url: message.url, database: "postgres", pubsub: "redis", generatedAdminKey }, config.webConcurrency);
    }
  });
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    log.error({ pid: worker.process.pid, code, signal }, "a worker exited; starting another");
    fork();
  });
  for (let i = 0; i < config.webConcurrency; i++) fork();
  // Each worker drains within the grace; the primary waits for them with the same limit.
  onTermination(log, config.shutdownGraceMs, async () => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    const codes = await Promise.all(
      workers.map(
        (worker) =>
          new Promise<number>((resolve) => {
            worker.once("exit", (code) => resolve(code ?? 1));
            worker.send({ type: "stop" });
          }),
      ),
    );
    return codes.every((code) => code === 0) ? 0 : 1;
  });
}

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    loadDotEnv();
    config = loadConfig();
    if (config.webConcurrency > 1 && (!config.databaseUrl || !config.redis)) {
      throw new ConfigError("WEB_CONCURRENCY > 1 needs DATABASE_URL and REDIS_URL: the embedded database and in-process pub/sub serve one process only");
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`configuration error: ${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  if (cluster.isWorker) await runWorker(config, log);
  else if (config.webConcurrency > 1) await runPrimary(config, log);
  else await runServer(config, log);
}

main().catch((error: unknown) => {
  // A fault the operator fixes is one line; anything else is a bug and keeps its stack.
  if (error instanceof StartupError) process.stderr.write(`error: ${error.message}\n`);
  else process.stderr.write(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
