import net from "node:net";
import { StartupError } from "../common/startup-error";
import { connectRedis, describeTopology, type RedisTopology } from "../events/redis-topology";

/**
 * Before the pub/sub opens its long-lived connections (which retry for ever): one connection that
 * does not retry, so a wrong or unreachable Redis (or no master behind the sentinels, or no
 * cluster node answering) is one clear line at start.
 */
export async function assertRedisReachable(topology: RedisTopology): Promise<void> {
  const where = describeTopology(topology);
  const probe = connectRedis(topology, { lazyConnect: true, maxRetriesPerRequest: 0, noRetry: true, connectTimeout: 5_000, enableOfflineQueue: false });
  let first: (Error & { code?: string }) | undefined;
  probe.on("error", (error: Error) => (first ??= error)); // reported below, once
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    const e = (first ?? error) as { code?: string; message?: string; lastNodeError?: { message?: string } };
    const host = topology.kind === "single" ? new URL(topology.url).hostname : "";
    const reason =
      e.code === "ENOTFOUND" || e.code === "EAI_AGAIN"
        ? topology.kind === "single"
          ? `the host "${host}" does not resolve`
          : "a host does not resolve"
        : e.code === "ECONNREFUSED"
          ? "nothing accepts connections there"
          : topology.kind === "sentinel" && /All sentinels are unreachable/.test(e.message ?? "")
            ? "no sentinel answers there"
            : topology.kind === "cluster" && /Connection is closed|Failed to refresh slots cache/.test(e.message ?? "")
              ? "no cluster node answers there"
          : (e.lastNodeError?.message ?? e.message ?? String(error)).split("\n")[0].replace(/\.$/, "");
    const fix =
      topology.kind === "single"
        ? "Start Redis there or fix the URL, or unset REDIS_URL for in-process pub/sub (one instance)."
        : topology.kind === "sentinel"
          ? "Check that the sentinels run there and monitor that master name (SENTINEL GET-MASTER-ADDR-BY-NAME), and that its master is up."
          : "Check that the cluster nodes run there with cluster-enabled yes and that the cluster is formed (redis-cli --cluster check).";
    throw new StartupError(`cannot connect to Redis in ${where}: ${reason}. ${fix}`);
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
