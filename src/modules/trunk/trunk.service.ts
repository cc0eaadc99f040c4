import { createHash } from "node:crypto";
import { promises as dns } from "node:dns";
import { isIP } from "node:net";
import { parseId, requirePrincipal, requireRole } from "../../auth/access";
import { Role } from "../../auth/role";
import { badInput, conflict, forbidden, notFound, type FieldErrors } from "../../common/errors";
import type { SecretBox } from "../../common/secret-box";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { readRows } from "../../db/read";
import { SqlParams } from "../../db/sql";
import { transactional } from "../../db/transaction";
import { createdChanges, deletedChanges, isEmpty, recordAudit, REDACTED, updatedChanges, type AuditSnapshot } from "../audit/audit";
import { Transport } from "../device/device.entity";
import { CreateTrunkInput, TrunkRegistrationState, UpdateTrunkInput, type Trunk } from "./trunk.types";

export const TRUNK_COLUMNS = `t.id, t.tenant_id AS "tenantId", t.name, t.host, t.port, t.transport, t.inbound_addresses AS "inboundAddresses",
  t.username, t.realm, (t.secret_ciphertext IS NOT NULL) AS "hasSecret", t.register,
  CASE WHEN t.register THEN COALESCE(t.registration_state, 'unregistered') END AS "registrationState",
  t.max_channels AS "maxChannels", t.enabled, t.created_at AS "createdAt", t.updated_at AS "updatedAt"`;

const ORDER = `t.tenant_id NULLS FIRST, t.name, t.id`;
const SECRET_AAD = "trunk-secret";
const READERS = [Role.ADMIN, Role.TENANT_ADMIN, Role.VIEWER];
const WRITERS = [Role.ADMIN, Role.TENANT_ADMIN];
/** How long a create waits for `host` to resolve when no inbound addresses are given. */
const RESOLVE_TIMEOUT_MS = 3000;

export function trunkSnapshot(row: Trunk): AuditSnapshot {
  return {
    tenantId: row.tenantId === null ? null : String(row.tenantId),
    name: row.name,
    host: row.host,
    port: row.port,
    transport: row.transport.toUpperCase(),
    inboundAddresses: row.inboundAddresses.join(","),
    username: row.username,
    realm: row.realm,
    secret: row.hasSecret ? REDACTED : null,
    register: row.register,
    maxChannels: row.maxChannels,
    enabled: row.enabled,
  };
}

/** An IPv4/IPv6 address or a CIDR block, normalised as PostgreSQL's inet would print it. */
export function parseAddress(text: unknown): string | null {
  if (typeof text !== "string") return null;
  const [ip, bits, extra] = text.trim().split("/");
  if (extra !== undefined) return null;
  const family = isIP(ip);
  if (family === 0) return null;
  if (bits === undefined) return ip.toLowerCase();
  if (!/^[0-9]{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) return null;
  return `${ip.toLowerCase()}/${Number(bits)}`;
}

function checkAddresses(list: unknown[] | undefined | null, errors: FieldErrors): string[] | undefined {
  if (!Array.isArray(list)) return undefined;
  const parsed = list.map(parseAddress);
  const bad = list.filter((_, i) => parsed[i] === null);
  if (bad.length > 0) errors.inboundAddresses = [`Not an IP address or CIDR block: ${bad.slice(0, 3).map(String).join(", ")}.`];
  return [...new Set(parsed.filter((a): a is string => a !== null))];
}

/** The addresses a carrier host resolves to (the default of inboundAddresses). */
async function resolveHost(host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  const lookup = dns.lookup(host, { all: true }).then((r) => r.map((a) => a.address)).catch(() => [] as string[]);
  const timeout = new Promise<string[]>((resolve) => setTimeout(() => resolve([]), RESOLVE_TIMEOUT_MS).unref());
  return Promise.race([lookup, timeout]);
}

const md5 = (text: string) => createHash("md5").update(text, "utf8").digest("hex");

interface Stored {
  secretCiphertext: string | null;
}

/**
 * Trunks (contract §11). A shared trunk (no tenant) is ADMIN's alone; a tenant's own is its
 * TENANT_ADMIN's. The secret is write-only: sealed at rest, and the engine gets only the digest
 * HA1 = MD5(username:realm:secret) through its view, like extension secrets (realm: the host
 * unless given).
 */
export class TrunkService {
  constructor(private readonly secretBox: SecretBox) {}

  async get(ctx: RequestContext, rawId: string | number): Promise<Trunk> {
    const principal = requireRole(ctx, ...READERS);
    const id = parseId(rawId);
    const [row] = id === null ? [] : await readRows<Trunk>(ctx, `SELECT ${TRUNK_COLUMNS} FROM trunk t WHERE t.id = $1`, [id]);
    if (!row || (principal.role !== Role.ADMIN && row.tenantId !== null && row.tenantId !== principal.tenantId)) throw notFound("Trunk");
    return row;
  }

  /** ADMIN without a tenant: every trunk; with one, or a tenant's key: the shared trunks and the tenant's own. */
  async list(ctx: RequestContext, rawTenantId: string | number | null | undefined): Promise<Trunk[]> {
    const principal = requireRole(ctx, ...READERS);
    let tenantId: number | null = null;
    if (rawTenantId !== null && rawTenantId !== undefined) {
      tenantId = parseId(rawTenantId);
      if (tenantId === null || (principal.role !== Role.ADMIN && tenantId !== principal.tenantId)) throw notFound("Tenant");
    } else if (principal.role !== Role.ADMIN) {
      tenantId = principal.tenantId;
    }
    if (tenantId === null) return readRows<Trunk>(ctx, `SELECT ${TRUNK_COLUMNS} FROM trunk t ORDER BY ${ORDER}`);
    return readRows<Trunk>(ctx, `SELECT ${TRUNK_COLUMNS} FROM trunk t WHERE t.tenant_id IS NULL OR t.tenant_id = $1 ORDER BY ${ORDER}`, [tenantId]);
  }

  async create(ctx: RequestContext, input: CreateTrunkInput): Promise<Trunk> {
    const principal = requireRole(ctx, ...WRITERS);
    const errors: FieldErrors = {};
    const addresses = checkAddresses(input.inboundAddresses, errors);
    let tenantId: number | null;
    if (principal.role === Role.ADMIN) {
      tenantId = input.tenantId === null || input.tenantId === undefined ? null : parseId(input.tenantId);
      if (input.tenantId !== null && input.tenantId !== undefined && tenantId === null) throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
    } else {
      tenantId = principal.tenantId;
      if (input.tenantId !== null && input.tenantId !== undefined && parseId(input.tenantId) !== tenantId) {
        throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
      }
    }
    if (input.register && (!input.username || !input.secret)) {
      if (!input.username) errors.username = ["A registering trunk needs a username."];
      if (!input.secret) errors.secret = ["A registering trunk needs a secret."];
    }
    await assertValid(input, errors);
    const host = input.host.toLowerCase();
    const inbound = addresses ?? (await resolveHost(host));
    return transactional(ctx, async (tx) => {
      if (tenantId !== null) {
        const [tenant] = await tx.manager.query(`SELECT id FROM tenant WHERE id = $1 FOR SHARE`, [tenantId]);
        if (!tenant) throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
      }
      const secret = input.secret ?? null;
      const [row]: Trunk[] = await tx.manager.query(
        `INSERT INTO trunk AS t (tenant_id, name, host, port, transport, inbound_addresses, username, realm, secret_ciphertext, auth_ha1, register,
           max_channels, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING ${TRUNK_COLUMNS}`,
        [
          tenantId,
          input.name,
          host,
          input.port ?? 5060,
          input.transport ?? Transport.UDP,
          inbound,
          input.username ?? null,
          input.realm ?? null,
          secret === null ? null : this.secretBox.seal(secret, SECRET_AAD),
          secret === null || !input.username ? null : md5(`${input.username}:${input.realm ?? host}:${secret}`),
          input.register ?? false,
          input.maxChannels ?? null,
          input.enabled ?? true,
        ],
      );
      await recordAudit(tx, { tenantId, action: "trunk.created", entityType: "trunk", entityId: row.id, changes: createdChanges(trunkSnapshot(row)) });
      return row;
    });
  }

  async update(ctx: RequestContext, rawId: string | number, input: UpdateTrunkInput): Promise<Trunk> {
    requireRole(ctx, ...WRITERS);
    const errors: FieldErrors = {};
    const addresses = checkAddresses(input.inboundAddresses, errors);
    await assertValid(input, errors);
    return transactional(ctx, async (tx) => {
      const current = await this.lock(tx, rawId);
      const [stored]: Stored[] = await tx.manager.query(`SELECT secret_ciphertext AS "secretCiphertext" FROM trunk WHERE id = $1`, [current.id]);
      const p = new SqlParams();
      const sets: string[] = [];
      const set = (column: string, value: unknown) => sets.push(`${column} = ${p.add(value)}`);
      if (input.name !== undefined) set("name", input.name);
      if (input.host !== undefined) set("host", input.host.toLowerCase());
      if (input.port !== undefined) set("port", input.port);
      if (input.transport !== undefined) set("transport", input.transport);
      if (addresses !== undefined) set("inbound_addresses", addresses);
      if (input.username !== undefined) set("username", input.username);
      if (input.realm !== undefined) set("realm", input.realm);
      if (input.register !== undefined) set("register", input.register);
      if (input.maxChannels !== undefined) set("max_channels", input.maxChannels);
      if (input.enabled !== undefined) set("enabled", input.enabled);
      const username = input.username !== undefined ? input.username : current.username;
      const host = input.host !== undefined ? input.host.toLowerCase() : current.host;
      const realm = input.realm !== undefined ? input.realm : current.realm;
      let secret: string | null = null;
      if (input.secret !== undefined) secret = input.secret;
      else if (stored.secretCiphertext) secret = this.secretBox.open(stored.secretCiphertext, SECRET_AAD);
      const register = input.register ?? current.register;
      if (register && (!username || !secret)) {
        throw badInput({ ...(!username ? { username: ["A registering trunk needs a username."] } : {}), ...(!secret ? { secret: ["A registering trunk needs a secret."] } : {}) });
      }
      if (input.secret !== undefined) set("secret_ciphertext", secret === null ? null : this.secretBox.seal(secret, SECRET_AAD));
      // The digest names user, realm and secret: recomputed whenever one of them changes.
      set("auth_ha1", secret === null || !username ? null : md5(`${username}:${realm ?? host}:${secret}`));
      // A new registration starts unknown until the engine reports on it.
      if (input.register === false || input.secret !== undefined || input.username !== undefined || input.host !== undefined) set("registration_state", null);
      const [[row]]: [Trunk[]] = await tx.manager.query(
        `UPDATE trunk AS t SET ${sets.join(", ")}, updated_at = now() WHERE t.id = ${p.add(current.id)} RETURNING ${TRUNK_COLUMNS}`,
        p.values,
      );
      const changes = updatedChanges(trunkSnapshot(current), trunkSnapshot(row), input.secret !== undefined && input.secret !== null ? ["secret"] : []);
      if (!isEmpty(changes)) await recordAudit(tx, { tenantId: row.tenantId, action: "trunk.updated", entityType: "trunk", entityId: row.id, changes });
      return row;
    });
  }

  /** Refused (CONFLICT naming them) while an outbound route uses it. */
  async delete(ctx: RequestContext, rawId: string | number): Promise<number> {
    requireRole(ctx, ...WRITERS);
    return transactional(ctx, async (tx) => {
      const current = await this.lock(tx, rawId);
      const routes: Array<{ name: string }> = await tx.manager.query(
        `SELECT DISTINCT r.name FROM outbound_route_trunk rt JOIN outbound_route r ON r.id = rt.route_id WHERE rt.trunk_id = $1 ORDER BY r.name`,
        [current.id],
      );
      if (routes.length > 0) {
        const names = routes.map((r) => r.name);
        throw conflict(`The trunk is used by outbound ${names.length === 1 ? "route" : "routes"} ${names.join(", ")}; remove it from ${names.length === 1 ? "that route" : "them"} first.`, {
          routes: names,
        });
      }
      await tx.manager.query(`DELETE FROM trunk WHERE id = $1`, [current.id]);
      await recordAudit(tx, { tenantId: current.tenantId, action: "trunk.deleted", entityType: "trunk", entityId: current.id, changes: deletedChanges(trunkSnapshot(current)) });
      return current.id;
    });
  }

  /** Trunks by id for Route.trunks: many routes at once, in the order asked. */
  async byIds(ctx: RequestContext, ids: readonly number[]): Promise<Trunk[]> {
    return readRows<Trunk>(ctx, `SELECT ${TRUNK_COLUMNS} FROM trunk t WHERE t.id = ANY($1::int[])`, [ids]);
  }

  /**
   * The registration state the engine reports (ingestion): true when it changed, false when it was
   * already so, null when there is no registering trunk with this id that the key may report on (a
   * tenant-bound INGEST key: its own tenant's trunks only).
   */
  async recordRegistration(tx: RequestContext, trunkId: number, state: TrunkRegistrationState): Promise<boolean | null> {
    const principal = requireRole(tx, Role.INGEST, Role.ADMIN);
    const [trunk]: Array<{ tenantId: number | null; state: string | null }> = await tx.manager.query(
      `SELECT tenant_id AS "tenantId", registration_state AS state FROM trunk WHERE id = $1 AND register FOR UPDATE`,
      [trunkId],
    );
    if (!trunk || (principal.tenantId !== null && principal.tenantId !== undefined && trunk.tenantId !== principal.tenantId)) return null;
    if (trunk.state === state) return false;
    await tx.manager.query(`UPDATE trunk SET registration_state = $2, registration_changed_at = now() WHERE id = $1`, [trunkId, state]);
    return true;
  }

  /** Loads and locks a trunk the caller may change: a tenant key may not change a shared trunk (and sees others' as missing). */
  private async lock(tx: RequestContext, rawId: string | number): Promise<Trunk> {
    const principal = requirePrincipal(tx);
    const id = parseId(rawId);
    const [row]: Trunk[] = id === null ? [] : await tx.manager.query(`SELECT ${TRUNK_COLUMNS} FROM trunk t WHERE t.id = $1 FOR UPDATE`, [id]);
    if (!row || (principal.role !== Role.ADMIN && row.tenantId !== null && row.tenantId !== principal.tenantId)) throw notFound("Trunk");
    if (principal.role !== Role.ADMIN && row.tenantId === null) throw forbidden("A shared trunk is managed by the platform's ADMIN only.");
    return row;
  }
}
