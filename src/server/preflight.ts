import { Redis } from "ioredis";
import net from "node:net";
import { StartupError } from "../common/startup-error";

/**
 * Before the pub/sub opens its long-lived connections (which retry for ever): one connection to
 * REDIS_URL that does not retry, so a wrong or unreachable Redis is one clear line at start.
 */
export async function assertRedisReachable(redisUrl: string): Promise<void> {
  const parsed = new URL(redisUrl);
  const where = `${parsed.hostname || "localhost"}:${parsed.port || 6379}`;
  const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5_000, enableOfflineQueue: false });
  let first: (Error & { code?: string }) | undefined;
  probe.on("error", (error: Error) => (first ??= error)); // reported below, once
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    const e = (first ?? error) as { code?: string; message?: string };
    const reason =
      e.code === "ENOTFOUND" || e.code === "EAI_AGAIN"
        ? `the host "${parsed.hostname}" does not resolve`
        : e.code === "ECONNREFUSED"
          ? "nothing accepts connections there"
          : (e.message ?? String(error)).split("\n")[0].replace(/\.$/, "");
    throw new StartupError(`cannot connect to Redis in REDIS_URL (${where}): ${reason}. Start Redis there or fix the URL, or unset REDIS_URL for in-process pub/sub (one instance).`);
  } finally {
    probe.disconnect();
  }
}

/**
 * The port is free before anything attaches to the HTTP server (graphql-ws would report a taken
 * port as its own "internal error"). listen() failing later is still mapped by listenStartupError.
 */
export async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => reject(listenStartupError(error, host, port)));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/** A listen() failure as one line naming PORT/HOST and the fix. */
export function listenStartupError(error: NodeJS.ErrnoException, host: string, port: number, variable = "PORT"): Error {
  if (error.code === "EADDRINUSE") return new StartupError(`${variable} ${port} is already in use (HOST ${host}): stop what listens there, or set ${variable} to a free port.`);
  if (error.code === "EACCES") return new StartupError(`${variable} ${port} needs privileges this process lacks: set ${variable} to 1024 or above.`);
  if (error.code === "EADDRNOTAVAIL" || error.code === "ENOTFOUND") return new StartupError(`HOST ${host} is not an address of this machine: set HOST to one of its addresses, or 0.0.0.0 for all.`);
  return error;
}
