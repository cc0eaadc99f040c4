import type { MigrationInterface, QueryRunner } from "typeorm";
import { destinationCheck, destinationColumnsSql } from "../src/modules/call-destination/call-destination";

/**
 * What the media application needs to run a queue's real calls (contract §13): how long one offer
 * rings an agent (agent_ring_seconds, default 15), how long a caller waits at most
 * (max_wait_seconds, 5–3600, default 300) and where the caller goes then (timeout_destination, a
 * §11 destination, default HANGUP).
 */
export class QueueCallSettings1765400100000 implements MigrationInterface {
  name = "QueueCallSettings1765400100000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "queue" ADD COLUMN "agent_ring_seconds" integer NOT NULL DEFAULT 15, ADD COLUMN "max_wait_seconds" integer NOT NULL DEFAULT 300,
      ${destinationColumnsSql("timeout_destination")}`);
    await q.query(`ALTER TABLE "queue" ADD CONSTRAINT "ck_queue__agent_ring_seconds" CHECK ("agent_ring_seconds" >= 5 AND "agent_ring_seconds" <= 300)`);
    await q.query(`ALTER TABLE "queue" ADD CONSTRAINT "ck_queue__max_wait_seconds" CHECK ("max_wait_seconds" >= 5 AND "max_wait_seconds" <= 3600)`);
    await q.query(`ALTER TABLE "queue" ADD CONSTRAINT "ck_queue__timeout_destination" CHECK (${destinationCheck("timeout_destination")})`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "queue" DROP COLUMN "timeout_destination_target", DROP COLUMN "timeout_destination_type", DROP COLUMN "max_wait_seconds", DROP COLUMN "agent_ring_seconds"`);
  }
}
