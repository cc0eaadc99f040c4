import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Contract §11: call legs to or from a carrier carry the trunk, the tenant's number involved and
 * the other party. No foreign key to trunk: records outlive the trunks they went through.
 * cdr is partitioned: columns and indexes made on the parent reach every partition.
 */
export class CallTrunkColumns1765220000000 implements MigrationInterface {
  name = "CallTrunkColumns1765220000000";

  async up(q: QueryRunner): Promise<void> {
    for (const table of ["cdr", "active_call"]) {
      await q.query(`ALTER TABLE "${table}" ADD COLUMN "trunk_id" integer, ADD COLUMN "phone_number" varchar(16), ADD COLUMN "external_number" varchar(64)`);
    }
    await q.query(`CREATE INDEX "ix_cdr__tenant_id__trunk_id__started_at__id" ON "cdr" ("tenant_id", "trunk_id", "started_at", "id")`);
    await q.query(`CREATE INDEX "ix_cdr__tenant_id__phone_number__started_at__id" ON "cdr" ("tenant_id", "phone_number", "started_at", "id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "ix_cdr__tenant_id__phone_number__started_at__id"`);
    await q.query(`DROP INDEX "ix_cdr__tenant_id__trunk_id__started_at__id"`);
    for (const table of ["cdr", "active_call"]) {
      await q.query(`ALTER TABLE "${table}" DROP COLUMN "external_number", DROP COLUMN "phone_number", DROP COLUMN "trunk_id"`);
    }
  }
}
