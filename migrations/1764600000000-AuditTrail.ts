import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * The audit trail (contract §10): one append-only table. A row trigger refuses every UPDATE, and
 * every DELETE except retention pruning: the pruner sets the transaction-local `pbx.audit_prune_before`
 * and may then delete only rows older than it, and never rows of the last day (AUDIT_RETENTION_DAYS
 * is at least 1). TRUNCATE is refused too. `tenant_id` has no foreign key on purpose: the trail
 * outlives the tenant it describes (deleting a tenant is itself an entry).
 */
export class AuditTrail1764600000000 implements MigrationInterface {
  name = "AuditTrail1764600000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "audit_entry" (
        "id" bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
        "tenant_id" integer,
        "occurred_at" timestamptz NOT NULL DEFAULT now(),
        "action" varchar(64) NOT NULL,
        "entity_type" varchar(32) NOT NULL,
        "entity_id" varchar(64) NOT NULL,
        "api_key_id" integer,
        "actor_name" varchar(255),
        "actor_role" varchar(16) NOT NULL,
        "request_id" varchar(128),
        "transport" varchar(16) NOT NULL,
        "changes" jsonb,
        CONSTRAINT "pk_audit_entry" PRIMARY KEY ("id"),
        CONSTRAINT "ck_audit_entry__transport" CHECK ("transport" IN ('graphql', 'rest', 'ingest', 'cli'))
      )`);
    // Newest first per tenant (and per entity inside it); occurred_at alone serves pruning and from/to.
    await q.query(`CREATE INDEX "ix_audit_entry__tenant_id__id" ON "audit_entry" ("tenant_id", "id")`);
    await q.query(`CREATE INDEX "ix_audit_entry__entity" ON "audit_entry" ("entity_type", "entity_id", "id")`);
    await q.query(`CREATE INDEX "ix_audit_entry__occurred_at" ON "audit_entry" ("occurred_at")`);
    await q.query(`
      CREATE FUNCTION pbx_audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        cutoff text := current_setting('pbx.audit_prune_before', true);
      BEGIN
        IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND cutoff IS NOT NULL AND cutoff <> '' THEN
          IF OLD.occurred_at < cutoff::timestamptz AND OLD.occurred_at < now() - interval '1 day' THEN
            RETURN OLD;
          END IF;
        END IF;
        RAISE EXCEPTION 'audit entries are append-only: % refused', TG_OP USING ERRCODE = '42501';
      END
      $$`);
    await q.query(`
      CREATE TRIGGER "trg_audit_entry__append_only" BEFORE UPDATE OR DELETE ON "audit_entry"
      FOR EACH ROW EXECUTE FUNCTION pbx_audit_entry_append_only()`);
    await q.query(`
      CREATE TRIGGER "trg_audit_entry__no_truncate" BEFORE TRUNCATE ON "audit_entry"
      FOR EACH STATEMENT EXECUTE FUNCTION pbx_audit_entry_append_only()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "audit_entry"`);
    await q.query(`DROP FUNCTION pbx_audit_entry_append_only()`);
  }
}
