import fs from "node:fs";
import path from "node:path";
import { parseEnv } from "node:util";

/**
 * Reads `.env` from the working directory when there is one (the format of Node's own loader,
 * util.parseEnv), before the configuration is read. A variable already set in the environment wins,
 * so `PORT=5000 npm start` still overrides the file. Returns the file read, if any.
 */
export function loadDotEnv(file = path.resolve(".env")): string | null {
  if (!fs.existsSync(file)) return null;
  const values = parseEnv(fs.readFileSync(file, "utf8"));
  for (const [name, value] of Object.entries(values)) {
    if (process.env[name] === undefined) process.env[name] = value;
  }
  return file;
}
