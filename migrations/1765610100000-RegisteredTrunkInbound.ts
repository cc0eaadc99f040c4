import type { MigrationInterface, QueryRunner } from "typeorm";

const UACREG = `
      SELECT t."id"::int4 AS "id", t."id"::varchar AS "l_uuid", ('trunk' || t."id")::varchar AS "l_username",
             t."host"::varchar AS "l_domain", COALESCE(t."username", '')::varchar AS "r_username", t."host"::varchar AS "r_domain",
             COALESCE(t."realm", t."host")::varchar AS "realm", COALESCE(t."username", '')::varchar AS "auth_username",
             ''::varchar AS "auth_password", COALESCE(t."auth_ha1", '')::varchar AS "auth_ha1",
             ('sip:' || t."host" || ':' || t."port" || CASE WHEN t."transport" = 'udp' THEN '' ELSE ';transport=' || t."transport" END)::varchar AS "auth_proxy",
             300::int4 AS "expires", 0::int4 AS "flags", 0::int4 AS "reg_delay", ''::varchar AS "contact_addr", ''::varchar AS "socket"`;
const FROM = `
        FROM "trunk" t
       WHERE t."register" AND t."enabled" AND t."username" IS NOT NULL AND t."auth_ha1" IS NOT NULL`;

/**
 * A carrier the engine registers with is recognised by that registration on its inbound calls
 * (contract §11, deploy/kamailio/routes/trunks.cfg TRUNK_INBOUND): the engine needs the trunk's
 * tenant (0: shared) to know which numbers it may reach. engine_uacreg gains it as a last column
 * (uac reads its columns by name; the role's grant stays with the view).
 */
export class RegisteredTrunkInbound1765610100000 implements MigrationInterface {
  name = "RegisteredTrunkInbound1765610100000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE OR REPLACE VIEW "engine_uacreg" AS ${UACREG}, COALESCE(t."tenant_id", 0)::int4 AS "tenant_id" ${FROM}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP VIEW "engine_uacreg"`);
    await q.query(`CREATE VIEW "engine_uacreg" AS ${UACREG} ${FROM}`);
  }
}
