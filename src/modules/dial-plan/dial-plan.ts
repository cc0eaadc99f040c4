import { AppError, ErrorCode, pgErrorCode } from "../../common/errors";
import type { RequestContext } from "../../context/request-context";

/**
 * One dial plan per tenant (contract §12): extension, queue and ring-group numbers share one
 * namespace. The guarantee is the database's (table dial_plan_number, kept by row triggers on the
 * owning tables; migration 1765300000000): a number another kind of owner holds fails the write
 * with SQLSTATE PB409, whose message names the holder. This file turns that into the API's
 * CONFLICT, and lets a caller that reports per row (the import) look holders up beforehand.
 */
export const DIAL_PLAN_TAKEN = "PB409";

export type DialPlanOwner = "extension" | "queue" | "ring_group";

function driverError(error: unknown): { message?: string; detail?: string } {
  const e = error as { driverError?: { message?: string; detail?: string }; message?: string; detail?: string };
  return e?.driverError ?? e ?? {};
}

/**
 * A write refused by the dial plan as CONFLICT: the message names the holder, `extensions.fields`
 * names the number's field (so REST answers 422 on it, like any taken number), and the details
 * carry the holder's kind and id. Anything else is rethrown unchanged.
 */
export function translateDialPlan(field: string) {
  return (error: unknown): never => {
    if (pgErrorCode(error) !== DIAL_PLAN_TAKEN) throw error;
    const { message = "The number is already in use in the tenant's dial plan.", detail = "" } = driverError(error);
    const [type, id] = detail.split(":");
    throw new AppError(ErrorCode.CONFLICT, message, { [field]: [message] }, { holder: { type, id } });
  };
}

/**
 * Who holds each of these numbers in the tenant's plan, other than owners of `except` kind (the
 * caller's own kind, refused by its own unique key): number → a phrase like `queue "Sales"`.
 */
export async function dialPlanHolders(ctx: RequestContext, tenantId: number, numbers: readonly string[], except: DialPlanOwner): Promise<Map<string, string>> {
  if (numbers.length === 0) return new Map();
  const rows: Array<{ number: string; holder: string }> = await ctx.manager.query(
    `SELECT d.number, CASE d.owner_type
        WHEN 'extension' THEN (SELECT 'extension ' || e.extension_number || coalesce(' (' || e.display_name || ')', '') FROM extension e WHERE e.id = d.owner_id)
        WHEN 'queue' THEN (SELECT 'queue "' || q.name || '"' FROM queue q WHERE q.id = d.owner_id)
        ELSE (SELECT 'ring group "' || g.name || '"' FROM ring_group g WHERE g.id = d.owner_id) END AS holder
       FROM dial_plan_number d WHERE d.tenant_id = $1 AND d.number = ANY($2::text[]) AND d.owner_type <> $3`,
    [tenantId, numbers, except],
  );
  return new Map(rows.map((r) => [r.number, r.holder]));
}

export const takenMessage = (number: string, holder: string) => `The number ${number} is already used by ${holder}.`;
