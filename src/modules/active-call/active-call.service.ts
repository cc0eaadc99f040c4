import { readRows } from "../../db/read";
import { readScope } from "../../auth/access";
import { notFound } from "../../common/errors";
import { groupBy } from "../../common/group-by";
import type { RequestContext } from "../../context/request-context";
import { queueOfCall } from "../cdr/cdr.service";
import type { ExtensionRow } from "../extension/extension.service";
import type { QueueRow } from "../queue/queue.service";
import type { ActiveCall } from "./active-call.entity";

export type ActiveCallRow = Omit<ActiveCall, "extensionRow" | "queueRow" | "updatedAt">;

export const ACTIVE_CALL_COLUMNS = `a.id, a.tenant_id AS "tenantId", a.extension_id AS "extensionId", a.call_id AS "callId",
  a.linked_id AS "linkedId", a.direction, a.caller_number AS "callerNumber", a.caller_name AS "callerName",
  a.callee_number AS "calleeNumber", a.state, a.queue_id AS "queueId", a.started_at AS "startedAt",
  a.answered_at AS "answeredAt", a.trunk_id AS "trunkId", a.phone_number AS "phoneNumber", a.external_number AS "externalNumber"`;

/** Oldest first: the call that has waited or talked longest leads, as on a wallboard. */
const ORDER = `ORDER BY a.started_at, a.id`;

/**
 * Call legs in progress. They are written by the telephony event path; here they are read. Their
 * number is bounded by the calls a tenant can carry at once, so they are plain lists, not connections.
 */
export class ActiveCallService {
  /** Root `activeCalls(tenantId)`: one tenant, or every tenant for an ADMIN who names none. */
  async list(ctx: RequestContext, tenantId: string | null | undefined): Promise<ActiveCallRow[]> {
    const scope = readScope(ctx, tenantId);
    if (scope === null) return readRows(ctx, `SELECT ${ACTIVE_CALL_COLUMNS} FROM active_call a ${ORDER}`);
    // The tenant row comes along (calls or not), so a missing tenant is told apart in the same statement.
    const rows: Array<Omit<ActiveCallRow, "id"> & { id: string | null }> = await readRows(ctx,
      `SELECT ${ACTIVE_CALL_COLUMNS} FROM tenant t LEFT JOIN active_call a ON a.tenant_id = t.id WHERE t.id = $1 ${ORDER}`,
      [scope],
    );
    if (rows.length === 0) throw notFound("Tenant");
    return rows.filter((row): row is ActiveCallRow => row.id !== null);
  }

  /** `Tenant.activeCalls` for every tenant of a batch, in one query. */
  async listForTenants(ctx: RequestContext, tenantIds: readonly number[]): Promise<ActiveCallRow[][]> {
    const rows: ActiveCallRow[] = await readRows(ctx,
      `SELECT ${ACTIVE_CALL_COLUMNS} FROM active_call a WHERE a.tenant_id = ANY($1::int[]) ${ORDER}`,
      [tenantIds],
    );
    return groupBy(tenantIds, rows, (row) => row.tenantId);
  }

  /** `Extension.activeCalls` for every extension of a batch, in one query. */
  async listForExtensions(ctx: RequestContext, extensionIds: readonly number[]): Promise<ActiveCallRow[][]> {
    const rows: ActiveCallRow[] = await readRows(ctx,
      `SELECT ${ACTIVE_CALL_COLUMNS} FROM active_call a WHERE a.extension_id = ANY($1::int[]) ${ORDER}`,
      [extensionIds],
    );
    return groupBy(extensionIds, rows, (row) => row.extensionId);
  }

  /** `ActiveCall.extension`: the foreign key removes a call with its extension, so it is always there. */
  async extensionOf(ctx: RequestContext, call: ActiveCallRow): Promise<ExtensionRow> {
    const extension = await ctx.loaders.extension.load(call.extensionId);
    if (!extension || extension.tenantId !== call.tenantId) throw notFound("Extension");
    return extension;
  }

  queueOf(ctx: RequestContext, call: ActiveCallRow): Promise<QueueRow | null> {
    return queueOfCall(ctx, call);
  }
}
