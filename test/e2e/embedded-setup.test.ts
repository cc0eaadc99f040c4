import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { buildServer, freePort, spawnServer, type ServerProcess } from "../support/process";

/**
 * First-time setup of an embedded DATA_DIR (template load + migrations in a child process, in
 * DATA_DIR/pglite.setup, renamed to DATA_DIR/pglite when complete): a fresh start, a restart on the
 * same directory, and a first start that crashed mid-setup or left partial directories all end in a
 * working server with the data kept.
 */
const root = path.resolve(__dirname, "../..");
const embedded = { DATABASE_URL: "", REDIS_URL: "", DATABASE_SCHEMA: "", ADMIN_API_KEY: "setup-admin-key-0123456789" };
const dirs: string[] = [];
const tmpDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-setup-"));
  dirs.push(dir);
  return dir;
};
let running: ServerProcess | undefined;
afterEach(async () => void (await running?.stop()));
afterAll(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

async function until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function createTenant(url: string, slug: string): Promise<void> {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${embedded.ADMIN_API_KEY}` },
    body: JSON.stringify({ query: `mutation { createTenant(input: { name: "Setup", slug: "${slug}", sipDomain: "${slug}.sip.test", maxExtensions: 5 }) { id slug } }` }),
  });
  const body = (await res.json()) as { data?: { createTenant?: { slug: string } }; errors?: unknown };
  expect(body.errors).toBeUndefined();
  expect(body.data?.createTenant?.slug).toBe(slug);
}

async function tenantSlugs(url: string): Promise<string[]> {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${embedded.ADMIN_API_KEY}` },
    body: JSON.stringify({ query: "{ tenants { slug } }" }),
  });
  const body = (await res.json()) as { data?: { tenants?: { slug: string }[] }; errors?: unknown };
  expect(body.errors).toBeUndefined();
  return body.data!.tenants!.map((n) => n.slug);
}

it("a fresh DATA_DIR is set up completely before the server opens it, and a restart keeps the data", async () => {
  const dataDir = tmpDir();
  running = await spawnServer({ ...embedded, DATA_DIR: dataDir });
  expect(fs.existsSync(path.join(dataDir, "pglite", "PG_VERSION"))).toBe(true);
  expect(fs.existsSync(path.join(dataDir, "pglite.setup"))).toBe(false);
  await createTenant(running.url, "kept-across-restart");
  expect(await running.stop()).toBe(0);

  running = await spawnServer({ ...embedded, DATA_DIR: dataDir });
  expect(await tenantSlugs(running.url)).toContain("kept-across-restart");
}, 180_000);

it("a first start killed during setup leaves no half-made database: its setup process stops, and the next start redoes the setup", async () => {
  const dataDir = tmpDir();
  const outDir = await buildServer();
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...embedded, DATA_DIR: dataDir, PORT: String(await freePort()), HOST: "127.0.0.1", LOG_LEVEL: "warn" };
  delete env.NODE_OPTIONS;
  delete env.NODE_ENV;
  const server = spawn(process.execPath, [path.join(outDir, "src/main.js")], { cwd: root, env, stdio: "ignore" });
  const exited = new Promise((resolve) => server.once("exit", resolve));
  const staging = path.join(dataDir, "pglite.setup");
  await until(() => fs.existsSync(staging) || fs.existsSync(path.join(dataDir, "pglite")), "the setup to begin");
  const childrenFile = `/proc/${server.pid}/task/${server.pid}/children`;
  const setupPids = fs.existsSync(childrenFile) ? fs.readFileSync(childrenFile, "utf8").trim().split(/\s+/).filter(Boolean).map(Number) : [];
  server.kill("SIGKILL");
  await exited;
  // The orphaned setup process notices and exits instead of writing on.
  for (const pid of setupPids) await until(() => !isAlive(pid), `setup process ${pid} to exit`, 30_000);
  if (!fs.existsSync(path.join(dataDir, "pglite", "PG_VERSION"))) {
    // Killed before the rename: only the staging directory (if anything) is there.
    expect(fs.existsSync(path.join(dataDir, "pglite"))).toBe(false);
  }

  running = await spawnServer({ ...embedded, DATA_DIR: dataDir });
  expect(fs.existsSync(staging)).toBe(false);
  await createTenant(running.url, "after-a-crash");
  expect(await tenantSlugs(running.url)).toContain("after-a-crash");
}, 180_000);

it("partial directories left by an interrupted setup (staging, or a pglite dir without PG_VERSION) are discarded and set up again", async () => {
  const dataDir = tmpDir();
  fs.mkdirSync(path.join(dataDir, "pglite.setup", "base"), { recursive: true });
  fs.writeFileSync(path.join(dataDir, "pglite.setup", "base", "garbage"), "half a page");
  fs.mkdirSync(path.join(dataDir, "pglite", "global"), { recursive: true });
  fs.writeFileSync(path.join(dataDir, "pglite", "global", "pg_control"), "torn");
  running = await spawnServer({ ...embedded, DATA_DIR: dataDir });
  expect(fs.existsSync(path.join(dataDir, "pglite.setup"))).toBe(false);
  expect(fs.existsSync(path.join(dataDir, "pglite", "global", "pg_control"))).toBe(true);
  await createTenant(running.url, "from-partial");
  expect(await tenantSlugs(running.url)).toEqual(["from-partial"]);
}, 180_000);
