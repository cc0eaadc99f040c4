import type { MigrationInterface, QueryRunner } from "typeorm";
import { dropEngineModuleVersion, dropEngineWatchTrigger, engineModuleVersion, engineWatchTrigger } from "../src/engine/engine-sync";

/**
 * What the shipped Kamailio reads to execute contract §12 (deploy/kamailio/routes/features.cfg),
 * per call through the engine's role, so a committed change applies to the next call with no
 * reload. Views for Kamailio expose varchar and int4 only; "no destination" is 'none', never NULL.
 * - kam_dial_plan: who owns a dialled number of a tenant (extension, queue, ring_group);
 * - kam_call_handling: an active extension's DND, ring time, forwards and voicemail flag;
 * - kam_ring_group: a group's strategy, ring time, fallback, and its members in ringing order,
 *   comma-separated, members on do-not-disturb or disabled left out (they are skipped).
 * The tables also bump the engine's change signal, for caches a later concern may keep.
 *
 * Busy lamps (deploy/kamailio/modules/presence.cfg) keep their state in memory, but Kamailio's pua
 * module insists on a database table: `pua` is an always-empty view (version 7 in `version`) whose
 * writes are discarded by rules, so pua's periodic sync (which also expires its memory records)
 * runs and stores nothing. The engine role may write to this one view (ENGINE_SINK_VIEWS).
 */
const WATCHED = ["call_handling", "ring_group", "ring_group_member"];

export class CallHandlingEngine1765300100000 implements MigrationInterface {
  name = "CallHandlingEngine1765300100000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE VIEW "kam_dial_plan" AS
      SELECT t."sip_domain"::varchar AS "domain", d."number"::varchar AS "number", d."owner_type"::varchar AS "owner_type"
        FROM "dial_plan_number" d JOIN "tenant" t ON t."id" = d."tenant_id"`);
    await q.query(`
      CREATE VIEW "kam_call_handling" AS
      SELECT t."sip_domain"::varchar AS "domain",
             e."extension_number"::varchar AS "number",
             coalesce(ch."do_not_disturb", false)::int4 AS "dnd",
             coalesce(ch."ring_seconds", 25)::int4 AS "ring_seconds",
             coalesce(ch."forward_always_type", 'none')::varchar AS "forward_always_type",
             coalesce(ch."forward_always_target", 'none')::varchar AS "forward_always_target",
             coalesce(ch."forward_busy_type", 'none')::varchar AS "forward_busy_type",
             coalesce(ch."forward_busy_target", 'none')::varchar AS "forward_busy_target",
             coalesce(ch."forward_no_answer_type", 'none')::varchar AS "forward_no_answer_type",
             coalesce(ch."forward_no_answer_target", 'none')::varchar AS "forward_no_answer_target",
             e."voicemail_enabled"::int4 AS "voicemail"
        FROM "extension" e
        JOIN "tenant" t ON t."id" = e."tenant_id"
        LEFT JOIN "call_handling" ch ON ch."id" = e."id"
       WHERE e."status" = 'active'`);
    await q.query(`
      CREATE VIEW "kam_ring_group" AS
      SELECT t."sip_domain"::varchar AS "domain",
             g."number"::varchar AS "number",
             g."strategy"::varchar AS "strategy",
             g."ring_seconds"::int4 AS "ring_seconds",
             g."fallback_type"::varchar AS "fallback_type",
             coalesce(g."fallback_target", 'none')::varchar AS "fallback_target",
             coalesce((SELECT string_agg(e."extension_number", ',' ORDER BY m."position", m."id")
                         FROM "ring_group_member" m
                         JOIN "extension" e ON e."id" = m."extension_id"
                         LEFT JOIN "call_handling" ch ON ch."id" = e."id"
                        WHERE m."ring_group_id" = g."id" AND e."status" = 'active' AND NOT coalesce(ch."do_not_disturb", false)), '')::varchar AS "members"
        FROM "ring_group" g JOIN "tenant" t ON t."id" = g."tenant_id"`);
    for (const table of WATCHED) await q.query(engineWatchTrigger(table));
    await q.query(`
      CREATE VIEW "pua" AS
      SELECT NULL::int4 AS "id", ''::varchar AS "pres_uri", ''::varchar AS "pres_id", 0::int4 AS "event", 0::int4 AS "expires",
             0::int4 AS "desired_expires", 0::int4 AS "flag", ''::varchar AS "etag", ''::varchar AS "tuple_id", ''::varchar AS "watcher_uri",
             ''::varchar AS "call_id", ''::varchar AS "to_tag", ''::varchar AS "from_tag", 0::int4 AS "cseq", ''::varchar AS "record_route",
             ''::varchar AS "contact", ''::varchar AS "remote_contact", 0::int4 AS "version", ''::varchar AS "extra_headers"
       WHERE false`);
    for (const verb of ["INSERT", "UPDATE", "DELETE"]) await q.query(`CREATE RULE "pua_${verb.toLowerCase()}_discarded" AS ON ${verb} TO "pua" DO INSTEAD NOTHING`);
    await q.query(engineModuleVersion({ pua: 7 }));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(dropEngineModuleVersion(["pua"]));
    await q.query(`DROP VIEW "pua"`);
    for (const table of WATCHED) await q.query(dropEngineWatchTrigger(table));
    await q.query(`DROP VIEW "kam_ring_group"`);
    await q.query(`DROP VIEW "kam_call_handling"`);
    await q.query(`DROP VIEW "kam_dial_plan"`);
  }
}
