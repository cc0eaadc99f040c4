import type { Logger } from "../common/logger";
import type { ContextDeps } from "../context/build-context";
import { buildContext } from "../context/build-context";
import { Role } from "../auth/role";
import { transactional } from "../db/transaction";
import { DEVICE_COLUMNS, type DeviceRow } from "../modules/device/device.service";
import { EXTENSION_COLUMNS, type ExtensionRow } from "../modules/extension/extension.service";
import { publishRegistration } from "../subscriptions/events";

const BATCH = 500;

/**
 * Expires registrations past their expiresAt, each exactly once across every instance: the database
 * decides (FOR UPDATE SKIP LOCKED, and the UPDATE re-checks `unregistered_at IS NULL`), so two
 * instances sweeping together never expire the same device twice. Each expiry publishes EXPIRED.
 */
export class RegistrationExpiry {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly deps: ContextDeps,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private tick(): void {
    this.running ??= this.sweep()
      .then(
        () => undefined,
        (error: unknown) => this.log.error({ err: error }, "registration expiry sweep failed"),
      )
      .finally(() => (this.running = undefined));
  }

  /** Expires due registrations in batches; returns how many it expired. */
  async sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const ctx = buildContext(this.deps, { role: Role.INGEST, tenantId: null, apiKeyId: null }, "ingest");
      const expired = await transactional(ctx, async (tx) => {
        const [devices]: [DeviceRow[]] = await tx.manager.query(
          `WITH due AS (
             SELECT id FROM device WHERE unregistered_at IS NULL AND expires_at <= now()
             ORDER BY expires_at LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)
           UPDATE device AS d SET unregistered_at = d.expires_at, updated_at = now()
           FROM due WHERE d.id = due.id AND d.unregistered_at IS NULL RETURNING ${DEVICE_COLUMNS}`,
        );
        if (devices.length === 0) return 0;
        const extensions: ExtensionRow[] = await tx.manager.query(`SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE e.id = ANY($1::int[])`, [
          [...new Set(devices.map((d) => d.extensionId))],
        ]);
        const byId = new Map(extensions.map((e) => [e.id, e]));
        for (const device of devices) {
          const extension = byId.get(device.extensionId);
          if (!extension) continue;
          publishRegistration(tx, { type: "EXPIRED", tenantId: device.tenantId, extension, device, occurredAt: new Date(device.expiresAt).toISOString() });
        }
        return devices.length;
      });
      total += expired;
      if (expired < BATCH) return total;
    }
  }
}
