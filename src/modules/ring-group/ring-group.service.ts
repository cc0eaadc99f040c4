import DataLoader from "dataloader";
import { parseId, readScope, requirePrincipal, requireRole, writeScope } from "../../auth/access";
import { Role } from "../../auth/role";
import { badInput, notFound, pgConstraint, pgErrorCode, PG_FOREIGN_KEY_VIOLATION, PG_UNIQUE_VIOLATION } from "../../common/errors";
import { groupBy } from "../../common/group-by";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { readRows } from "../../db/read";
import { SqlParams } from "../../db/sql";
import { transactional } from "../../db/transaction";
import { createdChanges, deletedChanges, isEmpty, recordAudit, updatedChanges, type AuditRecord, type AuditSnapshot } from "../audit/audit";
import {
  destinationAuditValue,
  HANGUP,
  readDestination,
  registerDestinationChecker,
  registerDestinationHolder,
  releaseReferences,
  renameReferences,
  typesNaming,
  validateDestination,
} from "../call-destination/call-destination";
import { CallDestinationType, type CallDestination } from "../call-destination/call-destination.type";
import { DIAL_PLAN_TAKEN, translateDialPlan } from "../dial-plan/dial-plan";
import { CreateRingGroupInput, DEFAULT_RING_GROUP_SECONDS, RingGroupMemberSettings, UpdateRingGroupInput } from "./ring-group.inputs";
import { RingGroupStrategy } from "./ring-group.types";

export interface RingGroupRow {
  id: number;
  tenantId: number;
  name: string;
  number: string;
  strategy: RingGroupStrategy;
  ringSeconds: number;
  fallbackType: CallDestinationType;
  fallbackTarget: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface RingGroupMemberRow {
  id: number;
  tenantId: number;
  ringGroupId: number;
  extensionId: number;
  position: number;
  createdAt: Date;
}

export const RING_GROUP_COLUMNS = `g.id, g.tenant_id AS "tenantId", g.name, g.number, g.strategy, g.ring_seconds AS "ringSeconds",
  g.fallback_type AS "fallbackType", g.fallback_target AS "fallbackTarget", g.created_at AS "createdAt", g.updated_at AS "updatedAt"`;
export const RING_GROUP_MEMBER_COLUMNS = `m.id, m.tenant_id AS "tenantId", m.ring_group_id AS "ringGroupId", m.extension_id AS "extensionId",
  m.position, m.created_at AS "createdAt"`;
const GROUP_ORDER = `g.tenant_id, g.name, g.id`;
/** The order a SEQUENTIAL group rings its members in (and the order they are listed in). */
export const MEMBER_ORDER = `m.position, m.id`;

const READERS = [Role.ADMIN, Role.TENANT_ADMIN, Role.VIEWER];
const WRITERS = [Role.ADMIN, Role.TENANT_ADMIN];

export const fallbackOf = (row: RingGroupRow): CallDestination => readDestination(row as unknown as Record<string, unknown>, "fallback") ?? { ...HANGUP };

export function ringGroupSnapshot(row: RingGroupRow): AuditSnapshot {
  return {
    name: row.name,
    number: row.number,
    strategy: row.strategy.toUpperCase(),
    ringSeconds: row.ringSeconds,
    fallback: destinationAuditValue(fallbackOf(row)),
  };
}

export function ringGroupMemberSnapshot(row: RingGroupMemberRow): AuditSnapshot {
  return { ringGroupId: String(row.ringGroupId), extensionId: String(row.extensionId), position: row.position };
}

export function memberRemoved(row: RingGroupMemberRow): AuditRecord {
  return { tenantId: row.tenantId, action: "ring_group_member.removed", entityType: "ring_group_member", entityId: row.id, changes: deletedChanges(ringGroupMemberSnapshot(row)) };
}

function translateWrite(error: unknown): never {
  const code = pgErrorCode(error);
  if (code === DIAL_PLAN_TAKEN) translateDialPlan("number")(error);
  if (code === PG_UNIQUE_VIOLATION && pgConstraint(error) === "uq_ring_group__tenant_id__number") throw badInput({ number: ["The ring group number has already been taken."] });
  if (code === PG_FOREIGN_KEY_VIOLATION && pgConstraint(error) === "fk_ring_group__tenant_id") throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
  throw error;
}

// A ring group is a destination (RING_GROUP: its number), and its fallback is one.
registerDestinationChecker(CallDestinationType.RING_GROUP, async (em, tenantId, target) => {
  const rows: unknown[] = await em.query(`SELECT 1 FROM ring_group WHERE tenant_id = $1 AND number = $2 FOR SHARE`, [tenantId, target]);
  return rows.length > 0 ? null : `There is no ring group ${target} in this tenant.`;
});
registerDestinationHolder({ table: "ring_group", column: "fallback", entityType: "ring_group", field: "fallback", label: `'ring group ' || h.name` });

/** Per-request loaders of this module (the shared Loaders stay untouched): one query per batch. */
const loaderCache = new WeakMap<object, Map<string, DataLoader<number, unknown>>>();
function loader<V>(ctx: RequestContext, name: string, batch: (ids: readonly number[]) => Promise<V[]>): DataLoader<number, V> {
  let mine = loaderCache.get(ctx.loaders);
  if (!mine) loaderCache.set(ctx.loaders, (mine = new Map()));
  let found = mine.get(name) as DataLoader<number, V> | undefined;
  if (!found) mine.set(name, (found = new DataLoader<number, V>(batch) as DataLoader<number, V>) as DataLoader<number, unknown>);
  return found;
}

/**
 * Ring groups and their members (contract §12). As for queues: the role is checked before anything
 * is looked up, another tenant's group, member or extension answers NOT_FOUND like a missing one,
 * members are extensions of the group's tenant, and every change is audited in its transaction.
 */
export class RingGroupService {
  async get(ctx: RequestContext, rawId: string | number): Promise<RingGroupRow> {
    const principal = requireRole(ctx, ...READERS);
    const id = parseId(rawId);
    const row = id === null ? null : await this.byId(ctx).load(id);
    if (!row || (principal.role !== Role.ADMIN && principal.tenantId !== row.tenantId)) throw notFound("Ring group");
    return row;
  }

  async list(ctx: RequestContext, tenantId: string | number | null | undefined): Promise<RingGroupRow[]> {
    requireRole(ctx, ...READERS);
    const scope = readScope(ctx, tenantId);
    const p = new SqlParams();
    const where = scope === null ? "" : `WHERE g.tenant_id = ${p.add(scope)}`;
    return readRows(ctx, `SELECT ${RING_GROUP_COLUMNS} FROM ring_group g ${where} ORDER BY ${GROUP_ORDER}`, p.values);
  }

  async create(ctx: RequestContext, input: CreateRingGroupInput): Promise<RingGroupRow> {
    requireRole(ctx, ...WRITERS);
    await assertValid(input);
    const tenantId = writeScope(ctx, input.tenantId);
    return transactional(ctx, async (tx) => {
      const fallback = await validateDestination(tx, tenantId, input.fallback ?? HANGUP, "fallback");
      const [row]: RingGroupRow[] = await tx.manager
        .query(
          `INSERT INTO ring_group AS g (tenant_id, name, number, strategy, ring_seconds, fallback_type, fallback_target)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${RING_GROUP_COLUMNS}`,
          [tenantId, input.name, input.number, input.strategy ?? RingGroupStrategy.SIMULTANEOUS, input.ringSeconds ?? DEFAULT_RING_GROUP_SECONDS, fallback.type, fallback.target],
        )
        .catch(translateWrite);
      await recordAudit(tx, { tenantId, action: "ring_group.created", entityType: "ring_group", entityId: row.id, changes: createdChanges(ringGroupSnapshot(row)) });
      return row;
    });
  }

  async update(ctx: RequestContext, rawId: string | number, input: UpdateRingGroupInput): Promise<RingGroupRow> {
    requireRole(ctx, ...WRITERS);
    await assertValid(input);
    return transactional(ctx, async (tx) => {
      const current = await this.lockGroup(tx, rawId, "UPDATE");
      const p = new SqlParams();
      const sets: string[] = [];
      if (input.name !== undefined) sets.push(`name = ${p.add(input.name)}`);
      if (input.number !== undefined) sets.push(`number = ${p.add(input.number)}`);
      if (input.strategy !== undefined) sets.push(`strategy = ${p.add(input.strategy)}`);
      if (input.ringSeconds !== undefined) sets.push(`ring_seconds = ${p.add(input.ringSeconds)}`);
      if (input.fallback !== undefined) {
        const fallback = await validateDestination(tx, current.tenantId, input.fallback ?? HANGUP, "fallback");
        sets.push(`fallback_type = ${p.add(fallback.type)}`, `fallback_target = ${p.add(fallback.target)}`);
      }
      if (sets.length === 0) return current;
      const [rows]: [RingGroupRow[]] = await tx.manager
        .query(`UPDATE ring_group AS g SET ${sets.join(", ")}, updated_at = now() WHERE g.id = ${p.add(current.id)} RETURNING ${RING_GROUP_COLUMNS}`, p.values)
        .catch(translateWrite);
      const updated = rows[0];
      // Destinations that named the old number follow it.
      const followed = await renameReferences(tx, current.tenantId, typesNaming("ring_group"), current.number, updated.number);
      const changes = updatedChanges(ringGroupSnapshot(current), ringGroupSnapshot(updated));
      await recordAudit(tx, [
        ...(isEmpty(changes) ? [] : [{ tenantId: current.tenantId, action: "ring_group.updated", entityType: "ring_group" as const, entityId: current.id, changes }]),
        ...followed,
      ]);
      return updated;
    });
  }

  /**
   * Deletes the group with its memberships. Refused with CONFLICT while a destination names it
   * (a forward, a number, another group's fallback), unless `force` turns those into HANGUP.
   */
  async delete(ctx: RequestContext, rawId: string | number, force: boolean): Promise<number> {
    requireRole(ctx, ...WRITERS);
    return transactional(ctx, async (tx) => {
      const current = await this.lockGroup(tx, rawId, "UPDATE");
      const released = await releaseReferences(tx, current.tenantId, typesNaming("ring_group"), current.number, force, `The ring group ${current.name}`);
      const [members]: [RingGroupMemberRow[]] = await tx.manager.query(`DELETE FROM ring_group_member AS m WHERE m.ring_group_id = $1 RETURNING ${RING_GROUP_MEMBER_COLUMNS}`, [current.id]);
      await tx.manager.query(`DELETE FROM ring_group WHERE id = $1`, [current.id]);
      await recordAudit(tx, [
        ...released,
        ...members.map(memberRemoved),
        { tenantId: current.tenantId, action: "ring_group.deleted", entityType: "ring_group", entityId: current.id, changes: deletedChanges(ringGroupSnapshot(current)) },
      ]);
      return current.id;
    });
  }

  /**
   * Adds an extension of the group's tenant at `position` (default: after the last member).
   * Locking the group and the extension (shared) orders this against deleting either.
   */
  async addMember(ctx: RequestContext, rawGroupId: string | number, rawExtensionId: string | number, position: number | null | undefined): Promise<RingGroupMemberRow> {
    requireRole(ctx, ...WRITERS);
    await assertValid(Object.assign(new RingGroupMemberSettings(), { position }));
    return transactional(ctx, async (tx) => {
      const group = await this.lockGroup(tx, rawGroupId, "UPDATE");
      const extensionId = parseId(rawExtensionId);
      const [extension]: Array<{ id: number }> =
        extensionId === null ? [] : await tx.manager.query(`SELECT id FROM extension WHERE id = $1 AND tenant_id = $2 FOR SHARE`, [extensionId, group.tenantId]);
      if (!extension) throw notFound("Extension", { extensionId: ["The selected extension does not exist."] });
      const [row]: RingGroupMemberRow[] = await tx.manager.query(
        `INSERT INTO ring_group_member AS m (tenant_id, ring_group_id, extension_id, position)
         VALUES ($1, $2, $3, COALESCE($4, (SELECT COALESCE(max(position), 0) + 1 FROM ring_group_member WHERE ring_group_id = $2)))
         ON CONFLICT ON CONSTRAINT uq_ring_group_member__ring_group_id__extension_id DO NOTHING
         RETURNING ${RING_GROUP_MEMBER_COLUMNS}`,
        [group.tenantId, group.id, extension.id, position ?? null],
      );
      if (!row) throw badInput({ extensionId: ["The extension is already a member of this ring group."] });
      await tx.manager.query(`UPDATE ring_group SET updated_at = now() WHERE id = $1`, [group.id]);
      await recordAudit(tx, { tenantId: row.tenantId, action: "ring_group_member.added", entityType: "ring_group_member", entityId: row.id, changes: createdChanges(ringGroupMemberSnapshot(row)) });
      return row;
    });
  }

  async removeMember(ctx: RequestContext, rawId: string | number): Promise<number> {
    requireRole(ctx, ...WRITERS);
    return transactional(ctx, async (tx) => {
      const principal = requirePrincipal(tx);
      const id = parseId(rawId);
      const [row]: RingGroupMemberRow[] =
        id === null ? [] : await tx.manager.query(`SELECT ${RING_GROUP_MEMBER_COLUMNS} FROM ring_group_member m WHERE m.id = $1 FOR UPDATE`, [id]);
      if (!row || (principal.role !== Role.ADMIN && principal.tenantId !== row.tenantId)) throw notFound("Ring group member");
      await tx.manager.query(`DELETE FROM ring_group_member WHERE id = $1`, [row.id]);
      await tx.manager.query(`UPDATE ring_group SET updated_at = now() WHERE id = $1`, [row.ringGroupId]);
      await recordAudit(tx, memberRemoved(row));
      return row.id;
    });
  }

  /** The ring groups an extension is a member of (for deleting it): locked, named. */
  async membershipsOf(tx: RequestContext, extensionId: number): Promise<Array<{ id: number; name: string; number: string }>> {
    return tx.manager.query(
      `SELECT g.id, g.name, g.number FROM ring_group_member m JOIN ring_group g ON g.id = m.ring_group_id
        WHERE m.extension_id = $1 ORDER BY g.name, g.id FOR UPDATE OF m`,
      [extensionId],
    );
  }

  /** Removes an extension from every group (its delete with force), returning the audit records. */
  async leaveAll(tx: RequestContext, extensionId: number): Promise<AuditRecord[]> {
    const [rows]: [RingGroupMemberRow[]] = await tx.manager.query(`DELETE FROM ring_group_member AS m WHERE m.extension_id = $1 RETURNING ${RING_GROUP_MEMBER_COLUMNS}`, [extensionId]);
    return rows.map(memberRemoved);
  }

  /** `Tenant.ringGroups` for many tenants: one query per batch. */
  forTenant(ctx: RequestContext, tenantId: number): Promise<RingGroupRow[]> {
    return loader<RingGroupRow[]>(ctx, "byTenant", async (ids) => {
      const rows: RingGroupRow[] = await readRows(ctx, `SELECT ${RING_GROUP_COLUMNS} FROM ring_group g WHERE g.tenant_id = ANY($1::int[]) ORDER BY ${GROUP_ORDER}`, [ids]);
      return groupBy(ids, rows, (r) => r.tenantId);
    }).load(tenantId);
  }

  /** `RingGroup.members` for many groups: one query per batch. */
  membersOf(ctx: RequestContext, groupId: number): Promise<RingGroupMemberRow[]> {
    return loader<RingGroupMemberRow[]>(ctx, "members", async (ids) => {
      const rows: RingGroupMemberRow[] = await readRows(ctx, `SELECT ${RING_GROUP_MEMBER_COLUMNS} FROM ring_group_member m WHERE m.ring_group_id = ANY($1::int[]) ORDER BY ${MEMBER_ORDER}`, [ids]);
      return groupBy(ids, rows, (r) => r.ringGroupId);
    }).load(groupId);
  }

  private byId(ctx: RequestContext): DataLoader<number, RingGroupRow | null> {
    return loader<RingGroupRow | null>(ctx, "byId", async (ids) => {
      const rows: RingGroupRow[] = await readRows(ctx, `SELECT ${RING_GROUP_COLUMNS} FROM ring_group g WHERE g.id = ANY($1::int[])`, [ids]);
      const map = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => map.get(id) ?? null);
    });
  }

  private async lockGroup(tx: RequestContext, rawId: string | number, mode: "UPDATE" | "SHARE"): Promise<RingGroupRow> {
    const principal = requirePrincipal(tx);
    const id = parseId(rawId);
    const [row]: RingGroupRow[] = id === null ? [] : await tx.manager.query(`SELECT ${RING_GROUP_COLUMNS} FROM ring_group g WHERE g.id = $1 FOR ${mode}`, [id]);
    if (!row || (principal.role !== Role.ADMIN && principal.tenantId !== row.tenantId)) throw notFound("Ring group");
    return row;
  }
}
