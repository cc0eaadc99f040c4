import type { MigrationInterface, QueryRunner } from "typeorm";

/** The extension-level rows of engine_outbound_route, as migration 1765210000000 created them. */
const EXTENSION_ROWS = `
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
       WHERE e."status" = 'active'`;

/**
 * EXTERNAL destinations (contracts §11 and §12) routed by the engine (deploy/kamailio/routes/trunks.cfg,
 * route TRUNK_FORWARD). An extension's forward goes out with that extension's classes and caller ID: the
 * view's rows for that extension. A destination no extension owns (a phone number's, a ring group's
 * fallback, a queue's timeout) goes out as the tenant: rows with extension '' (no extension number is
 * empty), the tenant's default caller ID, and the classes an extension gets by default (EMERGENCY,
 * NATIONAL, MOBILE), so that a carrier's caller reaching such a destination cannot be sent to an
 * international or premium number. Same columns, so the engine role's grant and queries are unchanged.
 */
export class ExternalDestinations1765610000000 implements MigrationInterface {
  name = "ExternalDestinations1765610000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE VIEW "engine_outbound_route" AS ${EXTENSION_ROWS}
      UNION ALL
      SELECT tn."sip_domain"::varchar, ''::varchar, tn."id"::int4, tn."max_outbound_calls"::int4,
             COALESCE(tn."default_caller_id_number", '')::varchar,
             (r."call_class" IN ('emergency', 'national', 'mobile'))::int4,
             r."id"::int4, r."priority"::int4, r."match"::varchar, r."transform"::varchar, r."call_class"::varchar,
             rt."position"::int4, tr."id"::int4,
             ('sip:' || tr."host" || ':' || tr."port" || CASE WHEN tr."transport" = 'udp' THEN '' ELSE ';transport=' || tr."transport" END)::varchar,
             COALESCE(tr."max_channels", 0)::int4,
             COALESCE(tr."username", '')::varchar, COALESCE(tr."auth_ha1", '')::varchar, COALESCE(tr."realm", tr."host")::varchar
        FROM "tenant" tn
        JOIN "outbound_route" r ON r."tenant_id" = tn."id" AND r."enabled"
        JOIN "outbound_route_trunk" rt ON rt."route_id" = r."id"
        JOIN "trunk" tr ON tr."id" = rt."trunk_id" AND tr."enabled" AND (tr."tenant_id" IS NULL OR tr."tenant_id" = tn."id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    // CREATE OR REPLACE cannot drop the second branch's rows only by changing the query; drop and recreate
    await q.query(`DROP VIEW "engine_outbound_route"`);
    await q.query(`CREATE VIEW "engine_outbound_route" AS ${EXTENSION_ROWS}`);
  }
}
