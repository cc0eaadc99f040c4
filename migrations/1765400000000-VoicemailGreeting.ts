import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * An extension's own voicemail greeting (contract §13: PUT/GET/DELETE
 * /api/extensions/{id}/voicemail/greeting), played by the media application before the beep. One
 * row per extension, a WAV of at most 60 s (under 1 MiB at 8 kHz 16-bit, so one bytea); it goes with
 * its extension. `version` changes with every upload, so the media application's file copy for
 * rtpengine is named by it and never served stale.
 */
export class VoicemailGreeting1765400000000 implements MigrationInterface {
  name = "VoicemailGreeting1765400000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "voicemail_greeting" (
        "extension_id" integer NOT NULL,
        "tenant_id" integer NOT NULL,
        "content_type" varchar(32) NOT NULL,
        "duration_ms" integer NOT NULL,
        "size_bytes" integer NOT NULL,
        "version" integer NOT NULL DEFAULT 1,
        "audio" bytea NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_voicemail_greeting" PRIMARY KEY ("extension_id"),
        CONSTRAINT "ck_voicemail_greeting__duration_ms" CHECK ("duration_ms" >= 0),
        CONSTRAINT "fk_voicemail_greeting__extension" FOREIGN KEY ("extension_id", "tenant_id") REFERENCES "extension" ("id", "tenant_id") ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX "ix_voicemail_greeting__tenant_id" ON "voicemail_greeting" ("tenant_id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "voicemail_greeting"`);
  }
}
