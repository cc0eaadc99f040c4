import type { EntityManager } from "typeorm";
import { badInput, conflict } from "../../common/errors";
import type { RequestContext } from "../../context/request-context";
import type { AuditEntityType, AuditRecord } from "../audit/audit";
import { CALL_DESTINATION_TYPES, CallDestinationType, type CallDestination, type CallDestinationInput } from "./call-destination.type";

/** E.164 as the contract spells it: `+`, a non-zero digit, 7 to 15 digits in all. */
export const E164_PATTERN = /^\+[1-9][0-9]{6,14}$/;

type Manager = EntityManager | RequestContext;
const managerOf = (m: Manager): EntityManager => ("manager" in m && "services" in m ? m.manager : (m as EntityManager));

// ----------------------------------------------------------------------------------------------
// Storage: two columns per destination, `<name>_type varchar` and `<name>_target varchar`.

/** The SQL of a column pair's CHECK: a known type, and a target exactly when the type takes one. */
export function destinationCheck(name: string): string {
  const types = CALL_DESTINATION_TYPES.map((t) => `'${t}'`).join(", ");
  return `"${name}_type" IN (${types}) AND (("${name}_type" = 'hangup') = ("${name}_target" IS NULL))`;
}

/** `ALTER TABLE … ADD COLUMN …` fragments for a migration: the pair, HANGUP by default. */
export function destinationColumnsSql(name: string): string {
  return `ADD COLUMN "${name}_type" varchar(16) NOT NULL DEFAULT 'hangup', ADD COLUMN "${name}_target" varchar(32)`;
}

/** The column pair of a row as the GraphQL type (null when the row has no such destination). */
export function readDestination(row: Record<string, unknown>, name: string): CallDestination | null {
  const camel = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const type = (row[`${camel}Type`] ?? row[`${name}_type`]) as CallDestinationType | null | undefined;
  if (!type) return null;
  const target = (row[`${camel}Target`] ?? row[`${name}_target`]) as string | null | undefined;
  return { type, target: target ?? null };
}

/** A destination as the audit trail shows it: `TYPE` or `TYPE:target`. */
export function destinationAuditValue(destination: CallDestination | null): string | null {
  if (!destination) return null;
  const type = destination.type.toUpperCase();
  return destination.target === null ? type : `${type}:${destination.target}`;
}

/** The HANGUP destination (default of every destination column). */
export const HANGUP: CallDestination = Object.freeze({ type: CallDestinationType.HANGUP, target: null });

// ----------------------------------------------------------------------------------------------
// Validation, in one place.

/**
 * A checker says whether `target` names something of the tenant for one destination type: null
 * when it does, else the message. It runs inside the caller's transaction and should lock what it
 * finds (FOR SHARE) so that a concurrent delete is ordered after it (and then sees the reference).
 */
export type DestinationChecker = (em: EntityManager, tenantId: number, target: string) => Promise<string | null>;

const checkers = new Map<CallDestinationType, DestinationChecker>();

/** Another module adds the checker of its type (RING_GROUP by the ring-group module). */
export function registerDestinationChecker(type: CallDestinationType, checker: DestinationChecker): void {
  checkers.set(type, checker);
}

const numberOf = (what: string, sql: string): DestinationChecker => async (em, tenantId, target) => {
  const rows: unknown[] = await em.query(sql, [tenantId, target]);
  return rows.length > 0 ? null : `There is no ${what} ${target} in this tenant.`;
};

registerDestinationChecker(
  CallDestinationType.EXTENSION,
  numberOf("extension", `SELECT 1 FROM extension WHERE tenant_id = $1 AND extension_number = $2 FOR SHARE`),
);
registerDestinationChecker(
  CallDestinationType.QUEUE,
  numberOf("queue", `SELECT 1 FROM queue WHERE tenant_id = $1 AND number = $2 FOR SHARE`),
);
registerDestinationChecker(CallDestinationType.VOICEMAIL, async (em, tenantId, target) => {
  const rows: Array<{ voicemailEnabled: boolean }> = await em.query(
    `SELECT voicemail_enabled AS "voicemailEnabled" FROM extension WHERE tenant_id = $1 AND extension_number = $2 FOR SHARE`,
    [tenantId, target],
  );
  if (rows.length === 0) return `There is no extension ${target} in this tenant.`;
  return rows[0].voicemailEnabled ? null : `The extension ${target} does not have voicemail enabled.`;
});
registerDestinationChecker(CallDestinationType.EXTERNAL, async (_em, _tenantId, target) =>
  E164_PATTERN.test(target) ? null : "An external destination must be an E.164 number such as +442071234567.",
);

/**
 * Judges a destination given in input for one tenant and returns what to store. Refusals are
 * BAD_USER_INPUT on `fieldName` (the input field's name, e.g. "destination" or "forwardBusy"), so a
 * client sees which field is wrong; nothing is written by the caller after a refusal.
 */
export async function validateDestination(m: Manager, tenantId: number, input: CallDestinationInput | null | undefined, fieldName: string): Promise<CallDestination> {
  const refuse = (message: string) => badInput({ [fieldName]: [message] });
  if (input === null || input === undefined || typeof input !== "object") throw refuse("A destination needs a type.");
  const type = input.type;
  if (!CALL_DESTINATION_TYPES.includes(type)) {
    throw refuse(`The destination type must be one of ${Object.keys(CallDestinationType).join(", ")}.`);
  }
  const target = typeof input.target === "string" ? input.target.trim() : input.target;
  if (type === CallDestinationType.HANGUP) {
    if (target !== null && target !== undefined && target !== "") throw refuse("A HANGUP destination takes no target.");
    return { ...HANGUP };
  }
  if (typeof target !== "string" || target === "") throw refuse(`A ${type.toUpperCase()} destination needs a target.`);
  if (target.length > 32 || target.includes("\u0000")) throw refuse("The destination target is too long or malformed.");
  const checker = checkers.get(type);
  if (!checker) throw refuse(`${type.toUpperCase()} destinations are not available.`);
  const problem = await checker(managerOf(m), tenantId, target);
  if (problem) throw refuse(problem);
  return { type, target };
}

// ----------------------------------------------------------------------------------------------
// References: which rows point at an extension, queue or ring group, for deletes and renames.

/** A table with a destination column pair; it registers itself so deletes can find its rows. */
export interface DestinationHolder {
  /** The table (must have `id` and `tenant_id` columns). */
  table: string;
  /** The pair's prefix: `destination` for destination_type / destination_target. */
  column: string;
  /** The audit entity type of a row, and the GraphQL field the pair is shown as. */
  entityType: AuditEntityType;
  field: string;
  /** An SQL expression over the table (alias `h`) naming a row for people, e.g. `'phone number ' || h.number`. */
  label: string;
}

const holders: DestinationHolder[] = [];

/** Called once per holder at module load (phone numbers here; call handling, ring groups, queues later). */
export function registerDestinationHolder(holder: DestinationHolder): void {
  if (!holders.some((h) => h.table === holder.table && h.column === holder.column)) holders.push(holder);
}

/** The destination types that name an extension's, queue's or ring group's number. */
export function typesNaming(kind: "extension" | "queue" | "ring_group"): CallDestinationType[] {
  if (kind === "extension") return [CallDestinationType.EXTENSION, CallDestinationType.VOICEMAIL];
  return [kind === "queue" ? CallDestinationType.QUEUE : CallDestinationType.RING_GROUP];
}

interface ReferenceRow {
  id: number;
  tenantId: number;
  label: string;
  type: CallDestinationType;
  target: string;
}

async function referenceRows(em: EntityManager, tenantId: number, types: CallDestinationType[], target: string, lock: boolean): Promise<Array<ReferenceRow & { holder: DestinationHolder }>> {
  const found: Array<ReferenceRow & { holder: DestinationHolder }> = [];
  for (const holder of holders) {
    const rows: ReferenceRow[] = await em.query(
      `SELECT h.id, h.tenant_id AS "tenantId", ${holder.label} AS label, h.${holder.column}_type AS type, h.${holder.column}_target AS target
         FROM ${holder.table} h
        WHERE h.tenant_id = $1 AND h.${holder.column}_type = ANY($2::varchar[]) AND h.${holder.column}_target = $3
        ORDER BY h.id ${lock ? "FOR UPDATE" : ""}`,
      [tenantId, types, target],
    );
    found.push(...rows.map((row) => ({ ...row, holder })));
  }
  return found;
}

/** Human-readable names of what points at `target` (e.g. "phone number +442071234567 (destination)"). */
export async function findReferences(m: Manager, tenantId: number, types: CallDestinationType[], target: string): Promise<string[]> {
  const rows = await referenceRows(managerOf(m), tenantId, types, target, false);
  return rows.map((r) => `${r.label} (${r.holder.field})`);
}

/**
 * The deletion rule of §11 for something destinations may name: with references and no `force`,
 * CONFLICT naming them (details.references); with `force`, every reference becomes HANGUP in the
 * caller's transaction, each with an audit entry. Returns the audit records written.
 */
export async function releaseReferences(
  tx: RequestContext,
  tenantId: number,
  types: CallDestinationType[],
  target: string,
  force: boolean,
  what: string,
): Promise<AuditRecord[]> {
  const rows = await referenceRows(tx.manager, tenantId, types, target, true);
  if (rows.length === 0) return [];
  const names = rows.map((r) => `${r.label} (${r.holder.field})`);
  if (!force) {
    throw conflict(`${what} is the destination of ${names.join(", ")}; point ${rows.length === 1 ? "it" : "them"} elsewhere first or pass force.`, {
      references: names,
    });
  }
  const records: AuditRecord[] = [];
  for (const row of rows) {
    await tx.manager.query(
      `UPDATE ${row.holder.table} SET ${row.holder.column}_type = 'hangup', ${row.holder.column}_target = NULL, updated_at = now() WHERE id = $1`,
      [row.id],
    );
    records.push({
      tenantId: row.tenantId,
      action: `${row.holder.entityType}.updated`,
      entityType: row.holder.entityType,
      entityId: row.id,
      changes: { [row.holder.field]: [destinationAuditValue({ type: row.type, target: row.target }), destinationAuditValue(HANGUP)] },
    });
  }
  return records;
}

/**
 * A renamed extension, queue or ring group keeps its references: they follow the new number in the
 * caller's transaction (the choice made where the contract is silent), each with an audit entry.
 */
export async function renameReferences(tx: RequestContext, tenantId: number, types: CallDestinationType[], from: string, to: string): Promise<AuditRecord[]> {
  if (from === to) return [];
  const rows = await referenceRows(tx.manager, tenantId, types, from, true);
  const records: AuditRecord[] = [];
  for (const row of rows) {
    await tx.manager.query(`UPDATE ${row.holder.table} SET ${row.holder.column}_target = $2, updated_at = now() WHERE id = $1`, [row.id, to]);
    records.push({
      tenantId: row.tenantId,
      action: `${row.holder.entityType}.updated`,
      entityType: row.holder.entityType,
      entityId: row.id,
      changes: { [row.holder.field]: [destinationAuditValue({ type: row.type, target: from }), destinationAuditValue({ type: row.type, target: to })] },
    });
  }
  return records;
}
