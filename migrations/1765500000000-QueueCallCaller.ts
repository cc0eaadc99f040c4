import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Who is waiting: a queue `join` event may carry the caller's `caller_number` and `caller_name`,
 * kept with the caller's passage so a wallboard names the waiting callers instead of showing call
 * ids. Passages recorded before this migration, or joins without them, have none.
 */
export class QueueCallCaller1765500000000 implements MigrationInterface {
  name = "QueueCallCaller1765500000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "queue_call" ADD COLUMN "caller_number" varchar(64), ADD COLUMN "caller_name" varchar(255)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "queue_call" DROP COLUMN "caller_name", DROP COLUMN "caller_number"`);
  }
}
