import type { MigrationInterface, QueryRunner } from "typeorm";
import { destinationCheck, destinationColumnsSql } from "../src/modules/call-destination/call-destination";
import { dropEngineModuleVersion, dropEngineWatchTrigger, engineModuleVersion, engineWatchTrigger } from "../src/engine/engine-sync";

const CALL_CLASSES = `'emergency', 'national', 'mobile', 'international', 'premium'`;
const WATCHED = ["phone_number", "trunk", "outbound_route", "outbound_route_trunk"];

/**
 * Contract §11: phone numbers, trunks, outbound routes, the extension's call classes and caller ID,
 * the tenant's default caller ID and outbound cap, and the views the engine reads them through.
 * Views for Kamailio expose varchar and int4 only, integer ids (research §3.9 traps 2 and 3).
 */
export class Trunks1765210000000 implements MigrationInterface {
  name = "Trunks1765210000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "phone_number" (
        "id" integer GENERATED ALWAYS AS IDENTITY CONSTRAINT "pk_phone_number" PRIMARY KEY,
        "tenant_id" integer NOT NULL CONSTRAINT "fk_phone_number__tenant_id" REFERENCES "tenant" ("id") ON DELETE CASCADE,
        "number" varchar(16) NOT NULL,
        "label" varchar(255),
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "uq_phone_number__number" UNIQUE ("number"),
        CONSTRAINT "uq_phone_number__tenant_id__number" UNIQUE ("tenant_id", "number"),
        CONSTRAINT "ck_phone_number__number" CHECK ("number" ~ '^\\+[1-9][0-9]{6,14}$')
      )`);
    await q.query(`ALTER TABLE "phone_number" ${destinationColumnsSql("destination")}`);
    await q.query(`ALTER TABLE "phone_number" ADD CONSTRAINT "ck_phone_number__destination" CHECK (${destinationCheck("destination")})`);
    await q.query(`CREATE INDEX "ix_phone_number__tenant_id__destination" ON "phone_number" ("tenant_id", "destination_type", "destination_target")`);

    await q.query(`
      CREATE TABLE "trunk" (
        "id" integer GENERATED ALWAYS AS IDENTITY CONSTRAINT "pk_trunk" PRIMARY KEY,
        "tenant_id" integer CONSTRAINT "fk_trunk__tenant_id" REFERENCES "tenant" ("id") ON DELETE CASCADE,
        "name" varchar(255) NOT NULL,
        "host" varchar(253) NOT NULL,
        "port" integer NOT NULL DEFAULT 5060,
        "transport" varchar(3) NOT NULL DEFAULT 'udp',
        "inbound_addresses" varchar(64)[] NOT NULL DEFAULT '{}',
        "username" varchar(64),
        "realm" varchar(253),
        "secret_ciphertext" text,
        "auth_ha1" char(32),
        "register" boolean NOT NULL DEFAULT false,
        "registration_state" varchar(16),
        "registration_changed_at" timestamptz,
        "max_channels" integer,
        "enabled" boolean NOT NULL DEFAULT true,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "ck_trunk__port" CHECK ("port" BETWEEN 1 AND 65535),
        CONSTRAINT "ck_trunk__transport" CHECK ("transport" IN ('udp', 'tcp', 'tls')),
        CONSTRAINT "ck_trunk__max_channels" CHECK ("max_channels" IS NULL OR "max_channels" >= 1),
        CONSTRAINT "ck_trunk__registration_state" CHECK ("registration_state" IN ('registered', 'failed', 'unregistered'))
      )`);
    await q.query(`CREATE INDEX "ix_trunk__tenant_id" ON "trunk" ("tenant_id")`);

    await q.query(`
      CREATE TABLE "outbound_route" (
        "id" integer GENERATED ALWAYS AS IDENTITY CONSTRAINT "pk_outbound_route" PRIMARY KEY,
        "tenant_id" integer NOT NULL CONSTRAINT "fk_outbound_route__tenant_id" REFERENCES "tenant" ("id") ON DELETE CASCADE,
        "name" varchar(255) NOT NULL,
        "priority" integer NOT NULL,
        "match" varchar(255) NOT NULL,
        "transform" varchar(64) NOT NULL,
        "call_class" varchar(16) NOT NULL,
        "enabled" boolean NOT NULL DEFAULT true,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "ck_outbound_route__call_class" CHECK ("call_class" IN (${CALL_CLASSES}))
      )`);
    await q.query(`CREATE INDEX "ix_outbound_route__tenant_id__priority" ON "outbound_route" ("tenant_id", "priority", "id")`);
    await q.query(`
      CREATE TABLE "outbound_route_trunk" (
        "route_id" integer NOT NULL CONSTRAINT "fk_outbound_route_trunk__route_id" REFERENCES "outbound_route" ("id") ON DELETE CASCADE,
        "position" integer NOT NULL,
        "trunk_id" integer NOT NULL CONSTRAINT "fk_outbound_route_trunk__trunk_id" REFERENCES "trunk" ("id"),
        CONSTRAINT "pk_outbound_route_trunk" PRIMARY KEY ("route_id", "position"),
        CONSTRAINT "uq_outbound_route_trunk__route_id__trunk_id" UNIQUE ("route_id", "trunk_id")
      )`);
    await q.query(`CREATE INDEX "ix_outbound_route_trunk__trunk_id" ON "outbound_route_trunk" ("trunk_id")`);

    // Caller IDs name one of the tenant's numbers: the phone-number service checks it on every write
    // and refuses to release a number in use (a foreign key here would tie the entities together).
    await q.query(`ALTER TABLE "extension"
      ADD COLUMN "allowed_call_classes" varchar(16) array NOT NULL DEFAULT '{emergency,national,mobile}',
      ADD COLUMN "caller_id_number" varchar(16)`);
    await q.query(`ALTER TABLE "tenant"
      ADD COLUMN "default_caller_id_number" varchar(16),
      ADD COLUMN "max_outbound_calls" integer NOT NULL DEFAULT 10,
      ADD CONSTRAINT "ck_tenant__max_outbound_calls" CHECK ("max_outbound_calls" >= 0)`);

    for (const table of WATCHED) await q.query(engineWatchTrigger(table));

    // ---- what the engine reads (src/engine/engine-role.ts lists them)
    // Trusted carrier sources: one row per address or CIDR of an enabled trunk (inbound classification).
    await q.query(`
      CREATE VIEW "engine_trunk_address" AS
      SELECT t."id"::int4 AS "trunk_id", COALESCE(t."tenant_id", 0)::int4 AS "tenant_id", a."address"::varchar AS "address"
        FROM "trunk" t CROSS JOIN LATERAL unnest(t."inbound_addresses") AS a("address")
       WHERE t."enabled"`);
    // A DID and where it goes, with the tenant's SIP domain (inbound routing, per call).
    await q.query(`
      CREATE VIEW "engine_number" AS
      SELECT n."number"::varchar AS "number", n."tenant_id"::int4 AS "tenant_id", t."sip_domain"::varchar AS "domain",
             n."destination_type"::varchar AS "destination_type", COALESCE(n."destination_target", '')::varchar AS "destination_target",
             n."id"::int4 AS "phone_number_id"
        FROM "phone_number" n JOIN "tenant" t ON t."id" = n."tenant_id"`);
    // Outbound candidates: per active extension, each enabled route of its tenant with its trunks in order,
    // the extension's classes and caller ID; the engine filters by the dialled digits and takes the first route.
    await q.query(`
      CREATE VIEW "engine_outbound_route" AS
      SELECT tn."sip_domain"::varchar AS "domain", e."extension_number"::varchar AS "extension",
             e."tenant_id"::int4 AS "tenant_id", tn."max_outbound_calls"::int4 AS "max_outbound_calls",
             COALESCE(e."caller_id_number", tn."default_caller_id_number", '')::varchar AS "caller_id",
             (r."call_class" = 'emergency' OR r."call_class" = ANY(e."allowed_call_classes"))::int4 AS "allowed",
             r."id"::int4 AS "route_id", r."priority"::int4 AS "priority", r."match"::varchar AS "match",
             r."transform"::varchar AS "transform", r."call_class"::varchar AS "call_class",
             rt."position"::int4 AS "position", tr."id"::int4 AS "trunk_id",
             ('sip:' || tr."host" || ':' || tr."port" || CASE WHEN tr."transport" = 'udp' THEN '' ELSE ';transport=' || tr."transport" END)::varchar AS "trunk_uri",
             COALESCE(tr."max_channels", 0)::int4 AS "max_channels",
             COALESCE(tr."username", '')::varchar AS "auth_username", COALESCE(tr."auth_ha1", '')::varchar AS "auth_ha1",
             COALESCE(tr."realm", tr."host")::varchar AS "auth_realm"
        FROM "extension" e
        JOIN "tenant" tn ON tn."id" = e."tenant_id"
        JOIN "outbound_route" r ON r."tenant_id" = e."tenant_id" AND r."enabled"
        JOIN "outbound_route_trunk" rt ON rt."route_id" = r."id"
        JOIN "trunk" tr ON tr."id" = rt."trunk_id" AND tr."enabled" AND (tr."tenant_id" IS NULL OR tr."tenant_id" = e."tenant_id")
       WHERE e."status" = 'active'`);
    // uac remote registrations (table version 5): one per enabled registering trunk; l_uuid = trunk id.
    await q.query(`
      CREATE VIEW "engine_uacreg" AS
      SELECT t."id"::int4 AS "id", t."id"::varchar AS "l_uuid", ('trunk' || t."id")::varchar AS "l_username",
             t."host"::varchar AS "l_domain", COALESCE(t."username", '')::varchar AS "r_username", t."host"::varchar AS "r_domain",
             COALESCE(t."realm", t."host")::varchar AS "realm", COALESCE(t."username", '')::varchar AS "auth_username",
             ''::varchar AS "auth_password", COALESCE(t."auth_ha1", '')::varchar AS "auth_ha1",
             ('sip:' || t."host" || ':' || t."port" || CASE WHEN t."transport" = 'udp' THEN '' ELSE ';transport=' || t."transport" END)::varchar AS "auth_proxy",
             300::int4 AS "expires", 0::int4 AS "flags", 0::int4 AS "reg_delay", ''::varchar AS "contact_addr", ''::varchar AS "socket"
        FROM "trunk" t
       WHERE t."register" AND t."enabled" AND t."username" IS NOT NULL AND t."auth_ha1" IS NOT NULL`);
    await q.query(engineModuleVersion({ engine_uacreg: 5 }));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(dropEngineModuleVersion(["engine_uacreg"]));
    for (const view of ["engine_uacreg", "engine_outbound_route", "engine_number", "engine_trunk_address"]) await q.query(`DROP VIEW "${view}"`);
    for (const table of WATCHED) await q.query(dropEngineWatchTrigger(table));
    await q.query(`ALTER TABLE "tenant" DROP CONSTRAINT "ck_tenant__max_outbound_calls", DROP COLUMN "default_caller_id_number", DROP COLUMN "max_outbound_calls"`);
    await q.query(`ALTER TABLE "extension" DROP COLUMN "caller_id_number", DROP COLUMN "allowed_call_classes"`);
    await q.query(`DROP TABLE "outbound_route_trunk"`);
    await q.query(`DROP TABLE "outbound_route"`);
    await q.query(`DROP TABLE "trunk"`);
    await q.query(`DROP TABLE "phone_number"`);
  }
}
