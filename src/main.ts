import "reflect-metadata";
import { ConfigError, loadConfig } from "./config/config";
import { createLogger } from "./common/logger";
import { startServer } from "./server/app";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`configuration error: ${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  const server = await startServer(config, { log });
  log.info({ url: server.url, database: server.db.engine, pubsub: server.pubsub.kind }, "listening");

  // The banner goes to stdout directly: it is for the person who ran `npm start`, not for the log pipeline.
  const lines = [
    "",
    `PBX control plane listening on ${server.url}`,
    `  GraphQL   POST ${server.url}/graphql   (WebSocket: ${server.url.replace(/^http/, "ws")}/graphql)`,
    `  REST      ${server.url}/api/extensions`,
    `  Wallboard ${server.url}/wallboard`,
    `  Database  ${server.db.engine === "pglite" ? `embedded PostgreSQL in ${config.dataDir}` : "PostgreSQL (DATABASE_URL)"}`,
    `  Pub/sub   ${server.pubsub.kind === "redis" ? "Redis (REDIS_URL)" : "in-process (single instance)"}`,
  ];
  if (server.generatedAdminKey) {
    lines.push("", `  Admin API key (shown once, store it now): ${server.generatedAdminKey}`);
  } else if (config.adminApiKey) {
    lines.push("", "  Admin API key: the ADMIN_API_KEY you set");
  } else {
    lines.push("", "  Admin API key: printed on the first start; set ADMIN_API_KEY to choose one");
  }
  process.stdout.write(lines.join("\n") + "\n\n");

  let signalled = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, "shutting down");
    const force = setTimeout(() => {
      log.error("shutdown took longer than 25s; exiting");
      process.exit(1);
    }, 25_000);
    force.unref();
    server.stop().then(
      () => {
        log.info("stopped");
        process.exit(0);
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

main().catch((error: unknown) => {
  process.stderr.write(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
