import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * What a SIP engine authenticates against (contract §7): the digest columns on extension and the
 * view sip_subscriber, the only relation the engine's database role may read.
 *
 * Existing extensions get their digests at the application's next start (ExtensionCredentials.backfill):
 * their secrets are sealed with the application's key, which SQL never sees, so this migration
 * cannot compute MD5(number:domain:secret). Until then such an extension is absent from the view.
 */
export class SipCredentials1764200000000 implements MigrationInterface {
  name = "SipCredentials1764200000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "extension" ADD COLUMN "ha1" char(32), ADD COLUMN "ha1b" char(32), ADD COLUMN "ha1_sha256" char(64)`);
    // The digest realm is compared byte for byte, so the domain is kept as phones are told to spell it.
    await q.query(`UPDATE "tenant" SET "sip_domain" = lower("sip_domain") WHERE "sip_domain" <> lower("sip_domain")`);
    await q.query(`ALTER TABLE "tenant" ADD CONSTRAINT "ck_tenant__sip_domain_lower_case" CHECK ("sip_domain" = lower("sip_domain"))`);
    await q.query(`
      CREATE VIEW "sip_subscriber" AS
      SELECT e."extension_number" AS "username",
             t."sip_domain"       AS "domain",
             e."ha1", e."ha1b", e."ha1_sha256",
             e."tenant_id",
             e."id"               AS "extension_id",
             e."voicemail_enabled"
        FROM "extension" e
        JOIN "tenant" t ON t."id" = e."tenant_id"
       WHERE e."status" = 'active' AND e."ha1" IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP VIEW "sip_subscriber"`);
    await q.query(`ALTER TABLE "tenant" DROP CONSTRAINT "ck_tenant__sip_domain_lower_case"`);
    await q.query(`ALTER TABLE "extension" DROP COLUMN "ha1_sha256", DROP COLUMN "ha1b", DROP COLUMN "ha1"`);
  }
}
