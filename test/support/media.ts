import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createLogger } from "../../src/common/logger";
import { loadMediaConfig } from "../../src/media/config";
import { startMediaApp, type MediaApp } from "../../src/media/media-app";
import { Rtpengine } from "../../src/media/rtpengine";
import type { TestServer } from "./server";
import { freeUdpPort, stopProcess } from "./sip";
import { waitFor } from "./wait";

/**
 * The media plane for the tests: Debian's rtpengine in userspace on a free ng port and its own RTP
 * port range, and the media application (contract §13) on a free SIP port, working on a test server's
 * database and pub/sub. Processes are stopped by their PID.
 */
export interface RtpengineProcess {
  ngPort: number;
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

let rangeCounter = 0;

export async function startRtpengine(): Promise<RtpengineProcess> {
  const ngPort = await freeUdpPort();
  // A range of its own per process and per test file, away from the ports the OS hands out at random.
  const base = 30000 + ((process.pid * 7 + rangeCounter++ * 200) % 9800) * 2;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-rtpengine-"));
  const args = [
    "--config-file=none", "--table=-1", "--foreground", "--log-stderr", "--log-level=5",
    "--interface=127.0.0.1", `--listen-ng=127.0.0.1:${ngPort}`, `--port-min=${base}`, `--port-max=${base + 399}`,
    `--pidfile=${path.join(dir, "rtpengine.pid")}`, "--delete-delay=0", "--timeout=60",
  ];
  const child = spawn("rtpengine", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const stop = async () => {
    await stopProcess(child);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const probe = new Rtpengine("127.0.0.1", ngPort, createLogger("silent"));
  try {
    await waitFor("rtpengine to answer ping", async () => {
      if (child.exitCode !== null) throw new Error(`rtpengine exited with ${child.exitCode}:\n${out}`);
      return probe.ping();
    }, 15_000, 100);
  } catch (error) {
    await stop();
    throw error;
  } finally {
    probe.close();
  }
  return { ngPort, pid: child.pid!, output: () => out, stop };
}

export interface MediaInstance {
  sipPort: number;
  app: MediaApp;
  filesDir: string;
  stop(): Promise<void>;
}

/** The media application in this process, on the test server's services (its database, pub/sub and outbox). */
export async function startMedia(ts: TestServer, rtpengine: RtpengineProcess, env: Record<string, string> = {}, port?: number): Promise<MediaInstance> {
  const sipPort = port ?? (await freeUdpPort());
  const filesDir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-media-files-"));
  const config = loadMediaConfig({
    MEDIA_SIP_LISTEN: `udp:127.0.0.1:${sipPort}`,
    RTPENGINE_NG: `udp:127.0.0.1:${rtpengine.ngPort}`,
    MEDIA_FILES_DIR: filesDir,
    ...env,
  });
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? "silent").child({ component: "media" });
  const { services, db, pubsub } = ts.server;
  const app = await startMediaApp(config, services, { dataSource: db.dataSource, services, log, pubsub }, log);
  return {
    sipPort,
    app,
    filesDir,
    stop: async () => {
      await app.stop();
      fs.rmSync(filesDir, { recursive: true, force: true });
    },
  };
}
