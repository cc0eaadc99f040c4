import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { trackChild } from "./run";
import { waitFor } from "./wait";

/**
 * Redis topologies built by a test on 127.0.0.1 (contract §14): a master, its replica and three
 * sentinels; or a three-master Redis Cluster. Every process is started here and stopped by its PID.
 * Ports are fixed per suite (the task's range 26380–26399), never the machine's Redis on 6379.
 */
export interface RedisProcess {
  port: number;
  child: ChildProcess;
}

export const hasRedisServer = (): boolean => spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.end();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });

export async function assertPortsFree(ports: number[]): Promise<void> {
  for (const port of ports) if (await portOpen(port)) throw new Error(`port ${port} is taken: another run of this suite, or something else, listens there`);
}

/** Starts redis-server (or a sentinel, `sentinel: true`) with a config file in `dir`; resolves once it accepts connections. */
export async function startRedis(dir: string, port: number, lines: string[], sentinel = false): Promise<RedisProcess> {
  const conf = path.join(dir, `${sentinel ? "sentinel" : "redis"}-${port}.conf`);
  fs.writeFileSync(conf, [`port ${port}`, "bind 127.0.0.1", `dir ${dir}`, 'save ""', "appendonly no", ...lines].join("\n") + "\n");
  const child = trackChild(spawn("redis-server", sentinel ? [conf, "--sentinel"] : [conf], { stdio: "ignore" }));
  await waitFor(`redis ${sentinel ? "sentinel" : "server"} on ${port}`, async () => (child.exitCode === null ? (await portOpen(port)) || undefined : Promise.reject(new Error(`redis on ${port} exited`))), 10_000);
  return { port, child };
}

/** SIGKILL by PID (a crash, not a shutdown); resolves once the process has exited. */
export async function killRedis(proc: RedisProcess): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.child.once("exit", resolve));
  process.kill(proc.child.pid!, "SIGKILL");
  await exited;
}

export function tempDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `pbx-${name}-`));
}

export const client = (port: number): Redis => new Redis(port, "127.0.0.1", { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true });

/** One command on a fresh connection (nothing left open between polls). */
export async function command(port: number, ...args: [string, ...Array<string | number>]): Promise<unknown> {
  const c = client(port);
  c.on("error", () => undefined);
  try {
    await c.connect();
    return await c.call(...args);
  } finally {
    c.disconnect();
  }
}

export interface SentinelSetup {
  name: string;
  master: RedisProcess;
  replica: RedisProcess;
  sentinels: RedisProcess[];
  /** REDIS_SENTINELS */
  sentinelList: string;
  /** The master's port as a sentinel reports it now. */
  masterPort(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** A master, one replica and three sentinels (quorum 2, master down after 1 s). */
export async function startSentinelSetup(ports: { master: number; replica: number; sentinels: [number, number, number] }, name = "pbxtest"): Promise<SentinelSetup> {
  await assertPortsFree([ports.master, ports.replica, ...ports.sentinels]);
  const dir = tempDir("sentinel");
  const started: RedisProcess[] = [];
  try {
    const master = await startRedis(dir, ports.master, []);
    started.push(master);
    const replica = await startRedis(dir, ports.replica, [`replicaof 127.0.0.1 ${ports.master}`]);
    started.push(replica);
    await waitFor("the replica in sync", async () => /master_link_status:up/.test(String(await command(ports.replica, "INFO", "replication"))) || undefined);
    const sentinels: RedisProcess[] = [];
    for (const port of ports.sentinels) {
      const s = await startRedis(
        dir,
        port,
        [
          `sentinel monitor ${name} 127.0.0.1 ${ports.master} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
        ],
        true,
      );
      started.push(s);
      sentinels.push(s);
    }
    // Each sentinel must know the replica and the two other sentinels (hello messages every 2 s) before a failover can be agreed.
    await waitFor(
      "the sentinels to know the replica and each other",
      async () => {
        for (const s of sentinels) {
          const replicas = (await command(s.port, "SENTINEL", "REPLICAS", name)) as unknown[];
          const peers = (await command(s.port, "SENTINEL", "SENTINELS", name)) as unknown[];
          if (replicas.length < 1 || peers.length < 2) return undefined;
        }
        return true;
      },
      20_000,
      200,
    );
    const masterPort = async () => {
      for (const s of sentinels) {
        try {
          const addr = (await command(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)) as [string, string] | null;
          if (addr) return Number(addr[1]);
        } catch {
          // try the next sentinel
        }
      }
      return undefined;
    };
    return {
      name,
      master,
      replica,
      sentinels,
      sentinelList: ports.sentinels.map((p) => `127.0.0.1:${p}`).join(","),
      masterPort,
      stop: async () => {
        for (const p of started.reverse()) await killRedis(p);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    for (const p of started.reverse()) await killRedis(p);
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

export interface ClusterSetup {
  nodes: RedisProcess[];
  /** REDIS_CLUSTER_NODES */
  nodeList: string;
  stop(): Promise<void>;
}

/** Masters (and with `replicas: 1`, one replica each: twice the ports), formed with redis-cli --cluster create. */
export async function startCluster(ports: number[], replicas = 0): Promise<ClusterSetup> {
  // The cluster bus defaults to port + 10000 (36390…), inside Linux's ephemeral range (32768-60999)
  // where any outgoing connection may hold it and the node exits: below the range instead.
  const busOf = (port: number) => port - 10000;
  await assertPortsFree([...ports, ...ports.map(busOf)]);
  const dir = tempDir("cluster");
  const nodes: RedisProcess[] = [];
  try {
    for (const port of ports) {
      nodes.push(await startRedis(dir, port, ["cluster-enabled yes", `cluster-port ${busOf(port)}`, `cluster-config-file nodes-${port}.conf`, "cluster-node-timeout 2000"]));
    }
    const created = spawnSync("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", String(replicas), "--cluster-yes"], { encoding: "utf8", timeout: 20_000 });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await waitFor("the cluster to be ok on every node", async () => {
      for (const port of ports) if (!/cluster_state:ok/.test(String(await command(port, "CLUSTER", "INFO")))) return undefined;
      // every replica attached and in sync with its master
      if (replicas > 0 && (await Promise.all(ports.map(async (port) => String(await command(port, "INFO", "replication"))))).filter((info) => /master_link_status:up/.test(info)).length < ports.length / 2) return undefined;
      return true;
    }, 30_000, 200);
    return {
      nodes,
      nodeList: ports.map((p) => `127.0.0.1:${p}`).join(","),
      stop: async () => {
        for (const p of nodes.reverse()) await killRedis(p);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    for (const p of nodes.reverse()) await killRedis(p);
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
