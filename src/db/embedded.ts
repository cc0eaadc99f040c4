import { PGlite } from "@electric-sql/pglite";
import { execFileSync, fork } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { StartupError } from "../common/startup-error";

/**
 * PostgreSQL settings of the embedded engine. PGlite's default shared_buffers is 160 MB, which a
 * WASM heap never gives back once touched; 16 MB holds a development or demo data set and takes
 * ~120 MiB off the resident memory.
 */
export const EMBEDDED_START_PARAMS: readonly string[] = [...PGlite.defaultStartParams, "-c", "shared_buffers=16MB"];

/**
 * An exclusive lock on an embedded DATA_DIR for the life of this process: PGlite is one process's
 * database, and two servers on one directory would each hand out the same ids and overwrite each
 * other's pages. The file holds the owner's pid; a lock whose process is gone is taken over.
 */
export class DataDirLock {
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(readonly file: string) {
    process.once("exit", this.onExit);
  }

  static acquire(dataDir: string): DataDirLock {
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, "server.lock");
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.writeFileSync(file, `${process.pid}\n`, { flag: "wx" });
        return new DataDirLock(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const owner = Number.parseInt(fs.readFileSync(file, "utf8").trim(), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new StartupError(
          `DATA_DIR ${dataDir} is in use by another server process (pid ${owner}): stop that one, or give this one its own DATA_DIR (or DATABASE_URL). ` +
            `If no such process runs, delete ${file}.`,
        );
      }
      // The owner died without cleaning up (or wrote nothing): take the lock over.
      fs.rmSync(file, { force: true });
    }
    throw new StartupError(`could not lock DATA_DIR ${dataDir} (${file} keeps reappearing)`);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener("exit", this.onExit);
    try {
      if (fs.readFileSync(this.file, "utf8").trim() === String(process.pid)) fs.rmSync(this.file, { force: true });
    } catch {
      // already gone
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A freshly initialised, empty cluster (what initdb makes), kept once per PGlite version in
 * node_modules/.cache so that a new DATA_DIR starts from a copy in about a second. initdb runs a
 * second WASM instance beside the first; doing it in a short-lived child process keeps that memory
 * (~500 MiB) out of the server. `npm ci` makes the template (the prepare script).
 */
export function initdbTemplatePath(): string {
  // Its exports map does not name package.json: walk up from the entry point.
  let dir = path.dirname(require.resolve("@electric-sql/pglite"));
  while (!fs.existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  const version = (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { version: string }).version;
  const nodeModules = path.resolve(dir, "../..");
  return path.join(nodeModules, ".cache", "pbx-control-plane", `pglite-${version}-initdb.tar.gz`);
}

/** Makes the template in this process (the child's job, see `makeTemplateInChild`). */
export async function makeInitdbTemplate(file: string): Promise<void> {
  const pglite = await PGlite.create({ startParams: [...EMBEDDED_START_PARAMS] });
  try {
    const dump = await pglite.dumpDataDir("gzip");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const partial = `${file}.${process.pid}.partial`;
    fs.writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
    fs.renameSync(partial, file);
  } finally {
    await pglite.close();
  }
}

/** The template, made first in a child process if it is missing (compiled builds) or here (tests from source). */
export async function ensureInitdbTemplate(): Promise<string> {
  const file = initdbTemplatePath();
  if (fs.existsSync(file)) return file;
  const child = path.join(__dirname, "../cli/pglite-template.js");
  if (fs.existsSync(child)) execFileSync(process.execPath, [child, file], { stdio: ["ignore", "ignore", "inherit"] });
  else await makeInitdbTemplate(file);
  return file;
}

/**
 * Opens the embedded engine on DATA_DIR/pglite. A new directory is prepared first (template load and,
 * with `migrate`, every migration) in a short-lived child process under this process's DATA_DIR
 * lock, in DATA_DIR/pglite.setup, which is renamed to DATA_DIR/pglite only once complete: the server
 * then opens it like an existing one and never holds the memory the setup grew, and a setup
 * interrupted by a crash leaves only pglite.setup, which the next start discards and redoes.
 */
export async function openEmbedded(dataDir: string, options: { migrate?: boolean } = {}): Promise<PGlite> {
  const pgDir = path.join(dataDir, "pglite");
  const startParams = [...EMBEDDED_START_PARAMS];
  if (fs.existsSync(path.join(pgDir, "PG_VERSION"))) return PGlite.create({ dataDir: pgDir, startParams });
  // An interrupted first start (or one of an older version, which set up in place) may have left a partial directory: start it over.
  const staging = path.join(dataDir, "pglite.setup");
  fs.rmSync(staging, { recursive: true, force: true });
  fs.rmSync(pgDir, { recursive: true, force: true });
  const template = await ensureInitdbTemplate();
  const child = path.join(__dirname, "../cli/pglite-setup.js");
  if (!fs.existsSync(child)) {
    // Running from source (ts-jest): set up in this process; the server's migrate step does the rest.
    fs.mkdirSync(staging, { recursive: true });
    await (await PGlite.create({ dataDir: staging, startParams, loadDataDir: new Blob([fs.readFileSync(template)]) })).close();
  } else {
    await runSetupChild(child, [staging, template, options.migrate === false ? "no-migrate" : "migrate"], staging);
  }
  fs.renameSync(staging, pgDir);
  return PGlite.create({ dataDir: pgDir, startParams });
}

/** Runs the setup child; it exits by itself if this process dies (its IPC channel closes), so no orphan writes into a directory the next start discards. */
function runSetupChild(script: string, args: string[], staging: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = fork(script, args, { stdio: ["ignore", "ignore", "pipe", "ipc"], execArgv: [] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (code === 0) return resolve();
      const reason = stderr.trim().split("\n")[0] || `the setup process exited with ${signal ?? code}`;
      reject(new StartupError(`could not set up the embedded database in ${staging}: ${reason}. Check that DATA_DIR is writable and has space; the next start retries.`));
    });
  });
}
