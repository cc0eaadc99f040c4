import type { MigrationInterface, QueryRunner } from "typeorm";

/** Tenants, their extensions, and API keys. Unqualified names: the connection's search_path decides the schema. */
export class Foundation1764150000000 implements MigrationInterface {
  name = "Foundation1764150000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "tenant" (
        "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
        "name" varchar(255) NOT NULL,
        "slug" varchar(63) NOT NULL,
        "sip_domain" varchar(253) NOT NULL,
        "max_extensions" integer NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_tenant" PRIMARY KEY ("id"),
        CONSTRAINT "uq_tenant__slug" UNIQUE ("slug"),
        CONSTRAINT "uq_tenant__sip_domain" UNIQUE ("sip_domain"),
        CONSTRAINT "ck_tenant__max_extensions" CHECK ("max_extensions" >= 0)
      )`);
    await q.query(`
      CREATE TABLE "extension" (
        "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
        "tenant_id" integer NOT NULL,
        "extension_number" varchar(20) NOT NULL,
        "display_name" varchar(255),
        "email" varchar(255),
        "secret_ciphertext" text NOT NULL,
        "status" varchar(16) NOT NULL DEFAULT 'active',
        "voicemail_enabled" boolean NOT NULL DEFAULT false,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_extension" PRIMARY KEY ("id"),
        CONSTRAINT "uq_extension__tenant_id__extension_number" UNIQUE ("tenant_id", "extension_number"),
        CONSTRAINT "uq_extension__id__tenant_id" UNIQUE ("id", "tenant_id"),
        CONSTRAINT "ck_extension__extension_number" CHECK ("extension_number" ~ '^[0-9]{1,20}$'),
        CONSTRAINT "ck_extension__status" CHECK ("status" IN ('active', 'disabled')),
        CONSTRAINT "fk_extension__tenant_id" FOREIGN KEY ("tenant_id") REFERENCES "tenant" ("id") ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX "ix_extension__tenant_id__id" ON "extension" ("tenant_id", "id")`);
    await q.query(`
      CREATE TABLE "api_key" (
        "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
        "name" varchar(255) NOT NULL,
        "role" varchar(16) NOT NULL,
        "tenant_id" integer,
        "prefix" varchar(16) NOT NULL,
        "key_hash" char(64) NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "revoked_at" timestamptz,
        CONSTRAINT "pk_api_key" PRIMARY KEY ("id"),
        CONSTRAINT "uq_api_key__key_hash" UNIQUE ("key_hash"),
        CONSTRAINT "ck_api_key__role" CHECK ("role" IN ('ADMIN', 'TENANT_ADMIN', 'VIEWER', 'INGEST')),
        CONSTRAINT "ck_api_key__tenant_scope" CHECK (("role" = 'ADMIN' AND "tenant_id" IS NULL) OR ("role" IN ('TENANT_ADMIN', 'VIEWER') AND "tenant_id" IS NOT NULL) OR "role" = 'INGEST'),
        CONSTRAINT "fk_api_key__tenant_id" FOREIGN KEY ("tenant_id") REFERENCES "tenant" ("id") ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX "ix_api_key__tenant_id" ON "api_key" ("tenant_id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "api_key"`);
    await q.query(`DROP TABLE "extension"`);
    await q.query(`DROP TABLE "tenant"`);
  }
}
