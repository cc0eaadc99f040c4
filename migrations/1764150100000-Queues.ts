import type { MigrationInterface, QueryRunner } from "typeorm";

/** Call queues and their agents. Composite foreign keys keep every agent inside the queue's tenant. */
export class Queues1764150100000 implements MigrationInterface {
  name = "Queues1764150100000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "queue" (
        "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
        "tenant_id" integer NOT NULL,
        "name" varchar(255) NOT NULL,
        "number" varchar(20) NOT NULL,
        "strategy" varchar(16) NOT NULL DEFAULT 'ring_all',
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_queue" PRIMARY KEY ("id"),
        CONSTRAINT "uq_queue__tenant_id__number" UNIQUE ("tenant_id", "number"),
        CONSTRAINT "uq_queue__id__tenant_id" UNIQUE ("id", "tenant_id"),
        CONSTRAINT "ck_queue__number" CHECK ("number" ~ '^[0-9]{1,20}$'),
        CONSTRAINT "ck_queue__strategy" CHECK ("strategy" IN ('ring_all', 'round_robin', 'least_recent', 'fewest_calls', 'random', 'linear')),
        CONSTRAINT "fk_queue__tenant_id" FOREIGN KEY ("tenant_id") REFERENCES "tenant" ("id") ON DELETE CASCADE
      )`);
    await q.query(`
      CREATE TABLE "queue_agent" (
        "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
        "tenant_id" integer NOT NULL,
        "queue_id" integer NOT NULL,
        "extension_id" integer NOT NULL,
        "penalty" integer NOT NULL DEFAULT 0,
        "paused" boolean NOT NULL DEFAULT false,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_queue_agent" PRIMARY KEY ("id"),
        CONSTRAINT "uq_queue_agent__queue_id__extension_id" UNIQUE ("queue_id", "extension_id"),
        CONSTRAINT "ck_queue_agent__penalty" CHECK ("penalty" >= 0),
        CONSTRAINT "fk_queue_agent__queue" FOREIGN KEY ("queue_id", "tenant_id") REFERENCES "queue" ("id", "tenant_id") ON DELETE CASCADE,
        CONSTRAINT "fk_queue_agent__extension" FOREIGN KEY ("extension_id", "tenant_id") REFERENCES "extension" ("id", "tenant_id") ON DELETE RESTRICT
      )`);
    await q.query(`CREATE INDEX "ix_queue_agent__extension_id" ON "queue_agent" ("extension_id")`);
    await q.query(`CREATE INDEX "ix_queue_agent__tenant_id" ON "queue_agent" ("tenant_id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "queue_agent"`);
    await q.query(`DROP TABLE "queue"`);
  }
}
