import os from "node:os";
import path from "node:path";

/** Where the global setup leaves the migrated PGlite dump that each embedded test server starts from. */
export const pgliteDumpPath = (): string => path.join(os.tmpdir(), `pbx-test-pglite-${process.env.PBX_TEST_RUN_ID ?? "local"}.tar.gz`);

export const databaseUrl = (): string | undefined => process.env.DATABASE_URL || undefined;
export const redisUrl = (): string | undefined => process.env.REDIS_URL || undefined;

/**
 * Tests that need real PostgreSQL/Redis (several instances) skip without them, saying so;
 * CI sets REQUIRE_REAL_SERVICES=1 so that such a skip fails the run instead.
 */
export function requireReal(what: "redis" | "postgres"): boolean {
  const available = what === "redis" ? Boolean(redisUrl()) : Boolean(databaseUrl());
  if (!available && process.env.REQUIRE_REAL_SERVICES === "1") {
    throw new Error(`REQUIRE_REAL_SERVICES=1 but ${what === "redis" ? "REDIS_URL" : "DATABASE_URL"} is not set`);
  }
  if (!available) {
    process.stderr.write(`SKIPPED: this suite needs ${what === "redis" ? "REDIS_URL" : "DATABASE_URL"} (real ${what}); it did not run.\n`);
  }
  return available;
}
