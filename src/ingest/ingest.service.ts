import { requireRole } from "../auth/access";
import { Role } from "../auth/role";
import { AppError, ErrorCode, type FieldErrors } from "../common/errors";
import type { RequestContext } from "../context/request-context";
import { transactional } from "../db/transaction";
import type { DeviceService, RegistrationBook } from "../modules/device/device.service";
import { RegistrationInput, UnregistrationInput } from "../modules/device/device.inputs";
import type { Transport } from "../modules/device/device.entity";
import type { ExtensionRow } from "../modules/extension/extension.service";
import { publishRegistration } from "../subscriptions/events";
import { publishQueueChange } from "../subscriptions/queue-stats-feed";
import { applyCallEvent, CallLegs } from "./call-events";
import { applyQueueEvent } from "./queue-events";
import { Resolution } from "./resolution";
import { parseTelephonyEvent, type CallEventInput, type QueueEventInput, type RegistrationEventInput, type TelephonyEvent } from "./telephony-event";
import { applyTrunkEvent, isTrunkEvent } from "./trunk-events";

export type IngestOutcome =
  | { status: "applied" | "duplicate" | "ignored"; type: string; action: string; reason?: string }
  | { status: "rejected"; code: ErrorCode; message: string; errors?: FieldErrors };

export interface ResolvedTarget {
  tenantId: number;
  extension: ExtensionRow;
}

export interface IngestOptions {
  /**
   * Asked before each transaction of a batch, with the longest one so far (ms); false stops the
   * batch there (the server is shutting down): the events not reached are answered `rejected` with
   * code SERVICE_UNAVAILABLE.
   */
  proceed?: (stepMs: number) => boolean;
}

/**
 * Thrown when the handler could not run (the database is away) part-way through a batch: the
 * outcomes of the events already committed or refused, undefined for the rest.
 */
export class IngestInterrupted extends Error {
  constructor(
    readonly outcomes: ReadonlyArray<IngestOutcome | undefined>,
    override readonly cause: unknown,
  ) {
    super("ingestion was interrupted", { cause });
  }
}

/** Events applied in one transaction: enough to amortise its commit, few enough to keep its locks short. */
export const EVENTS_PER_TRANSACTION = 250;
/**
 * A large batch is split into up to this many lanes by extension (or queue) number, each applied in
 * its own transactions, side by side: the database and this process then work at once. Lanes lock
 * disjoint rows (a leg and a registration name their extension), so they never wait on each other.
 */
const MAX_LANES = 4;
/** Below this many events per lane a batch gains less from another lane than its extra commit costs. */
const MIN_EVENTS_PER_LANE = 20;

/** The outcome of an event a stopping server did not reach: nothing of it was applied. */
export const NOT_REACHED: IngestOutcome = {
  status: "rejected",
  code: ErrorCode.SERVICE_UNAVAILABLE,
  message: "The server is shutting down: this event was not applied. Send it again.",
};

interface Item {
  index: number;
  event: TelephonyEvent;
}

/**
 * The one handler of telephony events, for HTTP and the Redis stream alike. A batch is validated
 * first; its valid events are then applied in order, many per transaction: what they name (tenants,
 * extensions, queues) is resolved for all of them in one statement per kind, the rows they change
 * are locked and read at once (extensions and devices in id order, call legs by advisory lock in
 * hash order), and each event then writes what it changes, usually one statement. Every refusal is
 * known before anything is written, so a refused event changes nothing and the others still apply;
 * should a transaction fail anyway, its events are applied again one per transaction, so one bad
 * event cannot hold back the rest. Repeats and stale events are recognised and answered as such,
 * so at-least-once delivery is safe. Events are published after their transaction commits.
 */
export class IngestService {
  constructor(private readonly devices: DeviceService) {}

  /** The outcome of each event, by index. Throws IngestInterrupted when the database failed part-way. */
  async ingestMany(ctx: RequestContext, raws: readonly unknown[], options: IngestOptions = {}): Promise<IngestOutcome[]> {
    requireRole(ctx, Role.INGEST, Role.ADMIN);
    const outcomes: Array<IngestOutcome | undefined> = new Array(raws.length);
    const items: Item[] = [];
    for (const [index, raw] of raws.entries()) {
      // Trunk registration reports name no tenant or extension: applied on their own.
      if (isTrunkEvent(raw)) {
        outcomes[index] = await applyTrunkEvent(ctx, raw as object);
        continue;
      }
      const parsed = await parseTelephonyEvent(raw);
      if ("errors" in parsed) outcomes[index] = { status: "rejected", code: ErrorCode.BAD_USER_INPUT, message: "The event is invalid.", errors: parsed.errors };
      else items.push({ index, event: parsed.event });
    }
    // Lanes by extension (or queue) number run side by side; inside a lane events keep their order.
    const lanes = partition(items, Math.min(MAX_LANES, Math.ceil(items.length / MIN_EVENTS_PER_LANE)));
    const settled = await Promise.allSettled(lanes.map((lane) => this.applyLane(ctx, lane, outcomes, options)));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) throw new IngestInterrupted(outcomes, failed.reason);
    return outcomes as IngestOutcome[];
  }

  private async applyLane(ctx: RequestContext, items: readonly Item[], outcomes: Array<IngestOutcome | undefined>, options: IngestOptions): Promise<void> {
    let longestMs = 0;
    for (let start = 0; start < items.length; start += EVENTS_PER_TRANSACTION) {
      if (options.proceed && !options.proceed(longestMs)) {
        for (const item of items.slice(start)) outcomes[item.index] = NOT_REACHED;
        return;
      }
      const began = Date.now();
      await this.applyChunk(ctx, items.slice(start, start + EVENTS_PER_TRANSACTION), outcomes);
      longestMs = Math.max(longestMs, Date.now() - began);
    }
  }

  private async applyChunk(ctx: RequestContext, items: readonly Item[], outcomes: Array<IngestOutcome | undefined>): Promise<void> {
    try {
      const results = await transactional(ctx, (tx) => this.applyAll(tx, items));
      for (const [i, item] of items.entries()) outcomes[item.index] = results[i];
    } catch (error) {
      if (items.length > 1) {
        ctx.log.warn({ err: error, events: items.length }, "a transaction of telephony events failed; applying its events one per transaction");
        for (const item of items) await this.applyChunk(ctx, [item], outcomes);
      } else if (error instanceof AppError) {
        outcomes[items[0].index] = rejected(error);
      } else {
        throw error;
      }
    }
  }

  /** Applies the events in order inside one transaction; refusals are decided before any write. */
  private async applyAll(tx: RequestContext, items: readonly Item[]): Promise<IngestOutcome[]> {
    const events = items.map((item) => item.event);
    const resolution = await Resolution.of(tx, events);
    const targets = events.map((event) => (event.type === "queue" ? null : target(resolution, event)));
    const registrationTargets = targets.filter((t, i): t is ResolvedTarget => isTarget(t) && events[i].type === "registration");
    const calls = events.flatMap((event, i) => (event.type === "call" && isTarget(targets[i]) ? [{ target: targets[i], callId: event.call_id }] : []));
    const book = registrationTargets.length ? await this.devices.lockForRegistrations(tx, registrationTargets.map((t) => t.extension.id)) : null;
    const legs = await CallLegs.lock(tx, calls.map((c) => c.target), calls.map((c) => c.callId));
    const served = await queuesServedBy(tx, calls.map((c) => c.target.extension.id));
    const changedQueues: number[] = [];

    const outcomes: IngestOutcome[] = [];
    for (const [i, event] of events.entries()) {
      const found = targets[i];
      if (found instanceof AppError) {
        outcomes.push(rejected(found));
        continue;
      }
      let outcome: IngestOutcome;
      switch (event.type) {
        case "registration":
          outcome = await registration(tx, book!, found!, event);
          break;
        case "call":
          outcome = await call(tx, legs, resolution, found!, event);
          // An agent's calls make it busy or free in every queue it serves.
          if (outcome.status === "applied") changedQueues.push(...(served.get(found!.extension.id) ?? []));
          break;
        case "queue": {
          let queueId: number | null;
          [outcome, queueId] = await queueEvent(tx, resolution, event);
          if (outcome.status === "applied" && queueId !== null) changedQueues.push(queueId);
          break;
        }
      }
      outcomes.push(outcome);
    }
    await book?.write(tx);
    publishQueueChange(tx, changedQueues);
    return outcomes;
  }
}

/** Splits the items into `count` lanes by the number they name, keeping their order inside each lane. */
function partition(items: readonly Item[], count: number): Item[][] {
  if (count <= 1) return [items.slice()];
  const lanes: Item[][] = Array.from({ length: count }, () => []);
  for (const item of items) {
    const number = item.event.type === "queue" ? `q${item.event.queue}` : item.event.extension;
    let hash = 0;
    for (let i = 0; i < number.length; i++) hash = (hash * 31 + number.charCodeAt(i)) | 0;
    lanes[Math.abs(hash) % count].push(item);
  }
  return lanes.filter((lane) => lane.length > 0);
}

function isTarget(found: ResolvedTarget | AppError | null): found is ResolvedTarget {
  return found !== null && !(found instanceof AppError);
}

/** The event's tenant and extension, or why it has none. */
function target(resolution: Resolution, event: RegistrationEventInput | CallEventInput): ResolvedTarget | AppError {
  const tenantId = resolution.tenant(event);
  if (tenantId instanceof AppError) return tenantId;
  const extension = resolution.extension(tenantId, event.extension, "extension");
  if (extension instanceof AppError) return extension;
  if (event.type === "call" && event.queue !== undefined) {
    const queue = resolution.queue(tenantId, event.queue);
    if (queue instanceof AppError) return queue;
  }
  return { tenantId, extension };
}

function rejected(error: AppError): IngestOutcome {
  return { status: "rejected", code: error.code, message: error.message, ...(error.fields ? { errors: error.fields } : {}) };
}

async function registration(tx: RequestContext, book: RegistrationBook, { tenantId, extension }: ResolvedTarget, event: RegistrationEventInput): Promise<IngestOutcome> {
  const occurredAt = occurredAtOf(event);
  const base = { type: "registration", action: event.action };
  // Expires 0 is the SIP way to unregister.
  if (event.action === "register" && event.expires !== 0) {
    // The book refuses a disabled extension, read under the extension's row lock.
    const refused = book.refusal(extension.id);
    if (refused) return rejected(refused);
    const input = Object.assign(new RegistrationInput(), {
      contactUri: event.contact,
      userAgent: event.user_agent ?? null,
      sourceAddress: event.source_address ?? null,
      transport: (event.transport ?? null) as Transport | null,
      expiresInSeconds: event.expires,
      occurredAt,
    });
    const { device, change } = await book.register(tx, extension.id, input);
    if (!change) return { ...base, status: "ignored", reason: "older than the device's current registration" };
    publishRegistration(tx, { type: change as "REGISTERED" | "REFRESHED", tenantId, extension, device, occurredAt: occurredAt.toISOString() });
    return { ...base, status: "applied" };
  }
  // A contact of "*" (or none) ends every registration of the extension, as in SIP.
  const every = !event.contact || event.contact === "*";
  const contacts = book.liveContacts(extension.id).filter((contact) => every || contact === event.contact);
  let changed = 0;
  for (const contactUri of contacts) {
    const { device, change } = await book.unregister(tx, extension.id, Object.assign(new UnregistrationInput(), { contactUri, occurredAt }));
    if (!change) continue;
    changed++;
    publishRegistration(tx, { type: "UNREGISTERED", tenantId, extension, device, occurredAt: occurredAt.toISOString() });
  }
  return changed ? { ...base, status: "applied" } : { ...base, status: "duplicate", reason: "no device of the extension is registered with this contact" };
}

async function call(tx: RequestContext, legs: CallLegs, resolution: Resolution, found: ResolvedTarget, event: CallEventInput): Promise<IngestOutcome> {
  const queueId = event.queue === undefined ? undefined : (resolution.queue(found.tenantId, event.queue) as number);
  return { ...(await applyCallEvent(tx, legs, found, event, queueId)), type: "call", action: event.action };
}

/** The outcome, and the queue the event names (null when it names none that exists). */
async function queueEvent(tx: RequestContext, resolution: Resolution, event: QueueEventInput): Promise<[IngestOutcome, number | null]> {
  const tenantId = resolution.tenant(event);
  if (tenantId instanceof AppError) return [rejected(tenantId), null];
  const queueId = resolution.queue(tenantId, event.queue);
  if (queueId instanceof AppError) return [rejected(queueId), null];
  let agentId: number | null = null;
  if (event.action === "answer") {
    const agent = resolution.extension(tenantId, event.agent as string, "agent");
    if (agent instanceof AppError) return [rejected(agent), queueId];
    agentId = agent.id;
  }
  return [{ ...(await applyQueueEvent(tx, tenantId, queueId, agentId, event)), type: "queue", action: event.action }, queueId];
}

/** The queues each of these extensions serves as an agent, in one statement. */
async function queuesServedBy(tx: RequestContext, extensionIds: readonly number[]): Promise<Map<number, number[]>> {
  const served = new Map<number, number[]>();
  if (extensionIds.length === 0) return served;
  const rows: Array<{ extensionId: number; queueId: number }> = await tx.manager.query(
    `SELECT extension_id AS "extensionId", queue_id AS "queueId" FROM queue_agent WHERE extension_id = ANY($1::int[])`,
    [[...new Set(extensionIds)]],
  );
  for (const row of rows) served.set(row.extensionId, [...(served.get(row.extensionId) ?? []), row.queueId]);
  return served;
}

export function occurredAtOf(event: { occurred_at?: string }): Date {
  return event.occurred_at ? new Date(event.occurred_at) : new Date();
}
