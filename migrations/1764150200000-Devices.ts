import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Registered SIP user agents of extensions. One row per (extension, contact URI): a registration
 * refresh updates its row, an unregistration stamps unregistered_at. The composite foreign key keeps
 * a device in its extension's tenant and removes it with the extension.
 */
export class Devices1764150200000 implements MigrationInterface {
  name = "Devices1764150200000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "device" (
        "id" integer GENERATED ALWAYS AS IDENTITY NOT NULL,
        "tenant_id" integer NOT NULL,
        "extension_id" integer NOT NULL,
        "contact_uri" varchar(512) NOT NULL,
        "user_agent" varchar(255),
        "source_address" varchar(64),
        "transport" varchar(3),
        "registered_at" timestamptz NOT NULL,
        "expires_at" timestamptz NOT NULL,
        "unregistered_at" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_device" PRIMARY KEY ("id"),
        CONSTRAINT "uq_device__extension_id__contact_uri" UNIQUE ("extension_id", "contact_uri"),
        CONSTRAINT "ck_device__transport" CHECK ("transport" IN ('udp', 'tcp', 'tls', 'ws', 'wss')),
        CONSTRAINT "fk_device__extension" FOREIGN KEY ("extension_id", "tenant_id") REFERENCES "extension" ("id", "tenant_id") ON DELETE CASCADE
      )`);
    // The unique constraint (extension_id first) already serves the foreign key and per-extension reads.
    await q.query(`CREATE INDEX "ix_device__tenant_id" ON "device" ("tenant_id")`);
    // The expiry sweep looks only at live registrations.
    await q.query(`CREATE INDEX "ix_device__expires_at" ON "device" ("expires_at") WHERE "unregistered_at" IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "device"`);
  }
}
