import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * The transactional outbox and webhooks (contract §9).
 *
 * `event_log` holds every live event of a tenant, written in the transaction of its change with a
 * per-tenant `sequence`. The sequence comes from `tenant_event_seq`, whose row is taken (UPDATE,
 * so a row lock) as the last statement before COMMIT: a second transaction of the tenant waits
 * for the first to commit, so sequence order is commit order and a reader resuming after N never
 * skips an earlier commit. No foreign key to `tenant`: the log is history, and the hot path pays
 * no key check. `event_relay` is each tenant's relay watermark (what reached pub/sub) and prune
 * watermark (what retention removed), kept apart from the counter so relaying never blocks a
 * commit. The BRIN index on committed_at serves the batched pruning at almost no insert cost.
 *
 * `webhook` keeps its signing secret sealed (AES-GCM, like SIP secrets): it must be able to sign.
 * `webhook_delivery` is one event for one webhook, with its body as first built, so retries and
 * redeliveries send the same data; (webhook_id, sequence) is unique (a relay pass that is
 * repeated creates no second delivery) and serves "the oldest pending delivery of a webhook".
 */
export class EventLog1764500000000 implements MigrationInterface {
  name = "EventLog1764500000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "tenant_event_seq" (
        "tenant_id" integer NOT NULL,
        "last" bigint NOT NULL,
        CONSTRAINT "pk_tenant_event_seq" PRIMARY KEY ("tenant_id")
      )`);
    await q.query(`
      CREATE TABLE "event_relay" (
        "tenant_id" integer NOT NULL,
        "relayed" bigint NOT NULL DEFAULT 0,
        "pruned" bigint NOT NULL DEFAULT 0,
        CONSTRAINT "pk_event_relay" PRIMARY KEY ("tenant_id")
      )`);
    await q.query(`
      CREATE TABLE "event_log" (
        "tenant_id" integer NOT NULL,
        "sequence" bigint NOT NULL,
        "kind" varchar(32) NOT NULL,
        "type" varchar(64) NOT NULL,
        "payload" jsonb NOT NULL,
        "committed_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_event_log" PRIMARY KEY ("tenant_id", "sequence")
      )`);
    await q.query(`CREATE INDEX "ix_event_log__committed_at" ON "event_log" USING brin ("committed_at")`);
    await q.query(`
      CREATE TABLE "webhook" (
        "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
        "tenant_id" integer NOT NULL,
        "url" varchar(2048) NOT NULL,
        "events" text[] NOT NULL,
        "description" varchar(255),
        "enabled" boolean NOT NULL DEFAULT true,
        "secret_ciphertext" text NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_webhook" PRIMARY KEY ("id"),
        CONSTRAINT "fk_webhook__tenant_id" FOREIGN KEY ("tenant_id") REFERENCES "tenant" ("id") ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX "ix_webhook__tenant_id" ON "webhook" ("tenant_id")`);
    await q.query(`
      CREATE TABLE "webhook_delivery" (
        "id" bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
        "webhook_id" integer NOT NULL,
        "tenant_id" integer NOT NULL,
        "sequence" bigint NOT NULL,
        "event_type" varchar(64) NOT NULL,
        "body" text NOT NULL,
        "status" varchar(16) NOT NULL DEFAULT 'pending',
        "attempts" integer NOT NULL DEFAULT 0,
        "response_status" integer,
        "error" varchar(500),
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "delivered_at" timestamptz,
        "next_attempt_at" timestamptz,
        "locked_until" timestamptz,
        CONSTRAINT "pk_webhook_delivery" PRIMARY KEY ("id"),
        CONSTRAINT "uq_webhook_delivery__webhook_id__sequence" UNIQUE ("webhook_id", "sequence"),
        CONSTRAINT "ck_webhook_delivery__status" CHECK ("status" IN ('pending', 'delivered', 'failed')),
        CONSTRAINT "fk_webhook_delivery__webhook_id" FOREIGN KEY ("webhook_id") REFERENCES "webhook" ("id") ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX "ix_webhook_delivery__due" ON "webhook_delivery" ("next_attempt_at") WHERE "status" = 'pending'`);
    await q.query(`CREATE INDEX "ix_webhook_delivery__webhook_id__id" ON "webhook_delivery" ("webhook_id", "id")`);
    await q.query(`CREATE INDEX "ix_webhook_delivery__created_at" ON "webhook_delivery" USING brin ("created_at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "webhook_delivery"`);
    await q.query(`DROP TABLE "webhook"`);
    await q.query(`DROP TABLE "event_log"`);
    await q.query(`DROP TABLE "event_relay"`);
    await q.query(`DROP TABLE "tenant_event_seq"`);
  }
}
