import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { buildServer, freePort, spawnServer, type ServerProcess } from "../support/process";

/**
 * Faults at start, with real processes: each gives one line naming the variable and the fix, a
 * non-zero exit and no stack trace; and one embedded DATA_DIR serves one server process at a time.
 */
const root = path.resolve(__dirname, "../..");
const dirs: string[] = [];
const tmpDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-faults-"));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

/** Embedded defaults unless the test names DATABASE_URL/REDIS_URL (empty means unset). */
const embedded = { DATABASE_URL: "", REDIS_URL: "", DATABASE_SCHEMA: "" };

async function runToExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const outDir = await buildServer();
  const port = env.PORT ?? String(await freePort());
  const childEnv: Record<string, string> = { ...(process.env as Record<string, string>), HOST: "127.0.0.1", LOG_LEVEL: "warn", ADMIN_API_KEY: "faults-admin-key-0123456789", DATA_DIR: tmpDir(), ...embedded, ...env, PORT: port };
  delete childEnv.NODE_OPTIONS;
  delete childEnv.NODE_ENV;
  const child = spawn(process.execPath, [path.join(outDir, "src/main.js")], { cwd: root, env: childEnv });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, output };
}

/** The one line on stderr (log lines of other levels are JSON and filtered out). */
function errorLines(output: string): string[] {
  return output.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("{"));
}

function expectOneClearLine(result: { code: number | null; output: string }, pattern: RegExp): void {
  expect(result.code).not.toBe(0);
  expect(result.code).not.toBeNull();
  const lines = errorLines(result.output);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.output).not.toMatch(/^\s+at /m);
  expect(result.output).not.toContain("Internal error");
}

it("a taken port: one line naming PORT", async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  try {
    const port = String((blocker.address() as net.AddressInfo).port);
    expectOneClearLine(await runToExit({ PORT: port }), new RegExp(`PORT ${port} is already in use.*set PORT to a free port`));
  } finally {
    blocker.close();
  }
}, 180_000); // the first test compiles the server

it("a DATABASE_URL that is not PostgreSQL, or not a URL, is refused before anything connects", async () => {
  expectOneClearLine(await runToExit({ DATABASE_URL: "mysql://root@127.0.0.1:3306/pbx" }), /DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/);
  expectOneClearLine(await runToExit({ DATABASE_URL: "not a url" }), /DATABASE_URL is not a valid URL/);
});

it("an unreachable database or Redis: one line naming the variable, without the password", async () => {
  const closed = await freePort();
  const db = await runToExit({ DATABASE_URL: `postgres://pbx:hunter2secret@127.0.0.1:${closed}/pbx` });
  expectOneClearLine(db, /cannot connect to the database in DATABASE_URL \(127\.0\.0\.1:\d+\/pbx\): nothing accepts connections there/);
  expect(db.output).not.toContain("hunter2secret");
  expectOneClearLine(await runToExit({ DATABASE_URL: "postgres://pbx@no-such-host.invalid/pbx" }), /DATABASE_URL .*"no-such-host\.invalid" does not resolve/);
  expectOneClearLine(await runToExit({ REDIS_URL: `redis://127.0.0.1:${closed}` }), /cannot connect to Redis in REDIS_URL \(127\.0\.0\.1:\d+\): nothing accepts connections there.*unset REDIS_URL/);
});

describe("one server per embedded DATA_DIR", () => {
  let first: ServerProcess | undefined;
  afterAll(async () => void (await first?.stop()));

  it("a second server on the same DATA_DIR is refused while the first runs; the lock goes with the first", async () => {
    const dataDir = tmpDir();
    first = await spawnServer({ ...embedded, DATA_DIR: dataDir, ADMIN_API_KEY: "faults-admin-key-0123456789" });
    const lockFile = path.join(dataDir, "server.lock");
    expect(fs.readFileSync(lockFile, "utf8").trim()).toBe(String(first.child.pid));

    const second = await runToExit({ DATA_DIR: dataDir });
    expectOneClearLine(second, new RegExp(`DATA_DIR ${dataDir.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} is in use by another server process \\(pid ${first.child.pid}\\)`));
    // The first is unharmed.
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);

    expect(await first.stop()).toBe(0);
    expect(fs.existsSync(lockFile)).toBe(false);
    first = undefined;
  });

  it("a lock left by a process that died is taken over", async () => {
    const dataDir = tmpDir();
    // A pid that surely belongs to no process: one that has just exited.
    const dead = spawn(process.execPath, ["-e", ""]);
    const pid = dead.pid!;
    await new Promise((resolve) => dead.once("exit", resolve));
    fs.writeFileSync(path.join(dataDir, "server.lock"), `${pid}\n`);
    first = await spawnServer({ ...embedded, DATA_DIR: dataDir, ADMIN_API_KEY: "faults-admin-key-0123456789" });
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
    expect(fs.readFileSync(path.join(dataDir, "server.lock"), "utf8").trim()).toBe(String(first.child.pid));
  });
});

describe("the CLIs and .env", () => {
  async function cli(script: string, args: string[], cwd = root): Promise<{ code: number | null; output: string }> {
    const outDir = await buildServer();
    const env: Record<string, string> = { ...(process.env as Record<string, string>), ...embedded, DATA_DIR: tmpDir() };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [path.join(outDir, "src/cli", script), ...args], { cwd, env });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    return { code, output };
  }

  it("migrate, seed and simulate answer --help and refuse unknown flags before doing anything", async () => {
    for (const script of ["migrate.js", "seed.js", "simulate.js"]) {
      const help = await cli(script, ["--help"]);
      expect(help.code).toBe(0);
      expect(help.output).toMatch(/^usage: /m);
      const wrong = await cli(script, ["--no-such-flag"]);
      expect(wrong.code).toBe(2);
      expect(wrong.output).toContain("Unknown option '--no-such-flag'");
      expect(wrong.output).toMatch(/^usage: /m);
    }
  }, 180_000);

  it("the server reads .env from its working directory; the environment wins over the file", async () => {
    const cwd = tmpDir();
    const port = await freePort();
    fs.writeFileSync(path.join(cwd, ".env"), `# as .env.example suggests\nADMIN_API_KEY=dotenv-admin-key-0123456789\nPORT=${port}\nLOG_LEVEL=warn\nHOST=127.0.0.1\nDATA_DIR=${path.join(cwd, "data")}\n`);
    const outDir = await buildServer();
    const env: Record<string, string> = { ...(process.env as Record<string, string>), ...embedded, LOG_LEVEL: "error" };
    for (const name of ["NODE_OPTIONS", "NODE_ENV", "PORT", "ADMIN_API_KEY", "DATA_DIR", "HOST"]) delete env[name];
    const child = spawn(process.execPath, [path.join(outDir, "src/main.js")], { cwd, env });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    try {
      const deadline = Date.now() + 90_000;
      while (!output.includes("listening on")) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(output);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(output).toContain(`http://127.0.0.1:${port}`);
      const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer dotenv-admin-key-0123456789" },
        body: JSON.stringify({ query: "{ me { role } }" }),
      });
      expect(await res.json()).toEqual({ data: { me: { role: "ADMIN" } } });
      // LOG_LEVEL=error from the environment, not warn from the file: no warning was logged.
      expect(output).not.toContain('"level":"warn"');
    } finally {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
  }, 180_000);
});
