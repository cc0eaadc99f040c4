import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { databaseUrl, redisUrl } from "../support/env";
import { buildServer, freePort } from "../support/process";
import { createTestSchema, dropTestSchema } from "../support/server";
import { freeUdpPort, sipsakRegister, waitFor } from "../support/sip";

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
}

async function startPbx(): Promise<Pbx> {
  const outDir = await buildServer();
  const port = await freePort();
  const sipPort = await freeUdpPort();
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(port),
    HOST: "127.0.0.1",
    SIP_LISTEN: `udp:127.0.0.1:${sipPort}`,
    SIP_CHILDREN: "2",
    DATA_DIR: path.join(tmp, "data"),
    ADMIN_API_KEY: adminKey,
    LOG_LEVEL: "warn",
  };
  for (const name of ["NODE_OPTIONS", "NODE_ENV", "DATABASE_URL", "REDIS_URL", "DATABASE_SCHEMA", "REDIS_PREFIX"]) delete env[name];
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
  return { child, output: () => out, exited, port, sipPort };
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

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
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

it("starts the API and Kamailio as one set; a phone registers with the printed credentials; Ctrl-C (SIGINT) stops every process, exit 0", async () => {
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

    // The engine's secret (its API key, or on PostgreSQL the role's password) is in Kamailio's
    // environment and on no process's command line.
    const kamailioPids = processes.filter((p) => cmdline(p).startsWith("/usr/sbin/kamailio") || cmdline(p).startsWith("kamailio"));
    expect(kamailioPids.length).toBeGreaterThan(0);
    const kamailioEnv = environ(kamailioPids[0]);
    const secrets = [kamailioEnv.ENGINE_API_KEY, ...(real ? [new URL(kamailioEnv.KAMAILIO_DB_URL).password] : [])];
    expect(secrets.every((s) => typeof s === "string" && s.length >= 16)).toBe(true);
    for (const pid of [pbx.child.pid!, ...processes]) for (const secret of secrets) expect(cmdline(pid)).not.toContain(secret);

    const wrong = await sipsakRegister(pbx.sipPort, user!, domain!, `${password}x`);
    expect(wrong.status).toBe(403);
    const ok = await sipsakRegister(pbx.sipPort, user!, domain!, password!);
    expect([ok.status, ok.output.slice(-400)]).toEqual([200, expect.any(String)]);

    const registered = await waitFor("the API to show the demo extension registered", async () => {
      const response = await fetch(`http://127.0.0.1:${pbx.port}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${adminKey}` },
        body: JSON.stringify({ query: `query($t: ID) { extensions(tenantId: $t, first: 5) { nodes { extensionNumber registered devices { transport } } } }`, variables: { t: tenantId } }),
      });
      const body = (await response.json()) as { data?: { extensions: { nodes: Array<{ extensionNumber: string; registered: boolean; devices: Array<{ transport: string }> }> } } };
      const node = body.data?.extensions.nodes.find((n) => n.extensionNumber === "1001");
      return node?.registered ? node : undefined;
    }, 20_000);
    expect(registered.devices).toEqual([{ transport: "UDP" }]);
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
  await waitFor("every part to be gone", () => processes.filter(alive).length === 0 || undefined, 20_000);
}, 300_000);
