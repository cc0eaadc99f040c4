import { execFile, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { trackChild } from "./run";
import { freeTcpPort } from "./ports";

const root = path.resolve(__dirname, "../..");
let built: Promise<string> | undefined;

/** Compiles the server once per test file into its own folder (dist/ stays `npm start`'s). */
export function buildServer(): Promise<string> {
  built ??= (async () => {
    // Inside the repository, so the compiled code resolves node_modules as the real one does.
    fs.mkdirSync(path.join(root, ".test-build"), { recursive: true });
    const outDir = fs.mkdtempSync(path.join(root, ".test-build", "build-"));
    await promisify(execFile)(path.join(root, "node_modules/.bin/tsc"), ["-p", path.join(root, "tsconfig.build.json"), "--outDir", outDir], { cwd: root });
    return outDir;
  })();
  return built;
}

/** A free TCP port below the ephemeral range (see ports.ts). */
export const freePort = freeTcpPort;

export interface ServerProcess {
  url: string;
  wsUrl: string;
  child: ChildProcessWithoutNullStreams;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** Starts `node src/main.js` of the compiled server as a separate process and waits until it listens. */
export async function spawnServer(env: Record<string, string>): Promise<ServerProcess> {
  const outDir = await buildServer();
  const port = await freePort();
  const childEnv: Record<string, string> = { ...(process.env as Record<string, string>), PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", ...env };
  delete childEnv.NODE_OPTIONS;
  delete childEnv.NODE_ENV;
  const child = trackChild(spawn(process.execPath, [path.join(outDir, "src/main.js")], { cwd: root, env: childEnv }));
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!out.includes("PBX control plane listening on")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server process did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    child,
    output: () => out,
    exited,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}
