import { requireRole } from "../auth/access";
import { Role } from "../auth/role";
import { AppError, notFound } from "../common/errors";
import type { RequestContext } from "../context/request-context";
import { EXTENSION_COLUMNS, type ExtensionRow } from "../modules/extension/extension.service";
import type { TelephonyEvent } from "./telephony-event";

/** The largest tenant id PostgreSQL's integer can hold: a larger one names no tenant. */
const MAX_ID = 2_147_483_647;

/**
 * What the events of a batch name — tenants (by id or SIP domain), extensions and queues (by
 * number) — read in one statement per kind, as the principal may see them: a tenant-bound INGEST
 * key only ever reaches its own tenant. Telephony events never change these rows, so what one event
 * of the batch resolves to holds for every other.
 */
export class Resolution {
  private constructor(
    private readonly tenantsById: Map<number, number>,
    private readonly tenantsByDomain: Map<string, number>,
    private readonly extensions: Map<string, ExtensionRow>,
    private readonly queues: Map<string, number>,
    private readonly scope: number | null,
  ) {}

  static async of(tx: RequestContext, events: readonly TelephonyEvent[]): Promise<Resolution> {
    const principal = requireRole(tx, Role.INGEST, Role.ADMIN);
    const ids = [...new Set(events.map((e) => e.tenant_id).filter((id): id is number => id !== undefined && id <= MAX_ID))];
    const domains = [...new Set(events.filter((e) => e.tenant_id === undefined).map((e) => String(e.domain).toLowerCase()))];
    const tenants: Array<{ id: number; sipDomain: string }> = await tx.manager.query(
      `SELECT id, sip_domain AS "sipDomain" FROM tenant WHERE id = ANY($1::int[]) OR sip_domain = ANY($2::text[])`,
      [ids, domains],
    );
    const resolution = new Resolution(
      new Map(tenants.map((t) => [t.id, t.id])),
      new Map(tenants.map((t) => [t.sipDomain, t.id])),
      new Map(),
      new Map(),
      principal.tenantId,
    );
    const extensionKeys = new Map<string, [number, string]>();
    const queueKeys = new Map<string, [number, string]>();
    for (const event of events) {
      const tenantId = resolution.tenant(event);
      if (typeof tenantId !== "number") continue;
      const number = event.type === "queue" ? event.agent : event.extension;
      if (number !== undefined) extensionKeys.set(key(tenantId, number), [tenantId, number]);
      if (event.type !== "registration" && event.queue !== undefined) queueKeys.set(key(tenantId, event.queue), [tenantId, event.queue]);
    }
    if (extensionKeys.size) {
      const rows: ExtensionRow[] = await tx.manager.query(
        `SELECT ${EXTENSION_COLUMNS} FROM extension e
         JOIN unnest($1::int[], $2::text[]) AS k(tenant_id, number) ON e.tenant_id = k.tenant_id AND e.extension_number = k.number`,
        unzip(extensionKeys),
      );
      for (const row of rows) resolution.extensions.set(key(row.tenantId, row.extensionNumber), row);
    }
    if (queueKeys.size) {
      const rows: Array<{ id: number; tenantId: number; number: string }> = await tx.manager.query(
        `SELECT q.id, q.tenant_id AS "tenantId", q.number FROM queue q
         JOIN unnest($1::int[], $2::text[]) AS k(tenant_id, number) ON q.tenant_id = k.tenant_id AND q.number = k.number`,
        unzip(queueKeys),
      );
      for (const row of rows) resolution.queues.set(key(row.tenantId, row.number), row.id);
    }
    return resolution;
  }

  /** The event's tenant, or why it has none. */
  tenant(event: TelephonyEvent): number | AppError {
    const byId = event.tenant_id !== undefined;
    const id = byId ? this.tenantsById.get(event.tenant_id!) : this.tenantsByDomain.get(String(event.domain).toLowerCase());
    if (id === undefined || (this.scope !== null && this.scope !== id)) {
      return notFound("Tenant", byId ? { tenant_id: ["No tenant has this id."] } : { domain: ["No tenant has this SIP domain."] });
    }
    return id;
  }

  /** The tenant's extension with this number, or the refusal naming `field`. */
  extension(tenantId: number, number: string, field: "extension" | "agent"): ExtensionRow | AppError {
    return this.extensions.get(key(tenantId, number)) ?? notFound("Extension", { [field]: [`The tenant has no extension ${number}.`] });
  }

  /** The tenant's queue with this number, or the refusal. */
  queue(tenantId: number, number: string): number | AppError {
    return this.queues.get(key(tenantId, number)) ?? notFound("Queue", { queue: [`The tenant has no queue ${number}.`] });
  }
}

const key = (tenantId: number, number: string) => `${tenantId}:${number}`;

function unzip(pairs: Map<string, [number, string]>): [number[], string[]] {
  const values = [...pairs.values()];
  return [values.map(([tenantId]) => tenantId), values.map(([, number]) => number)];
}
