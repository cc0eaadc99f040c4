import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * When an agent's pause began, so a wallboard can show how long it has been paused. Set by
 * updateQueueAgent when `paused` turns true, cleared when it turns false; agents already paused
 * before this migration have none (the page then shows no time rather than a guess).
 */
export class QueueAgentPausedAt1764850000000 implements MigrationInterface {
  name = "QueueAgentPausedAt1764850000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "queue_agent" ADD COLUMN "paused_at" timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "queue_agent" DROP COLUMN "paused_at"`);
  }
}
