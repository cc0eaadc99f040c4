import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Deleting a tenant cascades to its extensions and its queues. With an immediate check on
 * queue_agent → extension, PostgreSQL runs the extension cascade first and refuses it while the
 * queue cascade has not yet removed the agents, so a forced tenant delete failed. Checked at
 * commit instead, the constraint still refuses deleting an enrolled extension on its own
 * (invariant 3's database backstop) but lets the tenant cascade finish.
 */
export class DeferQueueAgentExtensionFk1764150150000 implements MigrationInterface {
  name = "DeferQueueAgentExtensionFk1764150150000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "queue_agent" DROP CONSTRAINT "fk_queue_agent__extension"`);
    await q.query(`
      ALTER TABLE "queue_agent" ADD CONSTRAINT "fk_queue_agent__extension"
        FOREIGN KEY ("extension_id", "tenant_id") REFERENCES "extension" ("id", "tenant_id")
        ON DELETE NO ACTION DEFERRABLE INITIALLY DEFERRED`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "queue_agent" DROP CONSTRAINT "fk_queue_agent__extension"`);
    await q.query(`
      ALTER TABLE "queue_agent" ADD CONSTRAINT "fk_queue_agent__extension"
        FOREIGN KEY ("extension_id", "tenant_id") REFERENCES "extension" ("id", "tenant_id") ON DELETE RESTRICT`);
  }
}
