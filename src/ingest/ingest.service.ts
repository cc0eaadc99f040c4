import { requireRole } from "../auth/access";
import { Role } from "../auth/role";
import { AppError, ErrorCode, notFound, type FieldErrors } from "../common/errors";
import type { RequestContext } from "../context/request-context";
import { transactional } from "../db/transaction";
import type { DeviceService } from "../modules/device/device.service";
import { RegistrationInput, UnregistrationInput } from "../modules/device/device.inputs";
import type { Transport } from "../modules/device/device.entity";
import { EXTENSION_COLUMNS, type ExtensionRow } from "../modules/extension/extension.service";
import { publishRegistration } from "../subscriptions/events";
import { publishQueueChange } from "../subscriptions/queue-stats-feed";
import { applyCallEvent } from "./call-events";
import { applyQueueEvent } from "./queue-events";
import { parseTelephonyEvent, type CallEventInput, type RegistrationEventInput, type TelephonyEvent } from "./telephony-event";

export type IngestOutcome =
  | { status: "applied" | "duplicate" | "ignored"; type: string; action: string; reason?: string }
  | { status: "rejected"; code: ErrorCode; message: string; errors?: FieldErrors };

export interface ResolvedTarget {
  tenantId: number;
  extension: ExtensionRow;
}

/**
 * The one handler of telephony events, for HTTP and the Redis stream alike: validate, resolve the
 * tenant (by id or SIP domain) and the extension (by number), apply the state change in one
 * transaction, then publish. A refused event changes nothing and says why; repeats and stale
 * events are recognised and answered as such, so at-least-once delivery is safe.
 */
export class IngestService {
  constructor(private readonly devices: DeviceService) {}

  async ingest(ctx: RequestContext, raw: unknown): Promise<IngestOutcome> {
    requireRole(ctx, Role.INGEST, Role.ADMIN);
    const parsed = await parseTelephonyEvent(raw);
    if ("errors" in parsed) return { status: "rejected", code: ErrorCode.BAD_USER_INPUT, message: "The event is invalid.", errors: parsed.errors };
    try {
      return await this.apply(ctx, parsed.event);
    } catch (error) {
      if (error instanceof AppError) return { status: "rejected", code: error.code, message: error.message, ...(error.fields ? { errors: error.fields } : {}) };
      throw error;
    }
  }

  private async apply(ctx: RequestContext, event: TelephonyEvent): Promise<IngestOutcome> {
    switch (event.type) {
      case "registration":
        return this.registration(ctx, event);
      case "call":
        return transactional(ctx, async (tx) => {
          const target = await this.resolve(tx, event, event.extension);
          const outcome = await applyCallEvent(tx, target, event);
          // An agent's calls make it busy or free in every queue it serves.
          if (outcome.status === "applied") publishQueueChange(tx, await queuesServedBy(tx, target.extension.id));
          return { ...outcome, type: "call", action: event.action };
        });
      case "queue":
        return transactional(ctx, async (tx) => {
          const tenantId = await this.resolveTenant(tx, event);
          return { ...(await applyQueueEvent(tx, tenantId, event)), type: "queue", action: event.action };
        });
    }
  }

  private registration(ctx: RequestContext, event: RegistrationEventInput): Promise<IngestOutcome> {
    const occurredAt = occurredAtOf(event);
    return transactional(ctx, async (tx) => {
      const { tenantId, extension } = await this.resolve(tx, event, event.extension);
      const base = { type: "registration", action: event.action };
      // Expires 0 is the SIP way to unregister.
      if (event.action === "register" && event.expires !== 0) {
        // DeviceService refuses a disabled extension under the extension's row lock.
        const input = Object.assign(new RegistrationInput(), {
          contactUri: event.contact,
          userAgent: event.user_agent ?? null,
          sourceAddress: event.source_address ?? null,
          transport: (event.transport ?? null) as Transport | null,
          expiresInSeconds: event.expires,
          occurredAt,
        });
        const { device, change } = await this.devices.upsertRegistration(tx, extension.id, input);
        if (!change) return { ...base, status: "ignored", reason: "older than the device's current registration" };
        publishRegistration(tx, { type: change as "REGISTERED" | "REFRESHED", tenantId, extension, device, occurredAt: occurredAt.toISOString() });
        return { ...base, status: "applied" };
      }
      // A contact of "*" (or none) ends every registration of the extension, as in SIP.
      const every = !event.contact || event.contact === "*";
      const contacts: string[] = (
        await tx.manager.query(
          `SELECT contact_uri FROM device WHERE extension_id = $1 AND unregistered_at IS NULL ${every ? "" : "AND contact_uri = $2"} ORDER BY id`,
          every ? [extension.id] : [extension.id, event.contact],
        )
      ).map((r: { contact_uri: string }) => r.contact_uri);
      let changed = 0;
      for (const contactUri of contacts) {
        const { device, change } = await this.devices.unregister(tx, extension.id, Object.assign(new UnregistrationInput(), { contactUri, occurredAt }));
        if (!change) continue;
        changed++;
        publishRegistration(tx, { type: "UNREGISTERED", tenantId, extension, device, occurredAt: occurredAt.toISOString() });
      }
      return changed ? { ...base, status: "applied" } : { ...base, status: "duplicate", reason: "no device of the extension is registered with this contact" };
    });
  }

  /**
   * The event's tenant (by tenant_id or SIP domain) and extension (by number), as the principal may
   * see them: a tenant-bound INGEST key only ever reaches its own tenant. Unknown ones are refused.
   */
  private async resolve(tx: RequestContext, event: RegistrationEventInput | CallEventInput, number: string): Promise<ResolvedTarget> {
    const tenantId = await this.resolveTenant(tx, event);
    const [extension]: ExtensionRow[] = await tx.manager.query(
      `SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE e.tenant_id = $1 AND e.extension_number = $2`,
      [tenantId, number],
    );
    if (!extension) throw notFound("Extension", { extension: [`The tenant has no extension ${number}.`] });
    return { tenantId, extension };
  }

  private resolveTenant(tx: RequestContext, event: TelephonyEvent): Promise<number> {
    return tenantOfEvent(tx, event);
  }
}

/**
 * The tenant an engine's hand-over names, by tenant_id or SIP domain, as the principal may see it:
 * a tenant-bound INGEST key only ever reaches its own tenant (shared by telephony events and voicemail).
 */
export async function tenantOfEvent(tx: RequestContext, event: { tenant_id?: number; domain?: string }): Promise<number> {
  const principal = requireRole(tx, Role.INGEST, Role.ADMIN);
  const [tenant]: Array<{ id: number }> =
    event.tenant_id !== undefined
      ? await tx.manager.query(`SELECT id FROM tenant WHERE id = $1`, [event.tenant_id])
      : await tx.manager.query(`SELECT id FROM tenant WHERE sip_domain = $1`, [String(event.domain).toLowerCase()]);
  const field = event.tenant_id !== undefined ? "tenant_id" : "domain";
  if (!tenant || (principal.tenantId !== null && principal.tenantId !== tenant.id)) {
    throw notFound("Tenant", { [field]: ["No tenant has this " + (field === "domain" ? "SIP domain." : "id.")] });
  }
  return tenant.id;
}

async function queuesServedBy(tx: RequestContext, extensionId: number): Promise<number[]> {
  const rows: Array<{ queueId: number }> = await tx.manager.query(`SELECT queue_id AS "queueId" FROM queue_agent WHERE extension_id = $1`, [extensionId]);
  return rows.map((row) => row.queueId);
}

export function occurredAtOf(event: { occurred_at?: string }): Date {
  return event.occurred_at ? new Date(event.occurred_at) : new Date();
}
