import { parseId, readScope, requirePrincipal, requireRole, writeScope } from "../../auth/access";
import { Role } from "../../auth/role";
import { notFound, type FieldErrors } from "../../common/errors";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { readRows } from "../../db/read";
import { SqlParams } from "../../db/sql";
import { transactional } from "../../db/transaction";
import { createdChanges, deletedChanges, isEmpty, recordAudit, updatedChanges, type AuditSnapshot } from "../audit/audit";
import { CreateOutboundRouteInput, UpdateOutboundRouteInput, type OutboundRoute } from "./outbound-route.types";
import { checkMatch, checkTransform } from "./route-pattern";

const COLUMNS = `r.id, r.tenant_id AS "tenantId", r.name, r.priority, r.match, r.transform, r.call_class AS "callClass", r.enabled,
  COALESCE((SELECT array_agg(rt.trunk_id ORDER BY rt.position) FROM outbound_route_trunk rt WHERE rt.route_id = r.id), '{}') AS "trunkIds",
  r.created_at AS "createdAt", r.updated_at AS "updatedAt"`;
const ORDER = `r.priority, r.id`;

export function routeSnapshot(row: OutboundRoute): AuditSnapshot {
  return {
    name: row.name,
    priority: row.priority,
    match: row.match,
    transform: row.transform,
    callClass: row.callClass.toUpperCase(),
    trunkIds: row.trunkIds.join(","),
    enabled: row.enabled,
  };
}

/** match and transform judged together (a transform may only name groups the match has). */
function patternErrors(match: string | undefined, transform: string | undefined, errors: FieldErrors): void {
  if (typeof match !== "string" || typeof transform !== "string") return;
  const m = checkMatch(match);
  if ("error" in m) {
    errors.match = [m.error];
    return;
  }
  const t = checkTransform(transform, m.groups);
  if (t) errors.transform = [t];
}

/**
 * Outbound routes (contract §11): a tenant's own (TENANT_ADMIN or ADMIN), through the shared trunks
 * and the tenant's own only.
 */
export class OutboundRouteService {
  async get(ctx: RequestContext, rawId: string | number): Promise<OutboundRoute> {
    const principal = requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN, Role.VIEWER);
    const id = parseId(rawId);
    const [row] = id === null ? [] : await readRows<OutboundRoute>(ctx, `SELECT ${COLUMNS} FROM outbound_route r WHERE r.id = $1`, [id]);
    if (!row || (principal.role !== Role.ADMIN && principal.tenantId !== row.tenantId)) throw notFound("Outbound route");
    return row;
  }

  async listForTenant(ctx: RequestContext, tenantId: number): Promise<OutboundRoute[]> {
    readScope(ctx, tenantId);
    return readRows<OutboundRoute>(ctx, `SELECT ${COLUMNS} FROM outbound_route r WHERE r.tenant_id = $1 ORDER BY ${ORDER}`, [tenantId]);
  }

  async create(ctx: RequestContext, input: CreateOutboundRouteInput): Promise<OutboundRoute> {
    requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    const errors: FieldErrors = {};
    patternErrors(input.match, input.transform, errors);
    await assertValid(input, errors);
    const tenantId = writeScope(ctx, input.tenantId);
    return transactional(ctx, async (tx) => {
      const [tenant] = await tx.manager.query(`SELECT id FROM tenant WHERE id = $1 FOR SHARE`, [tenantId]);
      if (!tenant) throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
      const trunkIds = await this.usableTrunks(tx, tenantId, input.trunkIds);
      const [{ id }]: Array<{ id: number }> = await tx.manager.query(
        `INSERT INTO outbound_route (tenant_id, name, priority, match, transform, call_class, enabled) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
        [tenantId, input.name, input.priority, input.match, input.transform, input.callClass, input.enabled ?? true],
      );
      await this.setTrunks(tx, id, trunkIds);
      const row = await this.read(tx, id);
      await recordAudit(tx, { tenantId, action: "outbound_route.created", entityType: "outbound_route", entityId: id, changes: createdChanges(routeSnapshot(row)) });
      return row;
    });
  }

  async update(ctx: RequestContext, rawId: string | number, input: UpdateOutboundRouteInput): Promise<OutboundRoute> {
    requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    await assertValid(input);
    return transactional(ctx, async (tx) => {
      const current = await this.lock(tx, rawId);
      const errors: FieldErrors = {};
      patternErrors(input.match ?? current.match, input.transform ?? current.transform, errors);
      if (Object.keys(errors).length) await assertValid(input, errors);
      const trunkIds = input.trunkIds === undefined ? undefined : await this.usableTrunks(tx, current.tenantId, input.trunkIds);
      const p = new SqlParams();
      const sets: string[] = [];
      const set = (column: string, value: unknown) => sets.push(`${column} = ${p.add(value)}`);
      if (input.name !== undefined) set("name", input.name);
      if (input.priority !== undefined) set("priority", input.priority);
      if (input.match !== undefined) set("match", input.match);
      if (input.transform !== undefined) set("transform", input.transform);
      if (input.callClass !== undefined) set("call_class", input.callClass);
      if (input.enabled !== undefined) set("enabled", input.enabled);
      if (sets.length === 0 && trunkIds === undefined) return current;
      await tx.manager.query(`UPDATE outbound_route SET ${[...sets, "updated_at = now()"].join(", ")} WHERE id = ${p.add(current.id)}`, p.values);
      if (trunkIds !== undefined) await this.setTrunks(tx, current.id, trunkIds);
      const row = await this.read(tx, current.id);
      const changes = updatedChanges(routeSnapshot(current), routeSnapshot(row));
      if (!isEmpty(changes)) await recordAudit(tx, { tenantId: row.tenantId, action: "outbound_route.updated", entityType: "outbound_route", entityId: row.id, changes });
      return row;
    });
  }

  async delete(ctx: RequestContext, rawId: string | number): Promise<number> {
    requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    return transactional(ctx, async (tx) => {
      const current = await this.lock(tx, rawId);
      await tx.manager.query(`DELETE FROM outbound_route WHERE id = $1`, [current.id]);
      await recordAudit(tx, { tenantId: current.tenantId, action: "outbound_route.deleted", entityType: "outbound_route", entityId: current.id, changes: deletedChanges(routeSnapshot(current)) });
      return current.id;
    });
  }

  /** The trunk ids, checked: each a shared trunk or the tenant's own (locked, so a concurrent delete waits and then sees the route). */
  private async usableTrunks(tx: RequestContext, tenantId: number, raw: readonly string[]): Promise<number[]> {
    const ids = raw.map((r) => parseId(r));
    const refuse = (message: string) => notFound("Trunk", { trunkIds: [message] });
    if (ids.some((id) => id === null)) throw refuse("A selected trunk does not exist.");
    if (new Set(ids).size !== ids.length) throw refuse("A trunk may be listed once.");
    const rows: Array<{ id: number }> = await tx.manager.query(
      `SELECT id FROM trunk WHERE id = ANY($1::int[]) AND (tenant_id IS NULL OR tenant_id = $2) FOR SHARE`,
      [ids, tenantId],
    );
    if (rows.length !== ids.length) throw refuse("A selected trunk does not exist.");
    return ids as number[];
  }

  private async setTrunks(tx: RequestContext, routeId: number, trunkIds: number[]): Promise<void> {
    await tx.manager.query(`DELETE FROM outbound_route_trunk WHERE route_id = $1`, [routeId]);
    await tx.manager.query(
      `INSERT INTO outbound_route_trunk (route_id, position, trunk_id) SELECT $1, t.ord::int, t.id FROM unnest($2::int[]) WITH ORDINALITY AS t(id, ord)`,
      [routeId, trunkIds],
    );
  }

  private async read(tx: RequestContext, id: number): Promise<OutboundRoute> {
    const [row]: OutboundRoute[] = await tx.manager.query(`SELECT ${COLUMNS} FROM outbound_route r WHERE r.id = $1`, [id]);
    return row;
  }

  private async lock(tx: RequestContext, rawId: string | number): Promise<OutboundRoute> {
    const principal = requirePrincipal(tx);
    const id = parseId(rawId);
    const [row]: OutboundRoute[] = id === null ? [] : await tx.manager.query(`SELECT ${COLUMNS} FROM outbound_route r WHERE r.id = $1 FOR UPDATE`, [id]);
    if (!row || (principal.role !== Role.ADMIN && principal.tenantId !== row.tenantId)) throw notFound("Outbound route");
    return row;
  }
}
