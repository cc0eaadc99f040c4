import { readRows } from "../../db/read";
import { parseId, requireRole } from "../../auth/access";
import { Role } from "../../auth/role";
import { badInput, notFound } from "../../common/errors";
import { groupBy } from "../../common/group-by";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { transactional } from "../../db/transaction";
import { ExtensionStatus } from "../extension/extension.entity";
import type { Device } from "./device.entity";
import { RegistrationInput, UnregistrationInput } from "./device.inputs";

export type DeviceRow = Omit<Device, "extensionRow" | "registered"> & { registered: boolean };

/** Registered now, by the database clock: not unregistered and not past its expiry. */
export const REGISTERED_NOW = `(d.unregistered_at IS NULL AND d.expires_at > now())`;
/** Registered devices first, then the most recent. */
export const DEVICE_ORDER = `${REGISTERED_NOW} DESC, d.registered_at DESC, d.id`;

export const DEVICE_COLUMNS = `d.id, d.tenant_id AS "tenantId", d.extension_id AS "extensionId", d.contact_uri AS "contactUri",
  d.user_agent AS "userAgent", d.source_address AS "sourceAddress", d.transport, d.registered_at AS "registeredAt",
  d.expires_at AS "expiresAt", d.unregistered_at AS "unregisteredAt", d.created_at AS "createdAt", d.updated_at AS "updatedAt",
  ${REGISTERED_NOW} AS registered`;

/** What a registration event did; null when it changed nothing (it is older than the device's state). */
export type RegistrationChange = "REGISTERED" | "REFRESHED" | "UNREGISTERED" | null;

export interface RegistrationOutcome {
  device: DeviceRow;
  change: RegistrationChange;
}

const READERS = [Role.ADMIN, Role.TENANT_ADMIN, Role.VIEWER];
/** Registrations come from the telephony engine, through the event path. */
const REGISTRARS = [Role.ADMIN, Role.INGEST];

interface LockedExtension {
  id: number;
  tenantId: number;
  status: ExtensionStatus;
}

export class DeviceService {
  async get(ctx: RequestContext, rawId: string | number): Promise<DeviceRow> {
    const principal = requireRole(ctx, ...READERS);
    const id = parseId(rawId);
    const row = id === null ? null : await ctx.loaders.device.load(id);
    if (!row || (principal.role !== Role.ADMIN && principal.tenantId !== row.tenantId)) throw notFound("Device");
    return row;
  }

  /** `Extension.devices` for many extensions: one query; registered devices first, then the most recent. */
  async listForExtensions(ctx: RequestContext, extensionIds: readonly number[]): Promise<DeviceRow[][]> {
    const rows: DeviceRow[] = await readRows(ctx,
      `SELECT ${DEVICE_COLUMNS} FROM device d WHERE d.extension_id = ANY($1::int[])
       ORDER BY ${DEVICE_ORDER}`,
      [extensionIds],
    );
    return groupBy(extensionIds, rows, (row) => row.extensionId);
  }

  /** `Extension.registered` for many extensions: one query over the live registrations only. */
  async registeredAmong(ctx: RequestContext, extensionIds: readonly number[]): Promise<boolean[]> {
    const rows: Array<{ extensionId: number }> = await readRows(ctx,
      `SELECT DISTINCT d.extension_id AS "extensionId" FROM device d WHERE d.extension_id = ANY($1::int[]) AND ${REGISTERED_NOW}`,
      [extensionIds],
    );
    const registered = new Set(rows.map((row) => row.extensionId));
    return extensionIds.map((id) => registered.has(id));
  }

  /**
   * Applies one REGISTER of the user agent `contactUri` of an extension: a new contact inserts a
   * device; a live one is refreshed (new expiry, same registeredAt); an expired or unregistered one
   * starts a new registration. An event older than the device's last state change (its current
   * registeredAt, or its unregisteredAt) changes nothing. A disabled extension is refused.
   */
  async upsertRegistration(ctx: RequestContext, rawExtensionId: string | number, input: RegistrationInput): Promise<RegistrationOutcome> {
    requireRole(ctx, ...REGISTRARS);
    await assertValid(input);
    return transactional(ctx, async (tx) => {
      const extension = await this.lockExtension(tx, rawExtensionId);
      if (extension.status !== ExtensionStatus.ACTIVE) throw badInput({ extension: ["The extension is disabled."] }, "The extension is disabled.");
      const existing = await this.findByContact(tx, extension.id, input.contactUri);
      const expiresAt = new Date(input.occurredAt.getTime() + input.expiresInSeconds * 1000);
      const details = [input.userAgent ?? null, input.sourceAddress ?? null, input.transport ?? null];
      if (!existing) {
        const [device]: DeviceRow[] = await tx.manager.query(
          `INSERT INTO device AS d (tenant_id, extension_id, contact_uri, user_agent, source_address, transport, registered_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${DEVICE_COLUMNS}`,
          [extension.tenantId, extension.id, input.contactUri, ...details, input.occurredAt, expiresAt],
        );
        return { device, change: "REGISTERED" };
      }
      // An expired registration ended before the event, so only these two can be newer than it.
      if (input.occurredAt < (existing.unregisteredAt ?? existing.registeredAt)) return { device: existing, change: null };
      const live = existing.unregisteredAt === null && existing.expiresAt > input.occurredAt;
      const [[device]]: [DeviceRow[]] = await tx.manager.query(
        `UPDATE device AS d SET user_agent = $1, source_address = $2, transport = $3, registered_at = $4, expires_at = $5,
           unregistered_at = NULL, updated_at = now()
         WHERE d.id = $6 RETURNING ${DEVICE_COLUMNS}`,
        [...details, live ? existing.registeredAt : input.occurredAt, expiresAt, existing.id],
      );
      return { device, change: live ? "REFRESHED" : "REGISTERED" };
    });
  }

  /**
   * Applies one un-REGISTER. Unknown contacts are NOT_FOUND; a device already unregistered, or one
   * whose current registration began after the event, is left as it is (change null).
   */
  async unregister(ctx: RequestContext, rawExtensionId: string | number, input: UnregistrationInput): Promise<RegistrationOutcome> {
    requireRole(ctx, ...REGISTRARS);
    await assertValid(input);
    return transactional(ctx, async (tx) => {
      const extension = await this.lockExtension(tx, rawExtensionId);
      const existing = await this.findByContact(tx, extension.id, input.contactUri);
      if (!existing) throw notFound("Device", { contactUri: ["No device of the extension has this contact."] });
      if (existing.unregisteredAt !== null || input.occurredAt < existing.registeredAt) return { device: existing, change: null };
      const [[device]]: [DeviceRow[]] = await tx.manager.query(
        `UPDATE device AS d SET unregistered_at = $1, updated_at = now() WHERE d.id = $2 RETURNING ${DEVICE_COLUMNS}`,
        [input.occurredAt, existing.id],
      );
      return { device, change: "UNREGISTERED" };
    });
  }

  /**
   * Locks the extension for the rest of the transaction, so registrations of one extension apply one
   * at a time and never race its deletion. A tenant-bound key sees only its tenant's extensions.
   */
  private async lockExtension(tx: RequestContext, rawId: string | number): Promise<LockedExtension> {
    const principal = requireRole(tx, ...REGISTRARS);
    const id = parseId(rawId);
    const [row]: LockedExtension[] =
      id === null ? [] : await tx.manager.query(`SELECT id, tenant_id AS "tenantId", status FROM extension WHERE id = $1 FOR NO KEY UPDATE`, [id]);
    if (!row || (principal.tenantId !== null && principal.tenantId !== row.tenantId)) throw notFound("Extension");
    return row;
  }

  private async findByContact(tx: RequestContext, extensionId: number, contactUri: string): Promise<DeviceRow | null> {
    const [row]: DeviceRow[] = await tx.manager.query(`SELECT ${DEVICE_COLUMNS} FROM device d WHERE d.extension_id = $1 AND d.contact_uri = $2`, [
      extensionId,
      contactUri,
    ]);
    return row ?? null;
  }
}
