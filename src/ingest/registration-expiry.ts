import type { Logger } from "../common/logger";
import { Periodic } from "../common/periodic";
import type { Metrics } from "../observability/metrics";
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
 * Every finished sweep is counted (`pbx_registration_expiry_sweeps_total` by outcome), so an
 * operator sees a sweeper that fails, and a test can wait for sweeps instead of sleeping.
 */
export class RegistrationExpiry {
  private readonly periodic: Periodic;

  constructor(
    private readonly deps: ContextDeps,
    log: Logger,
    intervalMs: number,
    private readonly metrics: Metrics,
  ) {
    this.periodic = new Periodic("registration expiry sweep", intervalMs, () => this.countedSweep(), log);
  }

  /** Starts sweeping every interval; the first sweep runs at once (expiries due while every instance was down). */
  start(): void {
    void this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }

  private async countedSweep(): Promise<void> {
    try {
      const expired = await this.sweep();
      this.metrics.registrationsExpired.inc(expired);
      this.metrics.expirySweeps.inc({ outcome: "ok" });
    } catch (error) {
      this.metrics.expirySweeps.inc({ outcome: "failed" });
      throw error;
    }
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
