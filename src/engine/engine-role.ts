import type { ClientBase } from "pg";

/** The view a SIP engine authenticates phones with (contract §7). */
export const ENGINE_VIEW = "sip_subscriber";

/**
 * Every relation a SIP engine's database role may read, and nothing else (contracts §7 and §11):
 * views made for it, each listed here once. A concern that gives the engine a new view adds it here
 * (its migration creates it); `npm run engine:role` grants exactly this list.
 */
export const ENGINE_VIEWS: readonly string[] = [
  ENGINE_VIEW,
  // the change signal it polls, and the table versions Kamailio modules check (src/engine/engine-sync.ts)
  "engine_config",
  "version",
];

export interface EngineRoleOptions {
  name: string;
  password: string;
  /** The schema that holds the product's tables and the view; the connection's current schema when absent. */
  schema?: string;
}

export class EngineRoleError extends Error {}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Creates the engine's LOGIN role, or sets the password of the one that exists, so that it may
 * SELECT the views of ENGINE_VIEWS and nothing else of the product:
 * - USAGE on the product's schema and SELECT on those views only; a view reads the tables with its
 *   owner's rights, so no table needs a grant;
 * - EXECUTE on the schema's functions is revoked from PUBLIC (so from this role), since a function
 *   is a way to read what it reads;
 * - its search_path names the schema, so the engine's unqualified `sip_subscriber` resolves there;
 * - an existing role with any other power (superuser, CREATEROLE, CREATEDB, BYPASSRLS, REPLICATION,
 *   a member of another role, owner of objects, the role running this) is refused, not demoted.
 * One transaction: a refusal changes nothing.
 */
export async function ensureEngineRole(client: ClientBase, options: EngineRoleOptions): Promise<{ created: boolean; schema: string }> {
  const { name, password } = options;
  if (!IDENTIFIER.test(name)) throw new EngineRoleError("--name must be a lower-case SQL identifier (a-z, 0-9, _; at most 63 characters)");
  if (password.length < 12) throw new EngineRoleError("--password must be at least 12 characters long");
  if (options.schema !== undefined && !IDENTIFIER.test(options.schema)) throw new EngineRoleError("the schema must be a lower-case SQL identifier");
  const role = client.escapeIdentifier(name);
  await client.query("BEGIN");
  try {
    const [{ schema, me }] = (await client.query(`SELECT coalesce($1::text, current_schema()) AS schema, current_user AS me`, [options.schema ?? null])).rows;
    if (schema === null) throw new EngineRoleError("the connection has no current schema; set DATABASE_SCHEMA");
    const views = (await client.query(`SELECT viewname FROM pg_views WHERE schemaname = $1 AND viewname = ANY($2::text[])`, [schema, ENGINE_VIEWS])).rows;
    const missing = ENGINE_VIEWS.filter((v) => !views.some((row: { viewname: string }) => row.viewname === v));
    if (missing.length) throw new EngineRoleError(`there is no view ${schema}.${missing[0]}: apply the migrations first (npm run migrate)`);
    if (name === me) throw new EngineRoleError("--name is the role this command runs as; choose a role of its own for the engine");
    const existing = (
      await client.query(
        `SELECT r.oid, r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls OR r.rolreplication AS powerful,
                EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) AS member,
                EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid) OR EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspowner = r.oid)
                  OR EXISTS (SELECT 1 FROM pg_proc p WHERE p.proowner = r.oid) AS owner
           FROM pg_roles r WHERE r.rolname = $1`,
        [name],
      )
    ).rows[0];
    if (existing && (existing.powerful || existing.member || existing.owner)) {
      throw new EngineRoleError(`the role ${name} exists with more rights than an engine role may have (superuser, a role member or an owner); choose another name`);
    }
    const attributes = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD ${client.escapeLiteral(password)}`;
    await client.query(`${existing ? "ALTER" : "CREATE"} ROLE ${role} WITH ${attributes}`);
    await client.query(`GRANT USAGE ON SCHEMA ${client.escapeIdentifier(schema)} TO ${role}`);
    for (const view of ENGINE_VIEWS) await client.query(`GRANT SELECT ON ${client.escapeIdentifier(schema)}.${client.escapeIdentifier(view)} TO ${role}`);
    await client.query(`REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA ${client.escapeIdentifier(schema)} FROM PUBLIC`);
    const [{ db }] = (await client.query(`SELECT current_database() AS db`)).rows;
    await client.query(`ALTER ROLE ${role} IN DATABASE ${client.escapeIdentifier(db)} SET search_path TO ${client.escapeIdentifier(schema)}`);
    await client.query("COMMIT");
    return { created: !existing, schema };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}
