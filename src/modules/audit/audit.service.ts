import { parseId, readScope, requireRole } from "../../auth/access";
import { Role } from "../../auth/role";
import { badInput, type FieldErrors } from "../../common/errors";
import type { Logger } from "../../common/logger";
import { Periodic } from "../../common/periodic";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { readRows } from "../../db/read";
import { SqlParams } from "../../db/sql";
import { ConnectionPage, decodeCursor, encodeCursor, pageSize } from "../../graphql/connection";
import type { DataSource } from "typeorm";
import type { AuditEntry } from "./audit-entry.type";
import { AuditFilter, type AuditLogArgs } from "./audit.inputs";
import { assignOwn } from "../../common/json";

const ENTRY_ID = /^[1-9][0-9]{0,18}$/;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Rows one pruning transaction deletes: short transactions, and each batch is a whole chunk of the oldest entries. */
export const PRUNE_BATCH = 5_000;

interface AuditRow {
  id: string;
  tenantId: number | null;
  occurredAt: Date;
  action: string;
  entityType: string;
  entityId: string;
  apiKeyId: number | null;
  actorName: string | null;
  actorRole: Role;
  requestId: string | null;
  transport: string;
  changes: unknown;
}

const COLUMNS = `a.id::text AS id, a.tenant_id AS "tenantId", a.occurred_at AS "occurredAt", a.action, a.entity_type AS "entityType",
  a.entity_id AS "entityId", a.api_key_id AS "apiKeyId", a.actor_name AS "actorName", a.actor_role AS "actorRole",
  a.request_id AS "requestId", a.transport, a.changes`;

function toEntry(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    tenantId: row.tenantId === null ? null : String(row.tenantId),
    occurredAt: row.occurredAt,
    action: row.action,
    entityType: row.entityType,
    entityId: row.entityId,
    actor: { apiKeyId: row.apiKeyId === null ? null : String(row.apiKeyId), name: row.actorName, role: row.actorRole },
    requestId: row.requestId,
    transport: row.transport,
    changes: row.changes,
  };
}

/**
 * Reads of the audit trail. Entries are written only by recordAudit (audit.ts), inside the
 * transaction of each change; nothing here changes or deletes one, except retention pruning.
 */
export class AuditService {
  /** `auditLog`: newest first (by entry id, which follows insertion order), keyset paged; ADMIN, or a TENANT_ADMIN for its own tenant. */
  async list(ctx: RequestContext, args: AuditLogArgs): Promise<ConnectionPage<AuditEntry>> {
    requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    const scope = readScope(ctx, args.tenantId);
    const limit = pageSize(args.first);
    const after = args.after ? this.decodeAfter(args.after) : null;
    const conditions = await this.conditions(args.filter);
    const where = (p: SqlParams) => {
      const out: string[] = [];
      if (scope !== null) out.push(`a.tenant_id = ${p.add(scope)}`);
      for (const [sql, value] of conditions) out.push(`${sql} ${p.add(value)}`);
      return out;
    };
    const p = new SqlParams();
    const w = where(p);
    if (after !== null) w.push(`a.id < ${p.add(after)}::bigint`);
    const rows = await readRows<AuditRow>(
      ctx,
      `SELECT ${COLUMNS} FROM audit_entry a ${w.length ? `WHERE ${w.join(" AND ")}` : ""} ORDER BY a.id DESC LIMIT ${p.add(limit + 1)}`,
      p.values,
    );
    return new ConnectionPage(rows.map(toEntry), limit, (entry) => encodeCursor([entry.id]), async () => {
      const cp = new SqlParams();
      const cw = where(cp);
      const [{ count }] = await readRows<{ count: number }>(ctx,
        `SELECT count(*)::int AS count FROM audit_entry a ${cw.length ? `WHERE ${cw.join(" AND ")}` : ""}`,
        cp.values,
      );
      return count;
    });
  }

  private decodeAfter(after: string): string {
    const [id] = decodeCursor(after, ["string"]) as [string];
    if (!ENTRY_ID.test(id) || BigInt(id) > 9_223_372_036_854_775_807n) throw badInput({ after: ["The cursor is invalid."] });
    return id;
  }

  /** The filter as SQL conditions (each "<expression> <operator>" followed by its value), judged first. */
  private async conditions(raw: AuditFilter | null | undefined): Promise<Array<[string, unknown]>> {
    const filter = assignOwn(new AuditFilter(), raw);
    const extra: FieldErrors = {};
    const apiKeyId = filter.apiKeyId === undefined || filter.apiKeyId === null ? null : parseId(filter.apiKeyId);
    if (apiKeyId === null && filter.apiKeyId !== undefined && filter.apiKeyId !== null) extra.apiKeyId = ["The API key id must be a positive integer id."];
    if (filter.from instanceof Date && filter.to instanceof Date && filter.from.getTime() > filter.to.getTime()) {
      extra.to = ["The to date must not be before the from date."];
    }
    await assertValid(filter, extra);
    const out: Array<[string, unknown]> = [];
    if (filter.entityType) out.push([`a.entity_type =`, filter.entityType]);
    if (filter.entityId) out.push([`a.entity_id =`, filter.entityId]);
    if (filter.action) out.push([`a.action =`, filter.action]);
    if (apiKeyId !== null) out.push([`a.api_key_id =`, apiKeyId]);
    if (filter.from) out.push([`a.occurred_at >=`, filter.from]);
    if (filter.to) out.push([`a.occurred_at <`, filter.to]);
    return out;
  }
}

/**
 * AUDIT_RETENTION_DAYS: deletes entries older than that many days, in batches of the oldest
 * PRUNE_BATCH rows, each batch its own short transaction. Only this function may delete: it sets the
 * transaction-local `pbx.audit_prune_before` that the table's append-only trigger checks.
 */
export async function pruneAuditTrail(dataSource: DataSource, retentionDays: number, now: Date = new Date()): Promise<number> {
  if (retentionDays <= 0) return 0;
  const cutoff = new Date(now.getTime() - retentionDays * DAY_MS).toISOString();
  let total = 0;
  for (;;) {
    const deleted = await dataSource.transaction(async (manager) => {
      await manager.query(`SELECT set_config('pbx.audit_prune_before', $1, true)`, [cutoff]);
      const [, count]: [unknown, number] = await manager.query(
        `DELETE FROM audit_entry WHERE id IN (SELECT id FROM audit_entry WHERE occurred_at < $1 ORDER BY occurred_at LIMIT ${PRUNE_BATCH})`,
        [cutoff],
      );
      return count;
    });
    total += deleted;
    if (deleted < PRUNE_BATCH) return total;
  }
}

/** AUDIT_RETENTION_DAYS > 0: prunes at start and then hourly while the server runs; null when every entry is kept. */
export function auditRetention(dataSource: DataSource, retentionDays: number, log: Logger): Periodic | null {
  if (retentionDays <= 0) return null;
  return new Periodic("audit retention", DAY_MS / 24, async () => {
    const deleted = await pruneAuditTrail(dataSource, retentionDays);
    if (deleted) log.info({ deleted, retentionDays }, "audit entries past retention deleted");
  }, log);
}
