import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Voicemail messages and their audio (contract §8).
 *
 * `voicemail_message` is the message without its audio, so listings never read audio bytes. The
 * engine's `message_id` is unique per extension: a repeated hand-over finds the stored row. The
 * composite foreign key keeps a message in its extension's tenant and removes it with the extension.
 * The keyset index serves the newest-first pages and the per-extension counts; the received_at
 * index serves the retention sweep.
 *
 * `voicemail_audio_chunk` holds the audio in ordered chunks (256 KiB each, the last one shorter):
 * a download streams one chunk at a time and a Range request reads only the chunks it covers, on
 * PostgreSQL and the embedded engine alike. Chunks go with their message.
 */
export class Voicemail1764400000000 implements MigrationInterface {
  name = "Voicemail1764400000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "voicemail_message" (
        "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
        "tenant_id" integer NOT NULL,
        "extension_id" integer NOT NULL,
        "message_id" varchar(255) NOT NULL,
        "call_id" varchar(255),
        "caller_number" varchar(64),
        "caller_name" varchar(255),
        "received_at" timestamptz NOT NULL,
        "duration_seconds" integer NOT NULL,
        "heard" boolean NOT NULL DEFAULT false,
        "content_type" varchar(32) NOT NULL,
        "size_bytes" integer NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_voicemail_message" PRIMARY KEY ("id"),
        CONSTRAINT "uq_voicemail_message__extension_id__message_id" UNIQUE ("extension_id", "message_id"),
        CONSTRAINT "ck_voicemail_message__duration_seconds" CHECK ("duration_seconds" >= 0),
        CONSTRAINT "ck_voicemail_message__size_bytes" CHECK ("size_bytes" > 0),
        CONSTRAINT "fk_voicemail_message__extension" FOREIGN KEY ("extension_id", "tenant_id") REFERENCES "extension" ("id", "tenant_id") ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX "ix_voicemail_message__extension_id__received_at__id" ON "voicemail_message" ("extension_id", "received_at", "id")`);
    await q.query(`CREATE INDEX "ix_voicemail_message__tenant_id" ON "voicemail_message" ("tenant_id")`);
    await q.query(`CREATE INDEX "ix_voicemail_message__received_at" ON "voicemail_message" ("received_at")`);
    await q.query(`
      CREATE TABLE "voicemail_audio_chunk" (
        "message_id" integer NOT NULL,
        "ordinal" integer NOT NULL,
        "data" bytea NOT NULL,
        CONSTRAINT "pk_voicemail_audio_chunk" PRIMARY KEY ("message_id", "ordinal"),
        CONSTRAINT "ck_voicemail_audio_chunk__ordinal" CHECK ("ordinal" >= 0),
        CONSTRAINT "fk_voicemail_audio_chunk__message" FOREIGN KEY ("message_id") REFERENCES "voicemail_message" ("id") ON DELETE CASCADE
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "voicemail_audio_chunk"`);
    await q.query(`DROP TABLE "voicemail_message"`);
  }
}
