import fs from "node:fs";
import { pgliteDumpPath } from "./env";

export default async function globalTeardown(): Promise<void> {
  fs.rmSync(pgliteDumpPath(), { force: true });
}
