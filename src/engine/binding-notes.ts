import { connectRedis, type RedisClient, type RedisTopology } from "../events/redis-topology";
import type { Logger } from "../common/logger";
import type { LoggedEvent, RelaySink } from "../events/event-log";
import { ExtensionStatus } from "../modules/extension/extension.entity";
import type { ExtensionEventPayload } from "../subscriptions/events";

/**
 * Notes for the SIP engine, beside the stream it writes: "this extension was disabled or deleted".
 *
 * Kamailio keeps registrations in memory and asks `sip_subscriber` on every call and every
 * REGISTER, so it refuses a disabled extension at once and drops the binding it held then. What
 * it cannot see there is an extension disabled and enabled again before any call or refresh came:
 * the view shows it active both times, and the engine would reach the phone while the product
 * (which unregistered the devices on disable) says "not registered". So for every extension that
 * is disabled or deleted the product leaves the key `<stream>:unbind:<number>@<domain>`; the
 * engine drops that AoR's bindings and deletes the key at the next call to it or REGISTER of it
 * (deploy/kamailio/routes/calls.cfg, registrar.cfg). The engine is never told where the product
 * runs, nor the product where the engine runs: they share the Redis they already share.
 *
 * Written from the event log's relay (each event once, after its commit), never blocking it: a
 * note lost to a Redis outage leaves the gap above open for that extension, and is logged.
 */
export const UNBIND_SUFFIX = ":unbind:";
/** Longer than any binding lives (the shipped registrar's max_expires is 3600 s): after it, nothing is left to drop. */
export const UNBIND_TTL_SECONDS = 86_400;

export class EngineBindingNotes {
  private readonly redis: RedisClient;

  /** `streamKey`: the stream as the engine names it (REDIS_PREFIX included). */
  constructor(
    redis: RedisTopology,
    private readonly streamKey: string,
    private readonly log: Logger,
  ) {
    // Connects on the first note; a command waits at most a second (redis/ioredis#2197).
    this.redis = connectRedis(redis, { connectionName: "pbx-api:binding-notes", lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout: 1_000 });
    this.redis.on("error", () => undefined); // the pub/sub reports Redis outages; a lost note is logged below
  }

  readonly relaySink: RelaySink = {
    inTransaction: async (manager, tenantId, events) => {
      const numbers = events.filter(unbinds).map((e) => (e.payload as unknown as ExtensionEventPayload).extension.extensionNumber);
      if (numbers.length === 0) return false;
      const [tenant]: Array<{ sipDomain: string }> = await manager.query(`SELECT sip_domain AS "sipDomain" FROM tenant WHERE id = $1`, [tenantId]);
      if (tenant) void this.note(numbers.map((number) => `${number}@${tenant.sipDomain}`));
      return false;
    },
  };

  private async note(aors: string[]): Promise<void> {
    try {
      // One SET per key, not a MULTI: in a Redis Cluster the keys lie in different slots.
      await Promise.all(aors.map((aor) => this.redis.set(`${this.streamKey}${UNBIND_SUFFIX}${aor}`, "1", "EX", UNBIND_TTL_SECONDS)));
    } catch (error) {
      this.log.warn({ err: error, aors }, "could not leave the SIP engine its note to drop these bindings");
    }
  }

  close(): void {
    this.redis.disconnect();
  }
}

/** An extension disabled (an update that leaves it disabled) or deleted. */
function unbinds(event: LoggedEvent): boolean {
  if (event.kind !== "extensions") return false;
  const payload = event.payload as unknown as ExtensionEventPayload;
  return payload.type === "DELETED" || (payload.type === "UPDATED" && payload.extension.status === ExtensionStatus.DISABLED);
}
