import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Tenant.cdrStats reads every CDR of a tenant in a time range but needs only its start, disposition
 * and duration: with those in the key, the range is one index-only scan (no heap fetch per call).
 * Created on the partitioned parent, so every month (and every month created later) gets it.
 */
export class CdrStatsIndex1764900000000 implements MigrationInterface {
  name = "CdrStatsIndex1764900000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX "ix_cdr__tenant_id__started_at__stats" ON "cdr" ("tenant_id", "started_at", "disposition", "duration_seconds")`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "ix_cdr__tenant_id__started_at__stats"`);
  }
}
