import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createExtension, createTenant } from "../support/factories";
import { freePort } from "../support/process";
import { trackChild } from "../support/run";
import { startTestServer } from "../support/server";
import { freeTcpPort, freeUdpPort, waitFor } from "../support/sip";

/**
 * README.md is one walkthrough: its ```sh blocks run in order in one bash, its ```js blocks as ES
 * modules in the checkout, against the quick start's `npm run pbx` (the API and Kamailio) on a fresh
 * data dir — as a user pastes them. A line
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

it("every sh and js block of README.md runs, in order, against a fresh npm run pbx", async () => {
  const blocks = runnableBlocks(fs.readFileSync(path.join(root, "README.md"), "utf8"));
  expect(blocks.filter((b) => b.lang === "sh").length).toBeGreaterThanOrEqual(6);
  expect(blocks.some((b) => b.lang === "js")).toBe(true);

  const port = await freePort();
  const sipPort = await freeUdpPort();
  const wsPort = await freeTcpPort();
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(port),
    SIP_LISTEN: `udp:127.0.0.1:${sipPort}`,
    SIP_CHILDREN: "2",
    DATA_DIR: path.join(tmp, "data"),
    LOG_LEVEL: "warn",
    // the WebSocket listener and rtpengine on free ports too (other suites run Kamailios and rtpengines)
    PBX_WS_PORT: String(wsPort),
    RTPENGINE_NG_PORT: String(await freeUdpPort()),
    MEDIA_SIP_PORT: String(await freeUdpPort()),
  };
  for (const name of ["DATABASE_URL", "REDIS_URL", "ADMIN_API_KEY", "PBX_API_KEY", "NODE_OPTIONS", "NODE_ENV", "KEY", "PHONE_WS_URL"]) delete env[name];
  server = trackChild(spawn("npm", ["run", "pbx"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] }));
  let banner = "";
  server.stdout!.on("data", (d: Buffer) => (banner += d.toString()));
  server.stderr!.on("data", (d: Buffer) => (banner += d.toString()));
  // (npm run pbx compiles first when a source is newer than dist/: that alone can take minutes on a loaded machine)
  const deadline = Date.now() + 240_000;
  while (!/PBX ready|Kamailio is not installed/.test(banner)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`npm run pbx did not start:\n${banner}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // What the user copies into `export KEY=…` after the quick start.
  const key = /Admin API key \(shown once, store it now\): (\S+)/.exec(banner)?.[1];
  expect(key).toMatch(/^pbx_/);

  const portOf = (code: string) => code.replaceAll("localhost:4000", `localhost:${port}`).replaceAll("127.0.0.1:5060", `127.0.0.1:${sipPort}`).replaceAll("127.0.0.1:8080", `127.0.0.1:${wsPort}`);
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
  delete shellEnv.SIP_LISTEN;
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
}, 420_000);

/** A fenced block of README.md, skipped by the walkthrough or not, found by what it contains. */
function blockContaining(markdown: string, lang: string, text: string): string {
  const block = [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].find((m) => m[1] === lang && m[2].includes(text));
  if (!block) throw new Error(`README.md has no \`\`\`${lang} block with ${text}`);
  return block[2];
}

it("the webhook blocks work as written: the createWebhook call, and the receiver verifies a real delivery and refuses a forged one", async () => {
  const markdown = fs.readFileSync(path.join(root, "README.md"), "utf8");
  const helpers = blockContaining(markdown, "sh", "gql() {");
  const create = blockContaining(markdown, "sh", "createWebhook(input:");
  const receiver = blockContaining(markdown, "js", "x-pbx-signature");
  // The receiver is on this machine: a server that may deliver to private addresses, polling often.
  const ts = await startTestServer({ env: { WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_POLL_MS: "100" } });
  let child: ReturnType<typeof spawn> | undefined;
  const cleanup: Array<() => void> = [];
  try {
    const tenant = await createTenant(ts);
    const receiverPort = await freePort();
    const shell = [
      "set -euo pipefail",
      helpers.replaceAll("localhost:4000", ts.url.replace(/^http:\/\//, "")),
      create.replaceAll("https://crm.example.com/pbx", `http://127.0.0.1:${receiverPort}/pbx`),
    ].join("\n");
    const created = await new Promise<string>((resolve, reject) => {
      const sh = spawn("bash", ["-c", shell], { env: { PATH: process.env.PATH!, KEY: ts.adminKey, TENANT: tenant.id } });
      let out = "";
      let err = "";
      sh.stdout.on("data", (d: Buffer) => (out += d.toString()));
      sh.stderr.on("data", (d: Buffer) => (err += d.toString()));
      sh.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`the createWebhook block exited ${code}:\n${out}${err}`))));
    });
    expect(created).not.toMatch(/"errors"/);
    const secret = (JSON.parse(created.trim().split("\n").at(-1)!) as { data: { createWebhook: { secret: string } } }).data.createWebhook.secret;
    expect(secret).toBeTruthy();

    // Node built-ins only: it runs from a folder of its own.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-receiver-"));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "receiver.mjs");
    fs.writeFileSync(file, receiver.replace(".listen(8080)", `.listen(${receiverPort}, "127.0.0.1")`));
    child = spawn(process.execPath, [file], { env: { PATH: process.env.PATH!, WEBHOOK_SECRET: secret }, stdio: ["ignore", "pipe", "pipe"] });
    let printed = "";
    child.stdout!.on("data", (d: Buffer) => (printed += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (printed += d.toString()));
    await waitFor("the receiver to listen", async () => (await fetch(`http://127.0.0.1:${receiverPort}/pbx`, { method: "POST", body: "{}" }).then((r) => r.status, () => 0)) === 401 || undefined, 20_000);

    const extension = await createExtension(ts, tenant.id);
    await waitFor("the receiver to print the verified delivery", () => (printed.includes("extension.created") && printed.includes(extension.id)) || undefined, 30_000);
    const forged = await fetch(`http://127.0.0.1:${receiverPort}/pbx`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-pbx-signature": `t=${Math.floor(Date.now() / 1000)},v1=${"0".repeat(64)}` },
      body: JSON.stringify({ id: "forged", type: "extension.created" }),
    });
    expect(forged.status).toBe(401);
    expect(printed).not.toContain("forged");
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    for (const step of cleanup) step();
    await ts.stop();
  }
}, 120_000);
