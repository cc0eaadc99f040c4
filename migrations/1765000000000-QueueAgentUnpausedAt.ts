import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * When an agent's last pause ended, so `QueueAgent.availableSince` can say how long an available
 * agent has been free. Set by updateQueueAgent when `paused` turns false; agents resumed before
 * this migration have none, and their time available counts from enrolment or their last call.
 */
export class QueueAgentUnpausedAt1765000000000 implements MigrationInterface {
  name = "QueueAgentUnpausedAt1765000000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "queue_agent" ADD COLUMN "unpaused_at" timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "queue_agent" DROP COLUMN "unpaused_at"`);
  }
}
