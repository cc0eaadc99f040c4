import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parseEncryptionKey } from "../common/secret-box";
import type { AppConfig } from "./config";

export const ENCRYPTION_KEY_FILE = "secret-encryption.key";

/**
 * SECRET_ENCRYPTION_KEY when set; otherwise a key generated once into DATA_DIR (mode 0600)
 * and reused on every later start. `generated` tells the caller to warn that the key lives beside the data.
 */
export function loadEncryptionKey(config: AppConfig): { key: Buffer; source: "env" | "file" | "generated"; file?: string } {
  if (config.secretEncryptionKey) return { key: parseEncryptionKey(config.secretEncryptionKey), source: "env" };
  const file = path.join(config.dataDir, ENCRYPTION_KEY_FILE);
  if (fs.existsSync(file)) return { key: parseEncryptionKey(fs.readFileSync(file, "utf8")), source: "file", file };
  fs.mkdirSync(config.dataDir, { recursive: true });
  const key = randomBytes(32);
  try {
    fs.writeFileSync(file, key.toString("hex") + "\n", { mode: 0o600, flag: "wx" });
  } catch (error) {
    // Another process created it first: use theirs, so every process shares one key.
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return loadEncryptionKey(config);
    throw error;
  }
  return { key, source: "generated", file };
}
