import type { RequestContext } from "../../context/request-context";

/** What a secret or a digest is shown as in an audit entry, whatever its value. */
export const REDACTED = "[redacted]";

/** The entity types of the trail: each entity's name in lower snake case (contract §10). */
export type AuditEntityType = "tenant" | "extension" | "queue" | "queue_agent" | "api_key" | "webhook" | "voicemail_message" | "ring_group" | "ring_group_member" | "phone_number" | "trunk" | "outbound_route";

export type AuditValue = string | number | boolean | null;
/** An entity's audited fields, by their GraphQL names, with the values the GraphQL API shows (enums as GraphQL spells them). */
export type AuditSnapshot = Record<string, AuditValue>;
/** Each changed field → [before, after]. */
export type AuditChanges = Record<string, [AuditValue, AuditValue]>;

export interface AuditRecord {
  tenantId: number | null;
  /** `<entityType>.<verb>`, e.g. `extension.created`. */
  action: string;
  entityType: AuditEntityType;
  /** The entity's GraphQL id. */
  entityId: string | number;
  changes: AuditChanges | null;
}

/** A create: every field that has a value, as [null, value]. */
export function createdChanges(after: AuditSnapshot): AuditChanges {
  const changes: AuditChanges = {};
  for (const [field, value] of Object.entries(after)) if (value !== null) changes[field] = [null, value];
  return changes;
}

/** A delete: every field that had a value, as [value, null]. */
export function deletedChanges(before: AuditSnapshot): AuditChanges {
  const changes: AuditChanges = {};
  for (const [field, value] of Object.entries(before)) if (value !== null) changes[field] = [value, null];
  return changes;
}

/**
 * An update: the fields whose value differs, and only those. `rewritten` names redacted fields that
 * were written (a new secret): their shown value stays "[redacted]", so equality cannot tell.
 */
export function updatedChanges(before: AuditSnapshot, after: AuditSnapshot, rewritten: readonly string[] = []): AuditChanges {
  const changes: AuditChanges = {};
  for (const field of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const from = before[field] ?? null;
    const to = after[field] ?? null;
    if (from !== to || rewritten.includes(field)) changes[field] = [from, to];
  }
  return changes;
}

export const isEmpty = (changes: AuditChanges): boolean => Object.keys(changes).length === 0;

/**
 * Writes audit entries inside the caller's transaction: they commit with the change they describe,
 * or not at all. The actor, request id and transport come from the request context, so every path
 * (GraphQL, REST, ingestion) records them the same way. Any number of entries is one statement.
 */
export async function recordAudit(tx: RequestContext, records: AuditRecord | readonly AuditRecord[]): Promise<void> {
  const list = Array.isArray(records) ? (records as readonly AuditRecord[]) : [records as AuditRecord];
  if (list.length === 0) return;
  if (!tx.manager.queryRunner?.isTransactionActive) throw new Error("recordAudit must run inside the transaction of the change it records");
  const principal = tx.principal;
  if (!principal) throw new Error("recordAudit needs the principal of the change");
  const rows = list.map((r) => ({ t: r.tenantId, a: r.action, e: r.entityType, i: String(r.entityId), c: r.changes }));
  await tx.manager.query(
    `INSERT INTO audit_entry (tenant_id, action, entity_type, entity_id, changes, api_key_id, actor_name, actor_role, request_id, transport)
     SELECT x.t, x.a, x.e, x.i, x.c, $2, $3, $4, $5, $6 FROM jsonb_to_recordset($1::jsonb) AS x(t integer, a text, e text, i text, c jsonb)`,
    [JSON.stringify(rows), principal.apiKeyId, principal.name ?? null, principal.role, tx.requestId, tx.transport],
  );
}
