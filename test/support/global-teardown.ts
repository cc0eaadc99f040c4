import fs from "node:fs";
import path from "node:path";
import { pgliteDumpPath } from "./env";

export default async function globalTeardown(): Promise<void> {
  fs.rmSync(pgliteDumpPath(), { force: true });
  fs.rmSync(path.resolve(__dirname, "../../.test-build"), { recursive: true, force: true });
}
