import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ensureEngineRoleAt } from "./engine-db";

/**
 * `npm run pbx`: the API, Kamailio with the shipped configuration (SIP on UDP, and SIP over
 * WebSocket for the /phone page), rtpengine when installed and the media application when it can
 * run (see mediaPlan), as one supervised set. Each child is its own process
 * group, so a terminal's Ctrl-C reaches this process only and the children are stopped here, by PID,
 * in the reverse order of their start. A child that dies stops the whole set (exit 1): a restarted
 * Kamailio has lost every registration, and a restart loop would hide a configuration error behind
 * a scrolling log — on one box, the operator should see it at once (for production, run each part
 * under its own service manager).
 */

export interface PbxOptions {
  /** The checkout: the working directory of every part, where deploy/kamailio/kamailio.cfg is. */
  root: string;
  /** The compiled API entry (dist/src/main.js) and, when built, the media application's. */
  apiMain: string;
  mediaMain: string;
  env: NodeJS.ProcessEnv;
  /** Where lines go (stdout): children's prefixed lines and the supervisor's own. */
  out: (line: string) => void;
}

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<void>;
}

export const KAMAILIO_PACKAGES = {
  base: ["kamailio", "kamailio-extra-modules", "kamailio-websocket-modules"],
  http: ["kamailio-utils-modules"],
  postgres: ["kamailio-postgres-modules"],
  redis: ["kamailio-redis-modules"],
};

/** A program on PATH, or null. */
export function which(program: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of [...(env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/sbin", "/sbin"]) {
    if (!dir) continue;
    const file = path.join(dir, program);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** udp:HOST:PORT (Kamailio's listen syntax) → its parts; refuses anything else with the variable named. */
export function parseSipListen(value: string): { host: string; port: number } {
  const match = /^udp:([0-9.]+):(\d{1,5})$/.exec(value);
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) {
    throw new Error(`SIP_LISTEN must look like udp:192.0.2.10:5060 (an IPv4 address and a port), got "${value}"`);
  }
  return { host: match[1], port: Number(match[2]) };
}

/** PBX_WS_PORT (Kamailio's WebSocket listener for the /phone page) → its port; refuses anything else with the variable named. */
export function parseWsPort(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_WS_PORT;
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new Error(`PBX_WS_PORT must be a TCP port (1-65535) for Kamailio's WebSocket listener, got "${value}"`);
  }
  return Number(value);
}

export const DEFAULT_WS_PORT = 8080;

/** Resolves true when nothing listens on host:port over TCP (a listener can be opened there now). */
export function tcpPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Sends one OPTIONS and resolves true on a 200 within `ms`. */
export async function sipPing(host: string, port: number, ms = 500): Promise<boolean> {
  const socket = dgram.createSocket("udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, "127.0.0.1", resolve);
    });
    const local = socket.address().port;
    const message = [
      `OPTIONS sip:${host}:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${randomBytes(6).toString("hex")};rport`,
      `From: <sip:ping@127.0.0.1>;tag=${randomBytes(4).toString("hex")}`,
      `To: <sip:${host}:${port}>`,
      `Call-ID: ${randomBytes(8).toString("hex")}`,
      "CSeq: 1 OPTIONS",
      "Max-Forwards: 70",
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      socket.once("message", (reply) => {
        clearTimeout(timer);
        resolve(reply.toString().startsWith("SIP/2.0 200"));
      });
      socket.send(message, port, host === "0.0.0.0" ? "127.0.0.1" : host);
    });
  } catch {
    return false;
  } finally {
    socket.close();
  }
}

/** Sends rtpengine one ng `ping` (bencode over UDP) and resolves true on its `pong` within `ms`. */
export async function rtpenginePing(port: number, ms = 500): Promise<boolean> {
  const socket = dgram.createSocket("udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, "127.0.0.1", resolve);
    });
    const cookie = randomBytes(6).toString("hex");
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      socket.once("message", (reply) => {
        clearTimeout(timer);
        resolve(reply.toString() === `${cookie} d6:result4:ponge`);
      });
      socket.send(`${cookie} d7:command4:pinge`, port, "127.0.0.1");
    });
  } catch {
    return false;
  } finally {
    socket.close();
  }
}

function redisServerDefine(redisUrl: string): string {
  const url = new URL(redisUrl);
  if (url.password || url.username) {
    // ndb_redis would take it only as a -A define, i.e. on the command line: refuse rather than leak.
    throw new Error("REDIS_URL carries a password: npm run pbx will not put it on Kamailio's command line; start Kamailio yourself (README, \"Connect a SIP engine\")");
  }
  const db = url.pathname.replace(/^\//, "");
  return `REDIS_SERVER="name=events;addr=${url.hostname};port=${url.port || 6379}${db ? `;db=${db}` : ""}"`;
}

/**
 * Whether a process of group `pgid` still runs (a zombie does not: it waits for a parent to reap it,
 * and an orphan's parent is init, which may take its time). Linux's /proc; elsewhere the group's
 * signal test, which counts zombies too.
 */
export function groupRunning(pgid: number): boolean {
  let entries: string[];
  try {
    entries = fs.readdirSync("/proc");
  } catch {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so read after the last ")".
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z" && state !== "X") return true;
  }
  return false;
}

/** KAMAILIO_SHM_MB: Kamailio's shared memory in MB (-m), 256 unless set. */
export function parseShmMb(value: string | undefined): number {
  if (value === undefined || value === "") return 256;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 32 || n > 65_536) throw new Error(`KAMAILIO_SHM_MB must be Kamailio's shared memory in MB (32-65536), got "${value}"`);
  return n;
}

/** Thrown by a start asked for after stop(): the set is going down, nothing new may start. */
export class StoppingError extends Error {}

export class Supervisor {
  private readonly children: Child[] = [];
  private stopping: Promise<number> | undefined;
  private readonly runDir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-run-"));
  /** Resolves with the exit code once the set has stopped (a signal, or a child that died). */
  readonly done: Promise<number>;
  private finish!: (code: number) => void;

  constructor(private readonly options: PbxOptions) {
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  private say(text: string): void {
    for (const line of text.split("\n")) this.options.out(`pbx      | ${line}`);
  }

  /** Starts a child in its own process group, its output line by line with the name in front. */
  private start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, onLine?: (line: string) => void): Child {
    // A signal that came while an earlier part was starting: nothing may start after stop() began.
    if (this.stopping) throw new StoppingError(`not starting ${name}: stopping`);
    const child = spawn(command, args, { cwd: this.options.root, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const label = name.padEnd(8).slice(0, 8);
    for (const stream of [child.stdout!, child.stderr!]) {
      let rest = "";
      stream.on("data", (chunk: Buffer) => {
        const lines = (rest + chunk.toString()).split("\n");
        rest = lines.pop()!;
        for (const line of lines) {
          this.options.out(`${label} | ${line}`);
          onLine?.(line);
        }
      });
      stream.on("end", () => rest && this.options.out(`${label} | ${rest}`));
    }
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const entry: Child = { name, process: child, exited };
    child.once("exit", (code, signal) => {
      if (this.stopping) return;
      this.say(`${name} (pid ${child.pid}) exited (${signal ?? `code ${code}`}): stopping the others`);
      void this.stop(1);
    });
    child.once("error", (error) => {
      if (this.stopping) return;
      this.say(`${name} could not start: ${error.message}`);
      void this.stop(1);
    });
    this.children.push(entry);
    return entry;
  }

  /**
   * Stops every child by PID, newest first: SIGTERM to its process group (the group's id is the
   * child's PID: Kamailio's workers are in it, also when their main process died), SIGKILL to the
   * group after `graceMs`. Resolves `code` once all have exited.
   */
  stop(code: number, graceMs = 12_000): Promise<number> {
    const signal = (pid: number, name: NodeJS.Signals) => {
      try {
        process.kill(-pid, name);
      } catch {
        // the group is gone
      }
    };
    this.stopping ??= (async () => {
      for (const child of [...this.children].reverse()) {
        const { pid } = child.process;
        if (pid === undefined) continue;
        signal(pid, "SIGTERM");
        const deadline = Date.now() + graceMs;
        const timer = setTimeout(() => signal(pid, "SIGKILL"), graceMs);
        await child.exited;
        // The group outlives its leader when the leader was the one that died (a Kamailio main
        // process killed: its workers remain, orphaned): wait for them too, SIGKILL at the deadline.
        while (groupRunning(pid)) {
          if (Date.now() > deadline) signal(pid, "SIGKILL");
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        clearTimeout(timer);
      }
      fs.rmSync(this.runDir, { recursive: true, force: true });
      this.finish(code);
      return code;
    })();
    return this.stopping;
  }

  async run(): Promise<void> {
    const { env, root } = this.options;
    const port = env.PORT || "4000";
    const sipListen = env.SIP_LISTEN || "udp:127.0.0.1:5060";
    const sip = parseSipListen(sipListen);
    // SIP over WebSocket for the browser softphone (GET /phone): on the SIP address's host, a TCP port.
    const wsPort = parseWsPort(env.PBX_WS_PORT);
    // Kamailio's shared memory: its own default (64 MB) runs out near 700 REGISTER/s (transactions
    // and their cloned requests; README "Performance"): 256 MB holds 1,500/s.
    const shmMb = parseShmMb(env.KAMAILIO_SHM_MB);
    const wsListen = `tcp:${sip.host}:${wsPort}`;
    const wsUrl = `ws://${sip.host === "0.0.0.0" ? "127.0.0.1" : sip.host}:${wsPort}`;
    const domain = (env.PBX_DEMO_DOMAIN || "demo.pbx.test").toLowerCase();
    const prefix = env.REDIS_PREFIX ?? "";
    const databaseUrl = env.DATABASE_URL || undefined;
    const redisUrl = env.REDIS_URL || undefined;
    const kamailio = which("kamailio", env);
    const packages = [...KAMAILIO_PACKAGES.base, ...(databaseUrl && redisUrl ? [] : KAMAILIO_PACKAGES.http), ...(databaseUrl ? KAMAILIO_PACKAGES.postgres : []), ...(redisUrl ? KAMAILIO_PACKAGES.redis : [])];
    const aptLine = `apt-get install -y --no-install-recommends ${packages.join(" ")}`;
    if (redisUrl) redisServerDefine(redisUrl);
    // Checked before anything starts: a taken port would otherwise be a Kamailio that dies after the API is up.
    if (kamailio && !(await tcpPortFree(sip.host, wsPort))) {
      throw new Error(`PBX_WS_PORT ${wsPort} is taken on ${sip.host} (Kamailio's WebSocket listener for the /phone page): stop what holds it or set PBX_WS_PORT to a free port`);
    }

    // The INGEST key the engine posts events and reads credentials with: new on every start, known to
    // the API and Kamailio through their environment only (never an argument, so never in ps or npm's echo).
    const engineKey = `pbx_engine_${randomBytes(24).toString("base64url")}`;
    // Like npm start: production unless said otherwise (graphql-js and express skip their development checks).
    const apiEnv: NodeJS.ProcessEnv = { ...env, NODE_ENV: env.NODE_ENV || "production", PORT: port, ENGINE_API_KEY: engineKey, PBX_DEMO_DOMAIN: domain, WEB_CONCURRENCY: "1" };
    // The page's default engine address: this Kamailio's listener, unless the operator named another
    // (a wss:// TLS proxy in front of it).
    const phoneWsUrl = env.PHONE_WS_URL || wsUrl;
    if (kamailio) apiEnv.PHONE_WS_URL = phoneWsUrl;
    if (env.WEB_CONCURRENCY && env.WEB_CONCURRENCY !== "1") this.say(`WEB_CONCURRENCY=${env.WEB_CONCURRENCY} ignored: npm run pbx runs one API process (npm start runs several)`);
    let banner = "";
    const listening = new Promise<string>((resolve) => {
      const api = this.start("api", process.execPath, [this.options.apiMain], apiEnv, (line) => {
        banner += `${line}\n`;
        if (/^\s*Demo phone: /.test(line)) resolve(banner);
      });
      void api.exited.then(() => resolve(""));
    });
    const apiBanner = await listening;
    if (this.stopping) return;
    const demo = /Demo phone: domain (\S+) extension (\S+) password (\S+) tenant (\S+)/.exec(apiBanner);
    const url = /listening on (http:\/\/\S+)/.exec(apiBanner)?.[1] ?? `http://127.0.0.1:${port}`;
    const apiUrl = `http://127.0.0.1:${new URL(url).port}`;

    if (!kamailio) {
      this.say(
        [
          "Kamailio is not installed: the API runs alone (no SIP). To give phones a registrar and proxy, install it (Debian 12) and start again:",
          `  ${aptLine}`,
          "(on hosts with systemd, the kamailio package starts its stock service on port 5060: `systemctl disable --now kamailio`)",
        ].join("\n"),
      );
      return;
    }

    const defines = [`SIP_LISTEN=${sipListen}`, `WS_LISTEN=${wsListen}`, `CHILDREN=${env.SIP_CHILDREN || "4"}`];
    const kamailioEnv: NodeJS.ProcessEnv = { PATH: env.PATH, ENGINE_API_KEY: engineKey };
    if (!databaseUrl || !redisUrl) defines.push(`ENGINE_API="${apiUrl}"`);
    if (databaseUrl) {
      // A LOGIN role that may read the engine's view and nothing else, with a password made here and
      // handed to Kamailio in its environment.
      const password = randomBytes(24).toString("hex");
      const role = env.ENGINE_DB_ROLE || "pbx_engine";
      await ensureEngineRoleAt(databaseUrl, env.DATABASE_SCHEMA || undefined, role, password);
      const kamailioDb = new URL(databaseUrl);
      kamailioDb.username = role;
      kamailioDb.password = password;
      kamailioDb.search = "";
      kamailioEnv.KAMAILIO_DB_URL = kamailioDb.toString();
    } else {
      defines.push("CREDENTIALS_OVER_HTTP");
    }
    if (redisUrl) defines.push(redisServerDefine(redisUrl), `EVENTS_STREAM="${prefix}pbx:events"`);
    else defines.push("EVENTS_OVER_HTTP");

    const media = this.mediaPlan(databaseUrl);
    if (media) defines.push(`RTPENGINE_NG="udp:127.0.0.1:${media.ngPort}"`);
    if (media?.main) defines.push(`MEDIA_URI="sip:127.0.0.1:${media.sipPort}"`);

    const cfg = path.join(root, "deploy/kamailio/kamailio.cfg");
    const args = ["-f", cfg, "-DD", "-E", "-Y", this.runDir, "-P", path.join(this.runDir, "kamailio.pid"), "-m", String(shmMb), ...defines.flatMap((d) => ["-A", d])];
    // Checked first, so a missing module package is named with its apt-get line instead of a crash loop.
    const check = spawnSync(kamailio, ["-c", ...args], { env: kamailioEnv, encoding: "utf8" });
    if (check.status !== 0) {
      this.say([`Kamailio refused the configuration:`, ...(check.stderr || "").trim().split("\n").slice(-6), "Missing modules come with these Debian packages:", `  ${aptLine}`].join("\n"));
      await this.stop(1);
      return;
    }
    if (media) {
      // --config-file=none: Debian's /etc/rtpengine/rtpengine.conf would add its CLI, HTTP and TCP
      // control ports (2224, 2225, …), which a second rtpengine on the machine already holds.
      this.start("rtpengine", media.rtpengine, ["--config-file=none", "--table=-1", "--interface=127.0.0.1", `--listen-ng=127.0.0.1:${media.ngPort}`, "--foreground", "--log-stderr", "--port-min=30000", "--port-max=30999"], { PATH: env.PATH });
      if (media.main) this.start("media", process.execPath, [media.main], { ...env, MEDIA_SIP_LISTEN: `udp:127.0.0.1:${media.sipPort}`, RTPENGINE_NG: `udp:127.0.0.1:${media.ngPort}`, ENGINE_SIP_URI: `sip:${sip.host}:${sip.port}` });
    }
    if (media) {
      // Kamailio pings rtpengine once at start and, without an answer, leaves it out for a minute
      // (rtpengine_disable_tout): the browsers' first calls would have no media relay.
      const ready = Date.now() + 30_000;
      while (!(await rtpenginePing(media.ngPort))) {
        if (this.stopping) return;
        if (Date.now() > ready) {
          this.say(`rtpengine did not answer on udp:127.0.0.1:${media.ngPort} within 30 s`);
          await this.stop(1);
          return;
        }
      }
    }
    this.start("kamailio", kamailio, args, kamailioEnv);
    const deadline = Date.now() + 30_000;
    while (!(await sipPing(sip.host, sip.port))) {
      if (this.stopping) return;
      if (Date.now() > deadline) {
        this.say(`Kamailio did not answer on ${sipListen} within 30 s`);
        await this.stop(1);
        return;
      }
    }
    const lines = [
      "",
      `PBX ready: SIP on ${sipListen} and ${wsUrl} (WebSocket), API on ${url}${media ? (media.main ? ", media application and rtpengine" : ", rtpengine") : ""}`,
      `  credentials from ${databaseUrl ? "PostgreSQL (a role that reads sip_subscriber only)" : "the API (GET /api/engine/credentials)"}; events ${redisUrl ? `on the Redis stream ${prefix}pbx:events` : "to the API (POST /api/events)"}`,
    ];
    if (demo) {
      const [, demoDomain, extension, secret, tenantId] = demo;
      lines.push(
        "  A phone needs:",
        `    SIP domain / realm  ${demoDomain}   (tenant "demo", id ${tenantId})`,
        `    user / auth name    ${extension}`,
        `    password            ${secret}`,
        `    outbound proxy      sip:${sip.host}:${sip.port}`,
        `    WebSocket (WebRTC)  ${phoneWsUrl}`,
        `  Try it: sipsak -p ${sip.host}:${sip.port} -U -s sip:${extension}@${demoDomain} -u ${extension} -a ${secret}`,
        `  A phone in the browser: open ${url}/phone and sign in with the domain, user and password above`,
        `    (it registers over ${phoneWsUrl}${phoneWsUrl === wsUrl ? "" : `, PHONE_WS_URL; Kamailio's own listener is ${wsUrl}`})`,
      );
    }
    lines.push("  Ctrl-C stops everything.", "");
    this.say(lines.join("\n"));
  }

  /**
   * rtpengine starts when installed: it carries the browsers' calls (WebRTC on their side, plain RTP on
   * a desk phone's) and the media application's. The media application starts with it when built and
   * on PostgreSQL (it opens the database too; the embedded one is the API's alone); `main` is null
   * without it.
   */
  private mediaPlan(databaseUrl: string | undefined): { rtpengine: string; main: string | null; sipPort: number; ngPort: number } | null {
    const built = fs.existsSync(this.options.mediaMain);
    const rtpengine = which("rtpengine", this.options.env);
    if (!rtpengine) {
      this.say(`rtpengine is not installed: no audio between the /phone page and desk phones${built ? ", no media application (voicemail, queues)" : ""}. apt-get install -y --no-install-recommends rtpengine-daemon`);
      return null;
    }
    const main = built && databaseUrl ? this.options.mediaMain : null;
    if (built && !databaseUrl) this.say("the media application needs DATABASE_URL (the embedded database is the API's alone): not started (rtpengine is, for the browsers' calls)");
    return { rtpengine, main, sipPort: Number(this.options.env.MEDIA_SIP_PORT || 5070), ngPort: Number(this.options.env.RTPENGINE_NG_PORT || 22222) };
  }
}
