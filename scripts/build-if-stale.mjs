#!/usr/bin/env node
// Compiles the TypeScript into dist/ only when a source is newer than the last build, so
// `npm start` (and the CLIs) start from the build instead of running tsc every time. `npm ci`
// builds once through the `prepare` script; after that a start costs one walk of the sources.
//
//   node scripts/build-if-stale.mjs [--force]
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const stamp = path.join(root, "dist", ".build-stamp");
// What tsconfig.build.json compiles, and the files that change how it compiles.
const inputs = ["src", "migrations", "test/bench", "test/support/sip.ts", "ormconfig.ts", "tsconfig.json", "tsconfig.build.json", "package-lock.json"];

function newestMtime(target) {
  let stat;
  try {
    stat = fs.statSync(target);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return target.endsWith(".ts") || target.endsWith(".json") ? stat.mtimeMs : 0;
  let newest = stat.mtimeMs; // a deleted file changes its directory
  for (const entry of fs.readdirSync(target)) newest = Math.max(newest, newestMtime(path.join(target, entry)));
  return newest;
}

const builtAt = fs.existsSync(stamp) ? fs.statSync(stamp).mtimeMs : 0;
const force = process.argv.includes("--force");
if (!force && builtAt > 0 && inputs.every((input) => newestMtime(path.join(root, input)) <= builtAt)) process.exit(0);

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
} catch {
  if (builtAt > 0) process.exit(0); // a production install without dev dependencies: run the build it shipped with
  process.stderr.write("dist/ is missing and TypeScript is not installed: run `npm ci` (with dev dependencies) to build the server.\n");
  process.exit(1);
}
process.stderr.write(builtAt > 0 && !force ? "sources changed since the last build: compiling (tsc)…\n" : "compiling (tsc)…\n");
const startedAt = Date.now();
try {
  execFileSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.build.json")], { cwd: root, stdio: "inherit" });
} catch {
  process.exit(1);
}
fs.mkdirSync(path.dirname(stamp), { recursive: true });
// The stamp records when the compile STARTED: a file saved during it is older than dist/ yet newer than the stamp.
fs.writeFileSync(stamp, `${new Date(startedAt).toISOString()}\n`);
fs.utimesSync(stamp, new Date(startedAt), new Date(startedAt));
