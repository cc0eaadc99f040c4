import fs from "node:fs";
import path from "node:path";
import { RUN_DIR_ENV } from "./run";

/** The run's temp folder (the PGlite dump, every data dir a test left) and the compiled server go. */
export default async function globalTeardown(): Promise<void> {
  const runDir = process.env[RUN_DIR_ENV];
  if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  fs.rmSync(path.resolve(__dirname, "../../.test-build"), { recursive: true, force: true });
}
