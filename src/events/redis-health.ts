import type { RedisClient } from "./redis-topology";
import type { Logger } from "../common/logger";

/** How often a continuing Redis outage is logged again after its first warning. */
export const OUTAGE_REMINDER_MS = 30_000;

/**
 * The state of this instance's Redis connections, for one line per outage instead of a stack
 * trace per reconnect attempt: a warning when the first connection drops, a reminder at most every
 * OUTAGE_REMINDER_MS while any is down, an info line when all are back.
 */
export class RedisHealth {
  private readonly down = new Set<string>();
  private since = 0;
  private lastReminder = 0;
  private droppedEvents = 0;

  constructor(
    private readonly log: Logger,
    private readonly reminderMs = OUTAGE_REMINDER_MS,
  ) {}

  /** Whether any connection is away now. */
  get isDown(): boolean {
    return this.down.size > 0;
  }

  attach(conn: RedisClient, name: string): void {
    conn.on("error", (error: Error) => this.lost(name, error));
    conn.on("close", () => {
      if (conn.status !== "end" || this.down.has(name)) this.lost(name);
    });
    conn.on("ready", () => this.back(name));
  }

  /** An event that could not be published while Redis is away (counted, reported with the reminder). */
  dropped(topic: string): void {
    this.droppedEvents++;
    if (!this.isDown) this.log.warn({ topic }, "a live event could not be published to Redis and was dropped");
    else this.remind();
  }

  private lost(name: string, error?: Error): void {
    if (this.closing) return;
    const first = this.down.size === 0;
    this.down.add(name);
    if (first) {
      this.since = Date.now();
      this.lastReminder = this.since;
      this.droppedEvents = 0;
      this.log.warn(
        { connection: name, reason: error?.message },
        "Redis is unreachable: /readyz answers 503, live events (subscriptions, key revocations) are not delivered across instances until it is back; committed writes still answer",
      );
      return;
    }
    this.remind();
  }

  private remind(): void {
    const now = Date.now();
    if (now - this.lastReminder < this.reminderMs) return;
    this.lastReminder = now;
    this.log.warn({ downForSeconds: Math.round((now - this.since) / 1000), droppedEvents: this.droppedEvents, connections: [...this.down] }, "Redis is still unreachable");
  }

  private back(name: string): void {
    if (!this.down.delete(name) || this.down.size > 0) return;
    this.log.info({ downForSeconds: Math.round((Date.now() - this.since) / 1000), droppedEvents: this.droppedEvents }, "Redis is reachable again");
  }

  private closing = false;

  /** Connections closed on purpose (shutdown) are no outage. */
  close(): void {
    this.closing = true;
  }
}

/** Closes a connection without waiting for a Redis that is away (quit would wait for a reconnect). */
export async function closeRedis(conn: RedisClient, timeoutMs = 1_000): Promise<void> {
  if (conn.status !== "ready") return void conn.disconnect();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    conn.quit().catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
  conn.disconnect();
}
