import "reflect-metadata";
import { loadDotEnv } from "../config/dotenv";
import { ConfigError, loadConfig, SHUTDOWN_CLOSE_MS } from "../config/config";
import { loadEncryptionKey } from "../config/encryption-key";
import { createLogger } from "../common/logger";
import { SecretBox } from "../common/secret-box";
import { StartupError } from "../common/startup-error";
import { openDatabase } from "../db/data-source";
import { createPubSub } from "../events/pubsub";
import { createServices } from "../services";
import { loadMediaConfig } from "./config";
import { startMediaApp } from "./media-app";

/**
 * `npm run media`: the media application (contract §13) beside the API, Kamailio and rtpengine. It
 * works on the API's database (DATABASE_URL: the embedded database belongs to one process) and
 * pub/sub (REDIS_URL), through the product's services; SIGTERM ends its calls with BYE and exits 0.
 */
async function main(): Promise<void> {
  loadDotEnv();
  const config = loadConfig();
  const media = loadMediaConfig();
  if (!config.databaseUrl) throw new ConfigError("the media application needs DATABASE_URL: it shares the API's PostgreSQL (the embedded database serves one process only)");
  const log = createLogger(config.logLevel).child({ component: "media" });
  if (!config.redis) log.warn("REDIS_URL is not set: changes made through the API (a message marked heard) do not reach this process, so phones' lamps follow only what it does itself");
  const db = await openDatabase(config);
  const pubsub = createPubSub(config.redis, config.redisPrefix, log);
  const services = createServices({ dataSource: db.dataSource, config, secretBox: new SecretBox(loadEncryptionKey(config).key), log, pubsub });
  const app = await startMediaApp(media, services, { dataSource: db.dataSource, services, log, pubsub }, log);
  log.info({ sip: `udp:${media.sipHost}:${media.sipPort}`, rtpengine: `udp:${media.rtpengineHost}:${media.rtpenginePort}`, engine: media.engineUri }, "media application listening");
  process.stdout.write(`PBX media application listening on udp:${media.sipHost}:${media.sipPort}\n`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, calls: app.calls() }, "shutting down: ending calls");
    const force = setTimeout(() => process.exit(1), config.shutdownGraceMs + SHUTDOWN_CLOSE_MS);
    force.unref();
    app
      .stop()
      .then(() => pubsub.close())
      .then(() => db.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          log.error({ err: error }, "error while stopping");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`configuration error: ${error.message}\n`);
    process.exit(78);
  }
  if (error instanceof StartupError) process.stderr.write(`error: ${error.message}\n`);
  else process.stderr.write(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
