import { readRows } from "../../db/read";
import { parseId, requireRole } from "../../auth/access";
import { Role } from "../../auth/role";
import { AppError, badInput, notFound } from "../../common/errors";
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
    const id = parseId(rawExtensionId) ?? 0;
    return transactional(ctx, async (tx) => {
      const book = await this.lockForRegistrations(tx, [id]);
      const outcome = await book.register(tx, id, input);
      await book.write(tx);
      return outcome;
    });
  }

  /**
   * Applies one un-REGISTER. Unknown contacts are NOT_FOUND; a device already unregistered, or one
   * whose current registration began after the event, is left as it is (change null).
   */
  async unregister(ctx: RequestContext, rawExtensionId: string | number, input: UnregistrationInput): Promise<RegistrationOutcome> {
    requireRole(ctx, ...REGISTRARS);
    await assertValid(input);
    const id = parseId(rawExtensionId) ?? 0;
    return transactional(ctx, async (tx) => {
      const book = await this.lockForRegistrations(tx, [id]);
      const outcome = await book.unregister(tx, id, input);
      await book.write(tx);
      return outcome;
    });
  }

  /**
   * Locks extensions and their devices for the rest of the transaction, one statement each and in id
   * order (two batches never deadlock), and returns the book that applies their registrations. So
   * registrations of one extension apply one at a time and never race its deletion or disabling, and
   * the expiry sweep skips the locked devices. A tenant-bound key sees only its tenant's extensions:
   * the others are missing from the book, as are unknown ones.
   */
  async lockForRegistrations(tx: RequestContext, extensionIds: readonly number[]): Promise<RegistrationBook> {
    const principal = requireRole(tx, ...REGISTRARS);
    const ids = [...new Set(extensionIds.filter((id) => id > 0))];
    const extensions: Array<LockedExtension & { now: Date }> = ids.length
      ? await tx.manager.query(`SELECT id, tenant_id AS "tenantId", status, now() AS now FROM extension WHERE id = ANY($1::int[]) ORDER BY id FOR NO KEY UPDATE`, [
          ids,
        ])
      : [];
    const visible = extensions.filter((row) => principal.tenantId === null || principal.tenantId === row.tenantId);
    const devices: DeviceRow[] = visible.length
      ? await tx.manager.query(`SELECT ${DEVICE_COLUMNS} FROM device d WHERE d.extension_id = ANY($1::int[]) ORDER BY d.id FOR UPDATE`, [
          visible.map((row) => row.id),
        ])
      : [];
    return new RegistrationBook(visible, devices, extensions[0]?.now ?? new Date());
  }
}

/**
 * The extensions a transaction has locked and their devices as the transaction has left them. Each
 * registration reads its device here; a new contact is inserted at once (its id goes into the
 * event), while the changes of known devices are kept and written by `write()` in one statement —
 * so a batch of many events reads and writes nothing per refresh. The owner calls `write()` before
 * its transaction commits. Valid only inside the transaction that locked them.
 */
export class RegistrationBook {
  private readonly extensions: Map<number, LockedExtension>;
  /** Per extension, its devices by contact URI. */
  private readonly devices = new Map<number, Map<string, DeviceRow>>();
  /** Devices changed since the last write. */
  private readonly changed = new Set<DeviceRow>();
  /**
   * New contacts not inserted yet, by extension id and contact: every state the batch gave the row,
   * the last one being what write() inserts (each state's event carries the id it gets).
   */
  private readonly pending = new Map<string, DeviceRow[]>();

  constructor(
    extensions: LockedExtension[],
    devices: DeviceRow[],
    /** The transaction's now(): every updated_at it writes, and what `registered` is judged against. */
    private readonly now: Date,
  ) {
    this.extensions = new Map(extensions.map((row) => [row.id, row]));
    for (const row of extensions) this.devices.set(row.id, new Map());
    for (const device of devices) this.devices.get(device.extensionId)?.set(device.contactUri, device);
  }

  /** Why a REGISTER of the extension is refused, known before anything is written; null when it is not. */
  refusal(extensionId: number): AppError | null {
    const extension = this.extensions.get(extensionId);
    if (!extension) return notFound("Extension");
    if (extension.status !== ExtensionStatus.ACTIVE) return badInput({ extension: ["The extension is disabled."] }, "The extension is disabled.");
    return null;
  }

  /** The extension's contacts not unregistered (expired ones too: an unregister still ends them), oldest device first. */
  liveContacts(extensionId: number): string[] {
    const devices = [...(this.devices.get(extensionId)?.values() ?? [])].sort((a, b) => Number(a.id) - Number(b.id));
    return devices.filter((d) => d.unregisteredAt === null).map((d) => d.contactUri);
  }

  /** DeviceService.upsertRegistration's rules, for an input already validated. */
  async register(tx: RequestContext, extensionId: number, input: RegistrationInput): Promise<RegistrationOutcome> {
    const refused = this.refusal(extensionId);
    if (refused) throw refused;
    const extension = this.extensions.get(extensionId)!;
    const existing = this.devices.get(extensionId)!.get(input.contactUri);
    const expiresAt = new Date(input.occurredAt.getTime() + input.expiresInSeconds * 1000);
    const details = { userAgent: input.userAgent ?? null, sourceAddress: input.sourceAddress ?? null, transport: input.transport ?? null };
    if (!existing) {
      // Inserted by write(), with the batch's other new contacts, in one statement: the row carries
      // what the database assigns (id, created_at) once written, which is before the transaction's
      // events are logged (the outbox is written after the owner's write()).
      const device: DeviceRow = {
        id: 0,
        tenantId: extension.tenantId,
        extensionId: extension.id,
        contactUri: input.contactUri,
        ...details,
        registeredAt: input.occurredAt,
        expiresAt,
        unregisteredAt: null,
        createdAt: this.now,
        updatedAt: this.now,
        registered: expiresAt > this.now,
      } as DeviceRow;
      this.pending.set(pendingKey(device), [device]);
      this.devices.get(extensionId)!.set(device.contactUri, device);
      return { device, change: "REGISTERED" };
    }
    // An expired registration ended before the event, so only these two can be newer than it.
    if (input.occurredAt < new Date(existing.unregisteredAt ?? existing.registeredAt)) return { device: existing, change: null };
    const live = existing.unregisteredAt === null && new Date(existing.expiresAt) > input.occurredAt;
    const device = this.change(existing, { ...details, registeredAt: live ? existing.registeredAt : input.occurredAt, expiresAt, unregisteredAt: null });
    return { device, change: live ? "REFRESHED" : "REGISTERED" };
  }

  /** DeviceService.unregister's rules, for an input already validated. */
  async unregister(_tx: RequestContext, extensionId: number, input: UnregistrationInput): Promise<RegistrationOutcome> {
    if (!this.extensions.has(extensionId)) throw notFound("Extension");
    const existing = this.devices.get(extensionId)!.get(input.contactUri);
    if (!existing) throw notFound("Device", { contactUri: ["No device of the extension has this contact."] });
    if (existing.unregisteredAt !== null || input.occurredAt < new Date(existing.registeredAt)) return { device: existing, change: null };
    return { device: this.change(existing, { unregisteredAt: input.occurredAt }), change: "UNREGISTERED" };
  }

  /**
   * Writes what the batch changed: the new contacts in one INSERT, the changed devices in one UPDATE
   * (a refresh costs no statement of its own, however many there are).
   */
  async write(tx: RequestContext): Promise<void> {
    if (this.pending.size > 0) {
      const states = [...this.pending.values()];
      this.pending.clear();
      const rows = states.map((all) => all[all.length - 1]);
      const inserted: DeviceRow[] = await tx.manager.query(
        `INSERT INTO device AS d (tenant_id, extension_id, contact_uri, user_agent, source_address, transport, registered_at, expires_at, unregistered_at)
         SELECT * FROM unnest($1::int[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
         RETURNING ${DEVICE_COLUMNS}`,
        [
          rows.map((d) => d.tenantId),
          rows.map((d) => d.extensionId),
          rows.map((d) => d.contactUri),
          rows.map((d) => d.userAgent),
          rows.map((d) => d.sourceAddress),
          rows.map((d) => d.transport),
          rows.map((d) => d.registeredAt),
          rows.map((d) => d.expiresAt),
          rows.map((d) => d.unregisteredAt),
        ],
      );
      const byKey = new Map(inserted.map((row) => [pendingKey(row), row]));
      for (const all of states) {
        const row = byKey.get(pendingKey(all[0]))!;
        for (const state of all) Object.assign(state, { id: row.id, createdAt: row.createdAt, updatedAt: row.updatedAt });
        // the book goes on with the row as written
        this.devices.get(row.extensionId)!.set(row.contactUri, { ...all[all.length - 1], ...row });
      }
    }
    if (this.changed.size === 0) return;
    const rows = [...this.changed];
    this.changed.clear();
    await tx.manager.query(
      `UPDATE device AS d SET user_agent = v.user_agent, source_address = v.source_address, transport = v.transport,
         registered_at = v.registered_at, expires_at = v.expires_at, unregistered_at = v.unregistered_at, updated_at = now()
       FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[])
         AS v(id, user_agent, source_address, transport, registered_at, expires_at, unregistered_at)
       WHERE d.id = v.id`,
      [
        rows.map((d) => d.id),
        rows.map((d) => d.userAgent),
        rows.map((d) => d.sourceAddress),
        rows.map((d) => d.transport),
        rows.map((d) => d.registeredAt),
        rows.map((d) => d.expiresAt),
        rows.map((d) => d.unregisteredAt),
      ],
    );
  }

  /** The device as the pending write will leave it (the row the event carries). */
  private change(existing: DeviceRow, set: Partial<DeviceRow>): DeviceRow {
    const device: DeviceRow = { ...existing, ...set, updatedAt: this.now };
    device.registered = device.unregisteredAt === null && new Date(device.expiresAt) > this.now;
    const unwritten = this.pending.get(pendingKey(existing));
    if (unwritten?.includes(existing)) {
      // not inserted yet: the insert takes this state
      unwritten.push(device);
    } else {
      this.changed.delete(existing);
      this.changed.add(device);
    }
    this.devices.get(device.extensionId)!.set(device.contactUri, device);
    return device;
  }
}

function pendingKey(device: Pick<DeviceRow, "extensionId" | "contactUri">): string {
  return `${device.extensionId} ${device.contactUri}`;
}
