import { parseId, readScope, requirePrincipal, requireRole } from "../../auth/access";
import { Role } from "../../auth/role";
import { badInput, conflict, notFound, pgConstraint, pgErrorCode, PG_FOREIGN_KEY_VIOLATION, PG_UNIQUE_VIOLATION } from "../../common/errors";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { readRows } from "../../db/read";
import { likeContains, SqlParams } from "../../db/sql";
import { transactional } from "../../db/transaction";
import { ConnectionPage, decodeCursor, encodeCursor, pageSize } from "../../graphql/connection";
import { createdChanges, deletedChanges, isEmpty, recordAudit, updatedChanges, type AuditSnapshot } from "../audit/audit";
import { destinationAuditValue, HANGUP, readDestination, registerDestinationHolder, validateDestination } from "../call-destination/call-destination";
import type { PhoneNumber } from "./phone-number.types";
import { CreatePhoneNumberInput, UpdatePhoneNumberInput } from "./phone-number.types";

const COLUMNS = `n.id, n.tenant_id AS "tenantId", n.number, n.label, n.destination_type AS "destinationType",
  n.destination_target AS "destinationTarget", n.created_at AS "createdAt", n.updated_at AS "updatedAt"`;

type Raw = Omit<PhoneNumber, "destination"> & { destinationType: string; destinationTarget: string | null };

const toRow = (raw: Raw): PhoneNumber => {
  const { destinationType: _t, destinationTarget: _g, ...rest } = raw;
  return { ...rest, destination: readDestination(raw, "destination") ?? { ...HANGUP } };
};

/** Phone numbers are destination holders: deleting what one points at follows contract §11. */
registerDestinationHolder({ table: "phone_number", column: "destination", entityType: "phone_number", field: "destination", label: `'phone number ' || h.number` });

export function phoneNumberSnapshot(row: PhoneNumber): AuditSnapshot {
  return { tenantId: String(row.tenantId), number: row.number, label: row.label, destination: destinationAuditValue(row.destination) };
}

const READERS = [Role.ADMIN, Role.TENANT_ADMIN, Role.VIEWER];
const TAKEN = "The number has already been taken.";

/**
 * Phone numbers (contract §11): ADMIN assigns and releases them; the owning tenant's TENANT_ADMIN
 * (or ADMIN) changes label and destination. Another tenant's number answers as not found.
 */
export class PhoneNumberService {
  async get(ctx: RequestContext, rawId: string | number): Promise<PhoneNumber> {
    const principal = requireRole(ctx, ...READERS);
    const id = parseId(rawId);
    const [row] = id === null ? [] : await readRows<Raw>(ctx, `SELECT ${COLUMNS} FROM phone_number n WHERE n.id = $1`, [id]);
    if (!row || (principal.role !== Role.ADMIN && principal.tenantId !== row.tenantId)) throw notFound("Phone number");
    return toRow(row);
  }

  /** `Tenant.phoneNumbers`: ordered by number, keyset on it. */
  async listForTenant(ctx: RequestContext, tenantId: number, args: { first?: number | null; after?: string | null; search?: string | null }): Promise<ConnectionPage<PhoneNumber>> {
    readScope(ctx, tenantId);
    const limit = pageSize(args.first);
    const after = args.after ? (decodeCursor(args.after, ["string"])[0] as string) : null;
    const filter = (p: SqlParams) => {
      const where = [`n.tenant_id = ${p.add(tenantId)}`];
      const search = args.search?.trim();
      if (search?.includes("\u0000")) throw badInput({ search: ["The search may not contain NUL characters."] });
      if (search) {
        const term = p.add(likeContains(search.replace(/^\+/, "")));
        where.push(`(n.number ILIKE ${term} OR n.label ILIKE ${term})`);
      }
      return where;
    };
    const p = new SqlParams();
    const where = filter(p);
    if (after !== null) where.push(`n.number > ${p.add(after)}`);
    const rows = await readRows<Raw>(ctx, `SELECT ${COLUMNS} FROM phone_number n WHERE ${where.join(" AND ")} ORDER BY n.number LIMIT ${p.add(limit + 1)}`, p.values);
    return new ConnectionPage(rows.map(toRow), limit, (row) => encodeCursor([row.number]), async () => {
      const cp = new SqlParams();
      const [{ count }] = await readRows<{ count: number }>(ctx, `SELECT count(*)::int AS count FROM phone_number n WHERE ${filter(cp).join(" AND ")}`, cp.values);
      return count;
    });
  }

  async create(ctx: RequestContext, input: CreatePhoneNumberInput): Promise<PhoneNumber> {
    requireRole(ctx, Role.ADMIN);
    await assertValid(input);
    const tenantId = parseId(input.tenantId);
    if (tenantId === null) throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
    return transactional(ctx, async (tx) => {
      const [tenant] = await tx.manager.query(`SELECT id FROM tenant WHERE id = $1 FOR SHARE`, [tenantId]);
      if (!tenant) throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
      const destination = input.destination ? await validateDestination(tx, tenantId, input.destination, "destination") : HANGUP;
      const [raw]: Raw[] = await tx.manager
        .query(
          `INSERT INTO phone_number AS n (tenant_id, number, label, destination_type, destination_target) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
          [tenantId, input.number, input.label ?? null, destination.type, destination.target],
        )
        .catch(translate);
      const row = toRow(raw);
      await recordAudit(tx, { tenantId, action: "phone_number.created", entityType: "phone_number", entityId: row.id, changes: createdChanges(phoneNumberSnapshot(row)) });
      return row;
    });
  }

  async update(ctx: RequestContext, rawId: string | number, input: UpdatePhoneNumberInput): Promise<PhoneNumber> {
    requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    await assertValid(input);
    return transactional(ctx, async (tx) => {
      const current = await this.lock(tx, rawId);
      const p = new SqlParams();
      const sets: string[] = [];
      if (input.label !== undefined) sets.push(`label = ${p.add(input.label)}`);
      if (input.destination !== undefined) {
        const destination = input.destination === null ? HANGUP : await validateDestination(tx, current.tenantId, input.destination, "destination");
        sets.push(`destination_type = ${p.add(destination.type)}`, `destination_target = ${p.add(destination.target)}`);
      }
      if (sets.length === 0) return current;
      const [[raw]]: [Raw[]] = await tx.manager.query(
        `UPDATE phone_number AS n SET ${sets.join(", ")}, updated_at = now() WHERE n.id = ${p.add(current.id)} RETURNING ${COLUMNS}`,
        p.values,
      );
      const row = toRow(raw);
      const changes = updatedChanges(phoneNumberSnapshot(current), phoneNumberSnapshot(row));
      if (!isEmpty(changes)) await recordAudit(tx, { tenantId: row.tenantId, action: "phone_number.updated", entityType: "phone_number", entityId: row.id, changes });
      return row;
    });
  }

  /** Releases a number (ADMIN). Refused while it is a caller ID: the calls of those extensions would have none. */
  async delete(ctx: RequestContext, rawId: string | number): Promise<number> {
    requireRole(ctx, Role.ADMIN);
    return transactional(ctx, async (tx) => {
      const current = await this.lock(tx, rawId);
      const users: Array<{ name: string }> = await tx.manager.query(
        `SELECT 'extension ' || extension_number AS name FROM extension WHERE tenant_id = $1 AND caller_id_number = $2
         UNION ALL SELECT 'the tenant default' FROM tenant WHERE id = $1 AND default_caller_id_number = $2 ORDER BY 1`,
        [current.tenantId, current.number],
      );
      if (users.length > 0) {
        const names = users.map((u) => u.name);
        throw conflict(`The number ${current.number} is the caller ID of ${names.join(", ")}; change ${names.length === 1 ? "it" : "them"} first.`, { references: names });
      }
      await tx.manager.query(`DELETE FROM phone_number WHERE id = $1`, [current.id]);
      await recordAudit(tx, { tenantId: current.tenantId, action: "phone_number.deleted", entityType: "phone_number", entityId: current.id, changes: deletedChanges(phoneNumberSnapshot(current)) });
      return current.id;
    });
  }

  private async lock(tx: RequestContext, rawId: string | number): Promise<PhoneNumber> {
    const principal = requirePrincipal(tx);
    const id = parseId(rawId);
    const [raw]: Raw[] = id === null ? [] : await tx.manager.query(`SELECT ${COLUMNS} FROM phone_number n WHERE n.id = $1 FOR UPDATE`, [id]);
    if (!raw || (principal.role !== Role.ADMIN && principal.tenantId !== raw.tenantId)) throw notFound("Phone number");
    return toRow(raw);
  }
}

function translate(error: unknown): never {
  const code = pgErrorCode(error);
  if (code === PG_UNIQUE_VIOLATION && pgConstraint(error) === "uq_phone_number__number") throw badInput({ number: [TAKEN] });
  if (code === PG_FOREIGN_KEY_VIOLATION) throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
  throw error;
}
