import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import dgram from "node:dgram";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import WebSocket from "ws";
import { freeUdpPort, tcpFree, udpFree } from "./ports";
import { ensureEngineRole } from "../../src/engine/engine-role";
import { trackChild } from "./run";
import { waitFor } from "./wait";

/** Re-exported: the engine suites take it from here with the rest. */
export { waitFor };

/**
 * Real SIP for the tests and the engine benchmark: Kamailio with the shipped configuration, and
 * the phones that talk to it (sipsak, baresip, SIPp). Everything on 127.0.0.1, on free ports;
 * every process is stopped by its PID; every wait is on a condition.
 */

/** The repository: from test/support, or from dist/test/support when compiled for a benchmark. */
const root = [path.resolve(__dirname, "../.."), path.resolve(__dirname, "../../..")].find((dir) => fs.existsSync(path.join(dir, "deploy/kamailio/kamailio.cfg")))!;
export const KAMAILIO_CFG = path.join(root, "deploy/kamailio/kamailio.cfg");
export const SIPP_REGISTER = path.join(root, "test/support/sipp-register.xml");

export { freeTcpPort, freeUdpPort } from "./ports";

/** A port free for UDP and TCP alike, and its neighbour too (baresip binds UDP+TCP on it and TLS on port + 1). */
export async function freeSipPortPair(): Promise<number> {
  for (;;) {
    const port = await freeUdpPort();
    if (port >= 65535) continue;
    const ok = await Promise.all([port, port + 1].map((p) => tcpFree(p).then(async (t) => t && (await udpFree(p)))));
    if (ok.every(Boolean)) return port;
  }
}

/** A port free for UDP and TCP alike (baresip's console module listens on both). */
export async function freeUdpTcpPort(): Promise<number> {
  for (;;) {
    const port = await freeUdpPort();
    if (await tcpFree(port)) return port;
  }
}


/** Sends SIGTERM to a process we started, then SIGKILL if it has not exited in time. */
export async function stopProcess(child: ChildProcess, ms = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  process.kill(child.pid, "SIGTERM");
  const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, "SIGKILL"), ms);
  await exited;
  clearTimeout(timer);
}

export interface EngineRole {
  name: string;
  password: string;
  /** postgres://NAME:PASSWORD@… on the same database: what KAMAILIO_DB_URL gets. */
  url: string;
  drop(): Promise<void>;
}

/** A role made by the engine:role code for one product schema, dropped again by drop(). */
export async function createEngineRole(databaseUrl: string, schema: string | undefined): Promise<EngineRole> {
  const name = `kam_${randomBytes(5).toString("hex")}`;
  const password = randomBytes(12).toString("hex");
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  try {
    await ensureEngineRole(admin, { name, password, schema });
  } finally {
    await admin.end();
  }
  const url = new URL(databaseUrl);
  url.username = name;
  url.password = password;
  return {
    name,
    password,
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        await client.query(`DROP OWNED BY ${name}`);
        await client.query(`DROP ROLE ${name}`);
      } finally {
        await client.end();
      }
    },
  };
}

export interface Kamailio {
  port: number;
  pid: number;
  streamKey: string;
  /** Everything it logged (stderr, -E). */
  output(): string;
  stop(): Promise<void>;
}

export interface KamailioOptions {
  databaseUrl: string;
  redisUrl: string;
  streamKey: string;
  /** More -A defines (e.g. "CHILDREN=8"). */
  defines?: string[];
  /** Define TRUNK_CONTACT as its own address: it registers the trunks that ask for it. */
  registerTrunks?: boolean;
  /** Kamailio's shared memory pool in MB (-m; Kamailio's default is 64). */
  shmMb?: number;
}

/**
 * Starts the shipped configuration exactly as contract §7 shows it, on a free UDP port, and waits
 * until it answers an OPTIONS ping.
 */
export async function startKamailio(options: KamailioOptions): Promise<Kamailio> {
  const port = await freeUdpPort();
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-kamailio-"));
  const redis = new URL(options.redisUrl);
  const args = [
    "-f", KAMAILIO_CFG, "-DD", "-E", "-Y", runDir, "-P", path.join(runDir, "kamailio.pid"),
    "-A", `SIP_LISTEN=udp:127.0.0.1:${port}`,
    "-A", `REDIS_SERVER="name=events;addr=${redis.hostname};port=${redis.port || 6379}"`,
    "-A", `EVENTS_STREAM="${options.streamKey}"`,
    // its own address, where busy-lamp state is published (modules/presence.cfg)
    "-A", `PRESENCE_URI="sip:127.0.0.1:${port}"`,
    ...(options.defines ?? []).flatMap((d) => ["-A", d]),
    ...(options.registerTrunks ? ["-A", `TRUNK_CONTACT="127.0.0.1:${port}"`] : []),
    ...(options.shmMb ? ["-m", String(options.shmMb)] : []),
  ];
  const child = trackChild(spawn("kamailio", args, { env: { ...process.env, KAMAILIO_DB_URL: options.databaseUrl }, stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const stop = async () => {
    await stopProcess(child);
    fs.rmSync(runDir, { recursive: true, force: true });
  };
  try {
    await waitFor("Kamailio to answer OPTIONS", async () => {
      if (child.exitCode !== null) throw new Error(`kamailio exited with ${child.exitCode}:\n${out}`);
      return (await sipRequest(port, optionsPing(port), 200)).startsWith("SIP/2.0 200") || undefined;
    }, 15_000, 0);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, pid: child.pid!, streamKey: options.streamKey, output: () => out, stop };
}

function optionsPing(port: number): (local: number) => string {
  return (local) =>
    [
      `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${randomBytes(6).toString("hex")};rport`,
      `From: <sip:ping@127.0.0.1>;tag=${randomBytes(4).toString("hex")}`,
      `To: <sip:127.0.0.1:${port}>`,
      `Call-ID: ${randomBytes(8).toString("hex")}`,
      "CSeq: 1 OPTIONS",
      "Max-Forwards: 70",
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
}

/**
 * An out-of-dialog request with no credentials (e.g. SUBSCRIBE, PUBLISH), sent from a fresh UDP port:
 * the first reply's text, "" when none came within `ms`.
 */
export function sipUnauthenticated(port: number, method: string, uri: string, from: string, headers: string[] = [], ms = 5000): Promise<string> {
  return sipRequest(
    port,
    (local) =>
      [
        `${method} ${uri} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${randomBytes(6).toString("hex")};rport`,
        `From: <${from}>;tag=${randomBytes(4).toString("hex")}`,
        `To: <${uri}>`,
        `Call-ID: ${randomBytes(8).toString("hex")}`,
        `CSeq: 1 ${method}`,
        `Contact: <sip:probe@127.0.0.1:${local}>`,
        "Max-Forwards: 70",
        ...headers,
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
    ms,
  );
}

/** One UDP request, the first reply's text ("" when none came within `ms`). */
async function sipRequest(port: number, message: (localPort: number) => string, ms: number): Promise<string> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  try {
    return await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve(""), ms);
      socket.once("message", (msg) => {
        clearTimeout(timer);
        resolve(msg.toString());
      });
      socket.send(message(socket.address().port), port, "127.0.0.1");
    });
  } finally {
    socket.close();
  }
}

export interface SipsakResult {
  code: number | null;
  output: string;
  /** The final SIP status sipsak saw (e.g. 200, 403), if any. */
  status: number | undefined;
}

/**
 * One REGISTER with sipsak (challenge and response). `-p` before `-s` keeps sipsak off DNS; `-u`
 * gives the digest user (sipsak 0.9.8 would send "user@" otherwise).
 */
export async function sipsakRegister(kamailioPort: number, number: string, domain: string, secret: string, expires = 3600): Promise<SipsakResult> {
  const local = await freeUdpPort();
  const child = trackChild(spawn("sipsak", ["-p", `127.0.0.1:${kamailioPort}`, "-U", "-i", "-H", "127.0.0.1", "-l", String(local), "-s", `sip:${number}@${domain}`, "-u", number, "-a", secret, "-x", String(expires), "-vvv"], {
    stdio: ["ignore", "pipe", "pipe"],
  }));
  let replies = "";
  let errors = "";
  child.stdout.on("data", (d: Buffer) => (replies += d.toString()));
  child.stderr.on("data", (d: Buffer) => (errors += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  const output = `${replies}${errors}`;
  // Replies go to stdout, except the one sipsak gives up on, which goes to stderr with its error; the
  // streams are read apart (they would interleave mid-line). The final reply is the one that is not
  // provisional or a challenge.
  const statuses = [replies, errors].flatMap((text) => [...text.matchAll(/SIP\/2\.0 (\d{3}) /g)].map((m) => Number(m[1])));
  return { code, output, status: statuses.filter((s) => s >= 200 && s !== 401 && s !== 407).at(-1) ?? statuses.at(-1) };
}

export interface Phone {
  number: string;
  sipPort: number;
  /** Sends a console command (/dial 1002, /accept, /hangup). */
  command(text: string): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

let baresipModules: string | undefined;
function baresipModulePath(): string {
  if (baresipModules) return baresipModules;
  for (const dir of ["/usr/lib/x86_64-linux-gnu/baresip/modules", "/usr/lib/aarch64-linux-gnu/baresip/modules", "/usr/lib/baresip/modules"]) {
    if (fs.existsSync(path.join(dir, "account.so"))) return (baresipModules = dir);
  }
  throw new Error("baresip modules not found (apt-get install baresip-core)");
}

/** Real audio for a baresip phone: what it plays (a WAV, 8 kHz mono) and where it records what it hears. */
export interface PhoneAudio {
  /** aufile: the WAV it sends in every call (make it longer than the call). */
  play: string;
  /** sndfile: a folder where each call's received audio lands as dump-…-dec.wav. */
  recordDir: string;
}

/**
 * A headless baresip phone registered through Kamailio: silent audio (aubridge) unless `audio` says
 * what to play and where to record, no DNS, commands over its UDP console. Resolves once Kamailio
 * has accepted its registration.
 */
export async function startPhone(kamailioPort: number, number: string, domain: string, secret: string, displayName: string, audio?: PhoneAudio): Promise<Phone> {
  // a port found free can be taken by another suite before baresip binds it: start again on new ones
  for (let attempt = 1; ; attempt++) {
    try {
      return await startPhoneOnce(kamailioPort, number, domain, secret, displayName, audio);
    } catch (error) {
      if (!(error instanceof PortTaken) || attempt >= 3) throw error;
    }
  }
}

class PortTaken extends Error {}

async function startPhoneOnce(kamailioPort: number, number: string, domain: string, secret: string, displayName: string, audio?: PhoneAudio): Promise<Phone> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-baresip-"));
  const sipPort = await freeSipPortPair();
  // cons.so listens on UDP and TCP: a port taken for TCP leaves the phone deaf to commands
  const consolePort = await freeUdpTcpPort();
  const rtp = 20000 + Math.floor(Math.random() * 20000);
  fs.writeFileSync(
    path.join(dir, "config"),
    [
      "poll_method epoll",
      `sip_listen 127.0.0.1:${sipPort}`,
      "net_interface 127.0.0.1",
      "dns_server 127.0.0.1:53",
      `rtp_ports ${rtp}-${rtp + 9}`,
      "audio_player aubridge,nil",
      audio ? `audio_source aufile,${audio.play}` : "audio_source aubridge,nil",
      "audio_alert aubridge,nil",
      `module_path ${baresipModulePath()}`,
      "module g711.so",
      "module aubridge.so",
      ...(audio ? ["module aufile.so", "module sndfile.so", `snd_path ${audio.recordDir}`] : []),
      "module cons.so",
      "module_app account.so",
      "module_app menu.so",
      `cons_listen 127.0.0.1:${consolePort}`,
      "",
    ].join("\n"),
  );
  fs.writeFileSync(
    path.join(dir, "accounts"),
    `"${displayName}" <sip:${number}@${domain}>;auth_pass=${secret};outbound="sip:127.0.0.1:${kamailioPort}";regint=600;answermode=manual\n`,
  );
  const child = trackChild(spawn("baresip", ["-4", "-f", dir], { stdio: ["ignore", "pipe", "pipe"] }));
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const console = dgram.createSocket("udp4");
  const phone: Phone = {
    number,
    sipPort,
    command: (text) => new Promise((resolve, reject) => console.send(`${text}\n`, consolePort, "127.0.0.1", (err) => (err ? reject(err) : resolve()))),
    output: () => out,
    stop: async () => {
      await stopProcess(child);
      console.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(`baresip ${number} to register`, () => {
      if (child.exitCode !== null) throw new Error(`baresip exited:\n${out}`);
      return /200 OK|\{0\/UDP\/v4\}.*OK/.test(out) || undefined;
    }, 10_000);
    if (/Address already in use/.test(out)) throw new PortTaken(`baresip ${number}: a port was taken before it bound it:\n${out}`);
  } catch (error) {
    await phone.stop();
    throw error;
  }
  return phone;
}

/**
 * `callee` answers the call ringing it: /accept, sent again every few seconds until baresip says the
 * call is established (a console datagram that lands while the phone is still setting up the
 * incoming call is lost on a loaded machine). Fails with both phones' last output when it never is.
 */
export async function answerCall(callee: Phone, ms = 30_000): Promise<void> {
  const established = () => (callee.output().match(/Call established/g) ?? []).length;
  const before = established();
  let sent = 0;
  try {
    await waitFor(`${callee.number} to answer`, async () => {
      if (established() > before) return true;
      if (Date.now() >= sent + 3_000) {
        sent = Date.now();
        await callee.command("/accept");
      }
      return undefined;
    }, ms, 100);
  } catch (error) {
    throw new Error(`${(error as Error).message}; ${callee.number} printed:\n${callee.output().slice(-3000)}`, { cause: error });
  }
}

export interface SippResult {
  code: number | null;
  output: string;
  successful: number;
  failed: number;
}

/** SIPp's injection file for sipp-register.xml: one line per registration, taken in order (and again from the top). */
export function sippUsers(users: Array<{ number: string; domain: string; secret: string }>): string {
  return ["SEQUENTIAL", ...users.map((u) => `${u.number};${u.domain};[authentication username=${u.number} password=${u.secret}]`)].join("\n") + "\n";
}

/** SIPp REGISTERs with digest auth (test/support/sipp-register.xml): `calls` registrations at `rate` per second. */
export async function sippRegister(kamailioPort: number, usersFile: string, calls: number, rate: number, extra: string[] = []): Promise<SippResult> {
  const local = await freeUdpPort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-sipp-"));
  const child = trackChild(spawn(
    "sipp",
    ["127.0.0.1:" + kamailioPort, "-sf", SIPP_REGISTER, "-inf", usersFile, "-i", "127.0.0.1", "-p", String(local), "-m", String(calls), "-r", String(rate),
      "-l", String(Math.max(100, rate * 2)), "-nostdin", "-trace_stat", "-stf", path.join(dir, "stat.csv"), "-fd", "1", ...extra],
    { stdio: ["ignore", "ignore", "pipe"], cwd: dir },
  ));
  let output = "";
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  const stat = fs.readFileSync(path.join(dir, "stat.csv"), "utf8").trim().split("\n");
  const header = stat[0].split(";");
  const last = stat[stat.length - 1].split(";");
  const col = (name: string) => Number(last[header.indexOf(name)]);
  fs.rmSync(dir, { recursive: true, force: true });
  return { code, output, successful: col("SuccessfulCall(C)"), failed: col("FailedCall(C)") };
}

/**
 * A WebRTC-style client's registration over SIP-over-WebSocket (RFC 7118, subprotocol "sip"): the
 * browser's invalid host in Via and Contact, answered by digest authentication (RFC 2617 with
 * qop=auth). Answers the final status of the authenticated REGISTER and the contact used.
 */
export async function registerOverWebSocket(wsPort: number, number: string, domain: string, secret: string): Promise<{ status: number; contact: string }> {
  const socket = new WebSocket(`ws://127.0.0.1:${wsPort}/`, "sip");
  await new Promise<void>((resolve, reject) => socket.once("open", () => resolve()).once("error", reject));
  const host = `${randomBytes(4).toString("hex")}.invalid`;
  const contact = `sip:${number}@${host};transport=ws`;
  const callId = randomBytes(8).toString("hex");
  const tag = randomBytes(4).toString("hex");
  const md5 = (t: string) => createHash("md5").update(t).digest("hex");
  const request = (cseq: number, authorization?: string) =>
    [
      `REGISTER sip:${domain} SIP/2.0`,
      `Via: SIP/2.0/WS ${host};branch=z9hG4bK${randomBytes(6).toString("hex")}`,
      "Max-Forwards: 70",
      `From: <sip:${number}@${domain}>;tag=${tag}`,
      `To: <sip:${number}@${domain}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} REGISTER`,
      `Contact: <${contact}>;expires=600`,
      "User-Agent: pbx-test-webrtc",
      ...(authorization ? [`Authorization: ${authorization}`] : []),
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
  const replies: string[] = [];
  const waiters: Array<() => void> = [];
  socket.on("message", (data) => {
    replies.push(data.toString());
    waiters.splice(0).forEach((w) => w());
  });
  const finalReply = async (cseq: number) =>
    waitFor(`a final reply to REGISTER ${cseq}`, () => replies.find((r) => /^SIP\/2\.0 [2-6]\d\d/.test(r) && r.includes(`CSeq: ${cseq} REGISTER`)), 5000, 20);
  try {
    socket.send(request(1));
    const challenge = await finalReply(1);
    if (!challenge.startsWith("SIP/2.0 401")) return { status: Number(challenge.slice(8, 11)), contact };
    const header = /^WWW-Authenticate: Digest (.*)$/im.exec(challenge)![1];
    const param = (name: string) => new RegExp(`${name}="?([^",\\r]+)"?`).exec(header)?.[1];
    const realm = param("realm")!;
    const nonce = param("nonce")!;
    const uri = `sip:${domain}`;
    const ha1 = md5(`${number}:${realm}:${secret}`);
    const ha2 = md5(`REGISTER:${uri}`);
    const cnonce = randomBytes(4).toString("hex");
    const qop = param("qop") ? "auth" : undefined;
    const response = qop ? md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
    const authorization =
      `Digest username="${number}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5` +
      (qop ? `, qop=auth, nc=00000001, cnonce="${cnonce}"` : "");
    socket.send(request(2, authorization));
    const reply = await finalReply(2);
    return { status: Number(reply.slice(8, 11)), contact };
  } finally {
    socket.close();
  }
}

/**
 * A phone's registration over UDP with digest authentication, done by hand so a test can repeat the
 * exact bytes of a REGISTER (a SIP retransmission: same Via branch, Call-ID and CSeq). `register()`
 * runs a challenge and an authenticated REGISTER (two CSeqs) on the one Call-ID and answers the final
 * status; `retransmit()` sends the last authenticated REGISTER again as it was and answers the status
 * of the reply it gets.
 */
export async function udpRegistration(kamailioPort: number, number: string, domain: string, secret: string): Promise<{
  contact: string;
  register(): Promise<number>;
  retransmit(): Promise<number>;
  close(): void;
}> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const local = socket.address().port;
  const contact = `sip:${number}@127.0.0.1:${local}`;
  const callId = randomBytes(8).toString("hex");
  const tag = randomBytes(4).toString("hex");
  const md5 = (t: string) => createHash("md5").update(t).digest("hex");
  let cseq = 0;
  let last = "";
  const replies: string[] = [];
  socket.on("message", (data) => replies.push(data.toString()));
  const request = (n: number, authorization?: string) =>
    [
      `REGISTER sip:${domain} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${randomBytes(6).toString("hex")};rport`,
      "Max-Forwards: 70",
      `From: <sip:${number}@${domain}>;tag=${tag}`,
      `To: <sip:${number}@${domain}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${n} REGISTER`,
      `Contact: <${contact}>;expires=600`,
      "User-Agent: pbx-test-udp",
      ...(authorization ? [`Authorization: ${authorization}`] : []),
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
  const send = async (message: string, n: number): Promise<string> => {
    const before = replies.length;
    socket.send(message, kamailioPort, "127.0.0.1");
    return waitFor(`a final reply to REGISTER ${n}`, () => replies.slice(before).find((r) => /^SIP\/2\.0 [2-6]\d\d/.test(r) && r.includes(`CSeq: ${n} REGISTER`)), 5000, 20);
  };
  return {
    contact,
    async register() {
      const challenge = await send(request(++cseq), cseq);
      if (!challenge.startsWith("SIP/2.0 401")) return Number(challenge.slice(8, 11));
      const header = /^WWW-Authenticate: Digest (.*)$/im.exec(challenge)![1];
      const param = (name: string) => new RegExp(`${name}="?([^",\\r]+)"?`).exec(header)?.[1];
      const realm = param("realm")!;
      const nonce = param("nonce")!;
      const uri = `sip:${domain}`;
      const ha1 = md5(`${number}:${realm}:${secret}`);
      const ha2 = md5(`REGISTER:${uri}`);
      const cnonce = randomBytes(4).toString("hex");
      const qop = param("qop") ? "auth" : undefined;
      const response = qop ? md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
      const authorization =
        `Digest username="${number}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5` +
        (qop ? `, qop=auth, nc=00000001, cnonce="${cnonce}"` : "");
      last = request(++cseq, authorization);
      return Number((await send(last, cseq)).slice(8, 11));
    },
    async retransmit() {
      return Number((await send(last, cseq)).slice(8, 11));
    },
    close: () => socket.close(),
  };
}

export interface DialogWatcher {
  /** The final status of the (authenticated) SUBSCRIBE. */
  status: number;
  /** The body of every NOTIFY received so far, in order (each was answered 200). */
  notifies: string[];
  close(): void;
}

/**
 * A busy-lamp key: SUBSCRIBE with `Event: dialog` from extension `number` to `target` (of the same
 * domain unless `targetDomain` says otherwise) over UDP, answering the digest challenge; every NOTIFY is answered 200 and its body kept.
 */
export async function watchDialogs(kamailioPort: number, number: string, domain: string, secret: string, target: string, event = "dialog", targetDomain = domain): Promise<DialogWatcher> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const local = socket.address().port;
  const callId = randomBytes(8).toString("hex");
  const tag = randomBytes(4).toString("hex");
  const uri = `sip:${target}@${targetDomain}`;
  const md5 = (t: string) => createHash("md5").update(t).digest("hex");
  const replies: string[] = [];
  const notifies: string[] = [];
  socket.on("message", (data) => {
    const text = data.toString();
    if (!text.startsWith("NOTIFY ")) return void replies.push(text);
    const head = text.split("\r\n\r\n")[0].split("\r\n");
    const keep = head.filter((h) => /^(Via|From|To|Call-ID|CSeq):/i.test(h));
    socket.send(["SIP/2.0 200 OK", ...keep, "Content-Length: 0", "", ""].join("\r\n"), kamailioPort, "127.0.0.1");
    notifies.push(text.slice(text.indexOf("\r\n\r\n") + 4));
  });
  const request = (cseq: number, authorization?: string) =>
    [
      `SUBSCRIBE ${uri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${randomBytes(6).toString("hex")};rport`,
      "Max-Forwards: 70",
      `From: <sip:${number}@${domain}>;tag=${tag}`,
      `To: <${uri}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} SUBSCRIBE`,
      `Contact: <sip:${number}@127.0.0.1:${local}>`,
      `Event: ${event}`,
      "Accept: application/dialog-info+xml",
      "Expires: 600",
      ...(authorization ? [`Proxy-Authorization: ${authorization}`] : []),
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
  const finalReply = (cseq: number) =>
    waitFor(`a final reply to SUBSCRIBE ${cseq}`, () => replies.find((r) => /^SIP\/2\.0 [2-6]\d\d/.test(r) && r.includes(`CSeq: ${cseq} SUBSCRIBE`)), 5000, 20);
  const send = (text: string) => socket.send(text, kamailioPort, "127.0.0.1");
  send(request(1));
  let reply = await finalReply(1);
  if (/^SIP\/2\.0 40[17]/.test(reply)) {
    const header = /^(?:Proxy|WWW)-Authenticate: Digest (.*)$/im.exec(reply)![1];
    const param = (name: string) => new RegExp(`${name}="?([^",\\r]+)"?`).exec(header)?.[1];
    const realm = param("realm")!;
    const nonce = param("nonce")!;
    const cnonce = randomBytes(4).toString("hex");
    const ha1 = md5(`${number}:${realm}:${secret}`);
    const ha2 = md5(`SUBSCRIBE:${uri}`);
    const qop = param("qop") ? "auth" : undefined;
    const response = qop ? md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
    send(request(2, `Digest username="${number}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5` + (qop ? `, qop=auth, nc=00000001, cnonce="${cnonce}"` : "")));
    reply = await finalReply(2);
  }
  return { status: Number(reply.slice(8, 11)), notifies, close: () => socket.close() };
}
