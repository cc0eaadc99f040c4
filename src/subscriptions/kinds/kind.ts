import type { LiveKind } from "../topics";

/**
 * One kind of event, described once: which live topics carry it, which webhook event name each
 * payload has, and what a webhook receives as `data`. Adding a kind is a file in this folder and a
 * line in the registry of events.ts.
 */
export interface EventKind<P extends { tenantId: number; type: string }> {
  /** Stored in event_log.kind; also the live topic kind when `live` is set. */
  name: string;
  /** Published to pub/sub (subscriptions) after commit; kinds without it only feed webhooks. */
  live: LiveKind | null;
  /** The webhook event name of a payload, e.g. `call.started`. */
  webhookType(payload: P): string;
  /** The webhook `data` (REST field names, never a secret or digest). */
  webhookData(payload: P): Record<string, unknown>;
}
