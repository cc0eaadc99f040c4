import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * One test run's own temp folder, and the processes to stop if the run is cut short.
 *
 * The global setup makes the folder and gives it to the workers as their TMPDIR, so everything a
 * test or a process it starts writes to the temp folder (PGlite's dump and data dirs, Kamailio's
 * run dir, baresip's config, Chromium's profile) lands in it and goes with it: at the end of the
 * run, or when the run is stopped (SIGINT, SIGTERM, SIGHUP), when the processes recorded here —
 * the jest workers and what they started — are stopped by PID first.
 */
export const RUN_DIR_ENV = "PBX_TEST_RUN_DIR";

const pidsDir = (runDir: string) => path.join(runDir, ".pids");

/**
 * The start time of a living process (field 22 of /proc/PID/stat): a PID with another start time is
 * another process; a zombie (state Z, exited but not yet reaped) counts as gone.
 */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/** Records a process of this run (a worker, or a process a test started) so that a stopped run stops it too. */
export function trackPid(pid: number | undefined): void {
  const runDir = process.env[RUN_DIR_ENV];
  if (!runDir || pid === undefined) return;
  const started = startTime(pid);
  if (started === undefined) return;
  fs.mkdirSync(pidsDir(runDir), { recursive: true });
  fs.writeFileSync(path.join(pidsDir(runDir), String(pid)), started);
}

/** trackPid for a child process, forgotten again when it exits. */
export function trackChild<T extends ChildProcess>(child: T): T {
  trackPid(child.pid);
  child.once("exit", () => {
    const runDir = process.env[RUN_DIR_ENV];
    if (runDir && child.pid !== undefined) fs.rmSync(path.join(pidsDir(runDir), String(child.pid)), { force: true });
  });
  return child;
}

/** The run folder: made by the global setup, in the temp folder the run was started with. */
export function createRunDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "pbx-test-run-"));
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Stops every recorded process still alive (SIGTERM, SIGKILL after `graceMs`) — each checked by its
 * start time, so a PID the system has since given to another process is left alone — then removes
 * the run folder. Synchronous: it runs from a signal handler right before the process goes.
 */
export function stopRun(runDir: string, graceMs = 5000): void {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(pidsDir(runDir));
  } catch {
    // nothing recorded
  }
  const ours = entries
    .map((name) => ({ pid: Number(name), started: fs.readFileSync(path.join(pidsDir(runDir), name), "utf8") }))
    .filter(({ pid, started }) => pid !== process.pid && startTime(pid) === started)
    .map(({ pid, started }) => ({ pid, alive: () => startTime(pid) === started }));
  const signal = (pid: number, name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // gone meanwhile
    }
  };
  for (const { pid } of ours) signal(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (ours.some((p) => p.alive()) && Date.now() < deadline) pause(50);
  for (const p of ours) if (p.alive()) signal(p.pid, "SIGKILL");
  fs.rmSync(runDir, { recursive: true, force: true });
}
