import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Live queue state for wallboards.
 *
 * `queue_call` is one caller's passage through a queue, keyed by (queue, call_id) so that the
 * engine's join / answer / abandon events are idempotent and may arrive in any order: whichever
 * comes first creates the row, the others fill in their column. joined_at stays NULL when the join
 * never arrived (the wait is then unknown). A row is waiting while it is neither answered nor
 * abandoned; the partial indexes serve exactly the wallboard's reads: the callers waiting now, and
 * the calls answered or abandoned since the start of the tenant's day. agent_extension_id carries
 * no foreign key, like a CDR's: it is history and outlives the extension.
 *
 * The tenant's `timezone` (IANA name) defines its day; a queue's `service_level_seconds` is the
 * answer-time target its service level is measured against.
 */
export class QueueCalls1764150400000 implements MigrationInterface {
  name = "QueueCalls1764150400000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "tenant" ADD COLUMN "timezone" varchar(64) NOT NULL DEFAULT 'UTC'`);
    await q.query(`ALTER TABLE "queue" ADD COLUMN "service_level_seconds" integer NOT NULL DEFAULT 20`);
    await q.query(
      `ALTER TABLE "queue" ADD CONSTRAINT "ck_queue__service_level_seconds" CHECK ("service_level_seconds" >= 1 AND "service_level_seconds" <= 3600)`,
    );
    await q.query(`
      CREATE TABLE "queue_call" (
        "id" bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
        "tenant_id" integer NOT NULL,
        "queue_id" integer NOT NULL,
        "call_id" varchar(255) NOT NULL,
        "joined_at" timestamptz,
        "answered_at" timestamptz,
        "abandoned_at" timestamptz,
        "agent_extension_id" integer,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_queue_call" PRIMARY KEY ("id"),
        CONSTRAINT "uq_queue_call__queue_id__call_id" UNIQUE ("queue_id", "call_id"),
        CONSTRAINT "ck_queue_call__outcome" CHECK ("answered_at" IS NULL OR "abandoned_at" IS NULL),
        CONSTRAINT "ck_queue_call__answered_by" CHECK (("answered_at" IS NULL) = ("agent_extension_id" IS NULL)),
        CONSTRAINT "ck_queue_call__seen" CHECK ("joined_at" IS NOT NULL OR "answered_at" IS NOT NULL OR "abandoned_at" IS NOT NULL),
        CONSTRAINT "fk_queue_call__queue" FOREIGN KEY ("queue_id", "tenant_id") REFERENCES "queue" ("id", "tenant_id") ON DELETE CASCADE
      )`);
    await q.query(
      `CREATE INDEX "ix_queue_call__queue_id__joined_at" ON "queue_call" ("queue_id", "joined_at") WHERE "answered_at" IS NULL AND "abandoned_at" IS NULL`,
    );
    await q.query(`CREATE INDEX "ix_queue_call__queue_id__answered_at" ON "queue_call" ("queue_id", "answered_at") WHERE "answered_at" IS NOT NULL`);
    await q.query(`CREATE INDEX "ix_queue_call__queue_id__abandoned_at" ON "queue_call" ("queue_id", "abandoned_at") WHERE "abandoned_at" IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "queue_call"`);
    await q.query(`ALTER TABLE "queue" DROP CONSTRAINT "ck_queue__service_level_seconds"`);
    await q.query(`ALTER TABLE "queue" DROP COLUMN "service_level_seconds"`);
    await q.query(`ALTER TABLE "tenant" DROP COLUMN "timezone"`);
  }
}
