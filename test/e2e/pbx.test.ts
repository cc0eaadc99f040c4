import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { chromium } from "playwright-core";
import { toneWav } from "../../src/modules/voicemail/wav";
import { databaseUrl, redisUrl } from "../support/env";
import { CHROMIUM, LISTEN_IN_PAGE, phoneChromiumArgs, readWav } from "../support/browser-audio";
import { blocksWithTone, toneShare } from "../support/goertzel";
import { buildServer, freePort } from "../support/process";
import { createTestSchema, dropTestSchema } from "../support/server";
import { freeTcpPort, freeUdpPort, registerOverWebSocket, sipsakRegister, startPhone, waitFor } from "../support/sip";

/**
 * `npm run pbx` as its operator uses it: the built entry on free ports, a phone (sipsak) registering
 * with the credentials it printed, the registration seen through the API, and every process it
 * started gone after Ctrl-C (SIGINT; SIGTERM takes the same path, exit 0) — or after one of them
 * died (exit 1). On the embedded defaults Kamailio reads credentials from the API and posts events
 * to it; with DATABASE_URL and REDIS_URL it reads the view through a role made at start and writes
 * the Redis stream.
 */
const real = Boolean(databaseUrl() && redisUrl());
const adminKey = `pbx-test-admin-${randomBytes(8).toString("hex")}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-onebox-"));
const role = `pbx_engine_t${randomBytes(4).toString("hex")}`;
let schema: string | undefined;
/** The demo extension's password as the first start printed it: a restart must print the same. */
let firstPassword: string | undefined;

interface Pbx {
  child: ChildProcessWithoutNullStreams;
  output(): string;
  exited: Promise<number | null>;
  port: number;
  sipPort: number;
  wsPort: number;
}

async function startPbx(): Promise<Pbx> {
  const outDir = await buildServer();
  const port = await freePort();
  const sipPort = await freeUdpPort();
  const wsPort = await freeTcpPort();
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(port),
    HOST: "127.0.0.1",
    SIP_LISTEN: `udp:127.0.0.1:${sipPort}`,
    SIP_CHILDREN: "2",
    // free ports for the WebSocket listener, rtpengine and the media application (other suites run rtpengines too)
    PBX_WS_PORT: String(wsPort),
    RTPENGINE_NG_PORT: String(await freeUdpPort()),
    MEDIA_SIP_PORT: String(await freeUdpPort()),
    DATA_DIR: path.join(tmp, "data"),
    ADMIN_API_KEY: adminKey,
    LOG_LEVEL: "warn",
  };
  for (const name of ["NODE_OPTIONS", "NODE_ENV", "DATABASE_URL", "REDIS_URL", "DATABASE_SCHEMA", "REDIS_PREFIX", "PHONE_WS_URL"]) delete env[name];
  if (real) {
    Object.assign(env, { DATABASE_URL: databaseUrl()!, DATABASE_SCHEMA: schema!, REDIS_URL: redisUrl()!, REDIS_PREFIX: `test:pbx:${schema}:`, ENGINE_DB_ROLE: role });
  }
  const child = spawn(process.execPath, [path.join(outDir, "src/cli/pbx.js")], { env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await waitFor("npm run pbx to say it is ready", () => {
    if (child.exitCode !== null) throw new Error(`npm run pbx exited with ${child.exitCode}:\n${out}`);
    return out.includes("Ctrl-C stops everything") || undefined;
  }, 180_000);
  return { child, output: () => out, exited, port, sipPort, wsPort };
}

/** Every process below `pid` now (from /proc): what must be gone once the supervisor has exited. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // exited meanwhile
    }
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parents) {
      if (parent !== p) continue;
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found;
}

/** Running: it exists and is no zombie (an orphan's zombie waits for init, which reaps when it likes). */
const alive = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !["Z", "X"].includes(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]);
  } catch {
    return false;
  }
};

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

function environ(pid: number): Record<string, string> {
  try {
    return Object.fromEntries(fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  } catch {
    return {};
  }
}

async function graphql<T>(port: number, query: string, variables: Record<string, unknown>): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminKey}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown };
  if (!body.data) throw new Error(`GraphQL: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/** The page's call through the one-command PBX needs Debian's Chromium and baresip; without them (outside CI) that part is skipped, said on stderr. */
function browserTools(): boolean {
  const onPath = (b: string) => (process.env.PATH ?? "").split(":").some((d) => d && fs.existsSync(path.join(d, b)));
  const missing = [...(fs.existsSync(CHROMIUM) ? [] : [`chromium (${CHROMIUM})`]), ...(onPath("baresip") ? [] : ["baresip"])];
  if (missing.length === 0) return true;
  if (process.env.CI === "true" || process.env.REQUIRE_REAL_SERVICES === "1") throw new Error(`npm run pbx's browser call needs ${missing.join(", ")} (Debian packages chromium, baresip)`);
  process.stderr.write(`SKIPPED: the /phone call through npm run pbx needs ${missing.join(", ")}.\n`);
  return false;
}

/**
 * The README's "A phone in the browser" after `npm run pbx`, as written: the page opened at the
 * printed URL has the printed WebSocket address filled in, signs in with the printed credentials,
 * shows up in the product as a WS device, and calls a desk phone (baresip, another extension)
 * through the rtpengine the PBX started: the page hears the desk phone's 1.6 kHz, the desk phone
 * records the page's 1 kHz.
 */
async function browserCall(pbx: Pbx, creds: { domain: string; user: string; password: string; tenantId: string }, wsUrl: string): Promise<void> {
  const dir = fs.mkdtempSync(path.join(tmp, "browser-"));
  fs.mkdirSync(path.join(dir, "recordings"));
  fs.writeFileSync(path.join(dir, "mic-1000.wav"), toneWav({ seconds: 10, sampleRate: 48000, frequency: 1000 }));
  fs.writeFileSync(path.join(dir, "desk-1600.wav"), toneWav({ seconds: 120, sampleRate: 8000, frequency: 1600 }));
  await graphql(pbx.port, `mutation($input: CreateExtensionInput!) { createExtension(input: $input) { id } }`, { input: { tenantId: creds.tenantId, extensionNumber: "1002", secret: "desk-secret-1002", displayName: "Desk" } });
  const desk = await startPhone(pbx.sipPort, "1002", creds.domain, "desk-secret-1002", "Desk", { play: path.join(dir, "desk-1600.wav"), recordDir: path.join(dir, "recordings") });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: phoneChromiumArgs(path.join(dir, "mic-1000.wav")),
  });
  try {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    await page.goto(`http://127.0.0.1:${pbx.port}/phone`);
    await waitFor("the page to fill in the engine's address", async () => (await page.inputValue("#ws")) || undefined, 15_000);
    expect(await page.inputValue("#ws")).toBe(wsUrl);
    await page.fill("#domain", creds.domain);
    await page.fill("#number", creds.user);
    await page.fill("#secret", creds.password);
    await page.click("#login button[type=submit]");
    await page.waitForSelector('#reg[data-state="registered"]', { timeout: 30_000 });
    const device = await waitFor("the page's device in the product", async () => {
      const data = await graphql<{ extensions: { nodes: Array<{ extensionNumber: string; devices: Array<{ transport: string; userAgent: string | null }> }> } }>(
        pbx.port,
        `query($t: ID) { extensions(tenantId: $t, first: 5) { nodes { extensionNumber devices { transport userAgent } } } }`,
        { t: creds.tenantId },
      );
      return data.extensions.nodes.find((n) => n.extensionNumber === creds.user)?.devices.find((d) => d.userAgent === "pbx-phone (SIP.js)");
    }, 20_000);
    expect(device.transport).toBe("WS");

    await page.fill("#target", "1002");
    await page.click("#call-button");
    await waitFor("the desk phone to ring", () => /Incoming call|ringing/i.test(desk.output()) || undefined, 20_000);
    await desk.command("/accept");
    await page.waitForSelector('#call-state[data-state="connected"]', { timeout: 20_000 });
    await waitFor("1.6 kHz in the page", async () => {
      const heard = (await page.evaluate(LISTEN_IN_PAGE)) as { rate: number; blocks: number[][] } | null;
      const n = heard ? heard.blocks.filter((block) => toneShare(block, 1600, heard.rate) > 0.5).length : 0;
      return n >= 6 || undefined;
    }, 30_000, 200);
    await page.click("#hangup");
    await page.waitForSelector("#call", { state: "hidden", timeout: 15_000 });
    const recordings = () => fs.readdirSync(path.join(dir, "recordings")).filter((f) => f.endsWith("-dec.wav"));
    const file = await waitFor("the desk phone's recording", () => recordings().at(-1), 15_000);
    const { samples, rate } = readWav(path.join(dir, "recordings", file));
    expect(blocksWithTone(samples, 1000, 0.5, rate)).toBeGreaterThanOrEqual(10);
    await page.click("#signout");
    await page.waitForSelector("#login", { state: "visible", timeout: 15_000 });
    expect(problems).toEqual([]);
  } finally {
    await browser.close();
    await desk.stop();
  }
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  if (real) schema = await createTestSchema();
});

afterAll(async () => {
  if (real) {
    await adminQuery(`DROP OWNED BY ${role}`).catch(() => undefined);
    await adminQuery(`DROP ROLE IF EXISTS ${role}`);
    await dropTestSchema(schema!);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

it("starts the API, Kamailio (UDP and WebSocket) and rtpengine as one set; a desk phone and a WebSocket client register with the printed credentials; Ctrl-C (SIGINT) stops every process, exit 0", async () => {
  const pbx = await startPbx();
  const processes = descendants(pbx.child.pid!);
  try {
    const out = pbx.output();
    expect(out).toMatch(/^api {6}\| PBX control plane listening on/m);
    expect(out).toMatch(/^kamailio \| /m);
    expect(out).toContain(`PBX ready: SIP on udp:127.0.0.1:${pbx.sipPort}`);
    expect(out).toContain(real ? "credentials from PostgreSQL" : "credentials from the API");
    const domain = /SIP domain \/ realm +(\S+)/.exec(out)?.[1];
    const user = /user \/ auth name +(\S+)/.exec(out)?.[1];
    const password = /password +(\S+)/.exec(out)?.[1];
    const tenantId = /tenant "demo", id (\d+)/.exec(out)?.[1];
    expect(domain).toBe("demo.pbx.test");
    expect(user).toBe("1001");
    expect(password).toMatch(/^\S{8,}$/);
    firstPassword = password;
    expect(out).toContain(`outbound proxy      sip:127.0.0.1:${pbx.sipPort}`);
    // the softphone page: its URL and the WebSocket listener it registers over, in the banner and in the page's configuration
    const wsUrl = `ws://127.0.0.1:${pbx.wsPort}`;
    expect(out).toContain(`PBX ready: SIP on udp:127.0.0.1:${pbx.sipPort} and ${wsUrl} (WebSocket)`);
    expect(out).toContain(`WebSocket (WebRTC)  ${wsUrl}`);
    expect(out).toContain(`A phone in the browser: open http://127.0.0.1:${pbx.port}/phone`);
    expect(out).toContain(`(it registers over ${wsUrl})`);
    expect(await (await fetch(`http://127.0.0.1:${pbx.port}/phone/config.json`)).json()).toEqual({ wsUrl });
    expect((await fetch(`http://127.0.0.1:${pbx.port}/phone`)).status).toBe(200);
    // rtpengine runs on both backends (the browsers' calls); the media application on PostgreSQL only
    expect(out).toMatch(/^rtpengin \| /m);
    expect(out).not.toMatch(/rtpengine.*did not respond to ping/);
    expect(out).toContain(real ? ", media application and rtpengine" : `API on http://127.0.0.1:${pbx.port}, rtpengine`);

    // The engine's secret (its API key, or on PostgreSQL the role's password) is in Kamailio's
    // environment and on no process's command line.
    const kamailioPids = processes.filter((p) => cmdline(p).startsWith("/usr/sbin/kamailio") || cmdline(p).startsWith("kamailio"));
    expect(kamailioPids.length).toBeGreaterThan(0);
    // 256 MB of shared memory unless KAMAILIO_SHM_MB says otherwise (64, Kamailio's own, runs out near 700 REGISTER/s)
    expect(cmdline(kamailioPids[0])).toMatch(/ -m 256 /);
    const kamailioEnv = environ(kamailioPids[0]);
    const secrets = [kamailioEnv.ENGINE_API_KEY, ...(real ? [new URL(kamailioEnv.KAMAILIO_DB_URL).password] : [])];
    expect(secrets.every((s) => typeof s === "string" && s.length >= 16)).toBe(true);
    for (const pid of [pbx.child.pid!, ...processes]) for (const secret of secrets) expect(cmdline(pid)).not.toContain(secret);

    const wrong = await sipsakRegister(pbx.sipPort, user!, domain!, `${password}x`);
    expect(wrong.status).toBe(403);
    const ok = await sipsakRegister(pbx.sipPort, user!, domain!, password!);
    expect([ok.status, ok.output.slice(-400)]).toEqual([200, expect.any(String)]);
    // a browser's registration (SIP over WebSocket, RFC 7118, digest) on the printed address
    expect((await registerOverWebSocket(pbx.wsPort, user!, domain!, `${password}x`)).status).toBe(403);
    const overWs = await registerOverWebSocket(pbx.wsPort, user!, domain!, password!);
    expect(overWs.status).toBe(200);

    const registered = await waitFor("the API to show the demo extension's two devices", async () => {
      const response = await fetch(`http://127.0.0.1:${pbx.port}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${adminKey}` },
        body: JSON.stringify({ query: `query($t: ID) { extensions(tenantId: $t, first: 5) { nodes { extensionNumber registered devices { transport } } } }`, variables: { t: tenantId } }),
      });
      const body = (await response.json()) as { data?: { extensions: { nodes: Array<{ extensionNumber: string; registered: boolean; devices: Array<{ transport: string }> }> } } };
      const node = body.data?.extensions.nodes.find((n) => n.extensionNumber === "1001");
      return node?.registered && node.devices.length === 2 ? node : undefined;
    }, 20_000);
    expect(registered.devices.map((d) => d.transport).sort()).toEqual(["UDP", "WS"]);

    if (browserTools()) await browserCall(pbx, { domain: domain!, user: user!, password: password!, tenantId: tenantId! }, wsUrl);
  } finally {
    // What a terminal's Ctrl-C sends (the children are process groups of their own: only this one gets it).
    pbx.child.kill("SIGINT");
  }
  expect(await pbx.exited).toBe(0);
  expect(pbx.output()).toContain("signal 15 received");
  expect(processes.filter(alive)).toEqual([]);
  // (The first test also compiles the server once for the file: minutes on a loaded machine.)
}, 420_000);

it("a restart keeps the demo phone's password; a part that dies stops the others: exit 1, the dead part named, nothing left running", async () => {
  const pbx = await startPbx();
  expect(/password +(\S+)/.exec(pbx.output())?.[1]).toBe(firstPassword);
  const processes = descendants(pbx.child.pid!);
  const kamailio = processes.find((p) => /kamailio/.test(cmdline(p)) && processes.includes(p) && descendants(p).length > 0)!;
  expect(kamailio).toBeDefined();
  process.kill(kamailio, "SIGKILL");
  expect(await pbx.exited).toBe(1);
  expect(pbx.output()).toMatch(new RegExp(`kamailio \\(pid ${kamailio}\\) exited \\(SIGKILL\\): stopping the others`));
  // The supervisor waits for the dead part's whole process group before it exits: nothing may remain.
  expect(processes.filter(alive).map((p) => `${p} ${cmdline(p)}`)).toEqual([]);
}, 300_000);

it("refuses a PBX_WS_PORT that is not a port, or is taken, or a KAMAILIO_SHM_MB that is no size, before starting anything: exit 1, the variable named", async () => {
  const outDir = await buildServer();
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  const taken = (holder.address() as net.AddressInfo).port;
  try {
    for (const [name, value, message] of [
      ["PBX_WS_PORT", "80a", 'PBX_WS_PORT must be a TCP port (1-65535) for Kamailio\'s WebSocket listener, got "80a"'],
      ["PBX_WS_PORT", "70000", 'PBX_WS_PORT must be a TCP port (1-65535) for Kamailio\'s WebSocket listener, got "70000"'],
      ["PBX_WS_PORT", String(taken), `PBX_WS_PORT ${taken} is taken on 127.0.0.1 (Kamailio's WebSocket listener for the /phone page): stop what holds it or set PBX_WS_PORT to a free port`],
      ["KAMAILIO_SHM_MB", "256MB", 'KAMAILIO_SHM_MB must be Kamailio\'s shared memory in MB (32-65536), got "256MB"'],
      ["KAMAILIO_SHM_MB", "8", 'KAMAILIO_SHM_MB must be Kamailio\'s shared memory in MB (32-65536), got "8"'],
    ]) {
      const env: Record<string, string> = { ...(process.env as Record<string, string>), PORT: String(await freePort()), SIP_LISTEN: `udp:127.0.0.1:${await freeUdpPort()}`, DATA_DIR: path.join(tmp, "refused"), [name]: value };
      for (const name of ["NODE_OPTIONS", "DATABASE_URL", "REDIS_URL"]) delete env[name];
      const child = spawn(process.execPath, [path.join(outDir, "src/cli/pbx.js")], { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
      expect([value, code, out]).toEqual([value, 1, `npm run pbx: ${message}\n`]);
    }
    // nothing was started: no data dir made by an API
    expect(fs.existsSync(path.join(tmp, "refused"))).toBe(false);
  } finally {
    holder.close();
  }
}, 120_000);
