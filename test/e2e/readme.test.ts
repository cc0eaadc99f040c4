import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../support/process";
import { trackChild } from "../support/run";

/**
 * README.md is one walkthrough: its ```sh blocks run in order in one bash, its ```js blocks as ES
 * modules in the checkout, against `npm start` on a fresh data dir — as a user pastes them. A line
 * `<!-- readme-test: skip -->` right before a fence skips that block (see "The README is tested").
 */
const root = path.resolve(__dirname, "../..");
const SKIP = "<!-- readme-test: skip -->";

interface Block {
  lang: "sh" | "js";
  line: number;
  code: string;
}

export function runnableBlocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    if (end < 0) throw new Error(`README.md:${i + 1}: a fence that is never closed`);
    let previous = i - 1;
    while (previous >= 0 && lines[previous].trim() === "") previous--;
    const lang = open[1];
    if ((lang === "sh" || lang === "js") && lines[previous]?.trim() !== SKIP) {
      blocks.push({ lang, line: i + 1, code: lines.slice(i + 1, end).join("\n") });
    }
    i = end;
  }
  return blocks;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-readme-"));
// The js blocks live in the checkout, so that `import "graphql-ws"` resolves as it does for a user.
fs.mkdirSync(path.join(root, ".test-build"), { recursive: true });
const scripts = fs.mkdtempSync(path.join(root, ".test-build", "readme-"));
let server: ReturnType<typeof spawn> | undefined;

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once("exit", resolve));
    server.kill("SIGTERM");
    await exited;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(scripts, { recursive: true, force: true });
});

it("every sh and js block of README.md runs, in order, against a fresh npm start", async () => {
  const blocks = runnableBlocks(fs.readFileSync(path.join(root, "README.md"), "utf8"));
  expect(blocks.filter((b) => b.lang === "sh").length).toBeGreaterThanOrEqual(6);
  expect(blocks.some((b) => b.lang === "js")).toBe(true);

  const port = await freePort();
  const env: Record<string, string> = { ...(process.env as Record<string, string>), PORT: String(port), DATA_DIR: path.join(tmp, "data"), LOG_LEVEL: "warn" };
  for (const name of ["DATABASE_URL", "REDIS_URL", "ADMIN_API_KEY", "PBX_API_KEY", "NODE_OPTIONS", "NODE_ENV", "KEY"]) delete env[name];
  server = trackChild(spawn("npm", ["start"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] }));
  let banner = "";
  server.stdout!.on("data", (d: Buffer) => (banner += d.toString()));
  server.stderr!.on("data", (d: Buffer) => (banner += d.toString()));
  const deadline = Date.now() + 150_000;
  while (!banner.includes("PBX control plane listening on")) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`npm start did not start:\n${banner}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // What the user copies into `export KEY=…` after the quick start.
  const key = /Admin API key \(shown once, store it now\): (\S+)/.exec(banner)?.[1];
  expect(key).toMatch(/^pbx_/);

  const portOf = (code: string) => code.replaceAll("localhost:4000", `localhost:${port}`);
  const script = ["set -euo pipefail", `export KEY='${key}'`];
  blocks.forEach((block, n) => {
    script.push(`printf '\\n@@block ${n}@@\\n'`);
    if (block.lang === "sh") script.push(portOf(block.code));
    else {
      const file = path.join(scripts, `block-${n}.mjs`);
      fs.writeFileSync(file, portOf(block.code));
      script.push(`node ${JSON.stringify(file)}`);
    }
  });
  script.push(`printf '\\n@@done@@\\n'`);
  fs.writeFileSync(path.join(tmp, "walkthrough.sh"), script.join("\n") + "\n");

  const shellEnv = { ...env };
  delete shellEnv.PORT;
  delete shellEnv.DATA_DIR;
  const shell = spawn("bash", [path.join(tmp, "walkthrough.sh")], { cwd: root, env: shellEnv, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  shell.stdout.on("data", (d: Buffer) => (out += d.toString()));
  shell.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => shell.once("exit", resolve));

  if (process.env.README_TEST_LOG) fs.writeFileSync(process.env.README_TEST_LOG, out);
  const sections = out.split(/\n?@@block (\d+)@@\n/);
  const outputs = new Map<number, string>();
  for (let i = 1; i < sections.length; i += 2) outputs.set(Number(sections[i]), sections[i + 1]);
  const last = Math.max(-1, ...outputs.keys());
  const where = (n: number) => `README.md:${blocks[n]?.line} (${blocks[n]?.lang})`;
  if (code !== 0 || !out.includes("@@done@@")) {
    throw new Error(`the walkthrough stopped at ${where(last)} (exit ${code}):\n${outputs.get(last) ?? out}`);
  }
  for (const [n, text] of outputs) {
    // A GraphQL error answer, or a REST error body ({"message": …}), means the block did not do what it says.
    if (/"errors"\s*:/.test(text) || /\{"message"\s*:/.test(text)) throw new Error(`${where(n)} answered with an error:\n${text}`);
  }
  expect(outputs.size).toBe(blocks.length);
}, 300_000);
