import type { RequestContext } from "../context/request-context";
import type { ActiveCallRow } from "../modules/active-call/active-call.service";
import type { CdrRow } from "../modules/cdr/cdr.service";
import type { DeviceRow } from "../modules/device/device.service";
import type { ExtensionRow } from "../modules/extension/extension.service";
import type { CallHandling } from "../modules/call-handling/call-handling.types";
import type { VoicemailRow, VoicemailSummary } from "../modules/voicemail/voicemail.service";
import { callKind } from "./kinds/call";
import { extensionKind } from "./kinds/extension";
import type { EventKind } from "./kinds/kind";
import { registrationKind } from "./kinds/registration";
import { voicemailKind } from "./kinds/voicemail";

export type RegistrationEventType = "REGISTERED" | "REFRESHED" | "UNREGISTERED" | "EXPIRED";
export type CallEventType = "STARTED" | "ANSWERED" | "HELD" | "RESUMED" | "ENDED";
export type ExtensionEventType = "CREATED" | "UPDATED" | "DELETED";
export type VoicemailEventType = "NEW" | "HEARD" | "UNHEARD" | "DELETED";

/**
 * What travels on pub/sub: snapshots of the rows as committed, so a subscriber's selection is
 * answered without reading the database again. Dates arrive as ISO strings (JSON). The relay adds
 * `sequence` (the event's place in its tenant's log, a decimal string).
 */
export interface RegistrationEventPayload {
  type: RegistrationEventType;
  tenantId: number;
  extension: ExtensionRow;
  device: DeviceRow;
  occurredAt: string;
  sequence?: string;
}

export interface CallEventPayload {
  type: CallEventType;
  tenantId: number;
  call: ActiveCallRow;
  cdr: CdrRow | null;
  occurredAt: string;
  sequence?: string;
}

export interface ExtensionEventPayload {
  type: ExtensionEventType;
  tenantId: number;
  extension: ExtensionRow;
  /** Set when the change was to the extension's call handling (contract §12): its new state. */
  callHandling?: CallHandling;
  occurredAt: string;
  sequence?: string;
}

/** A message arrived, was marked heard or unheard, or was deleted; `summary` is the mailbox as the change left it. */
export interface VoicemailEventPayload {
  type: VoicemailEventType;
  tenantId: number;
  extension: ExtensionRow;
  message: VoicemailRow;
  summary: VoicemailSummary;
  occurredAt: string;
  sequence?: string;
}

/** An event recorded during a transaction, written to the event log just before it commits. */
export interface PendingEvent {
  tenantId: number;
  kind: string;
  type: string;
  payload: { tenantId: number; type: string };
}

/** Every kind of event, by its event_log name: the relay and webhooks look kinds up here. */
export const EVENT_KINDS: ReadonlyMap<string, EventKind<never>> = new Map(
  [registrationKind, callKind, voicemailKind, extensionKind].map((kind) => [kind.name, kind as EventKind<never>]),
);

/**
 * The one door events leave by: the event joins the transaction's outbox, which `transactional`
 * writes to the tenant's event log as its last statement before COMMIT (so the sequence follows
 * commit order); the relay publishes it after the commit. A crash in between delays it, never loses it.
 */
function record<P extends { tenantId: number; type: string }>(ctx: RequestContext, kind: EventKind<P>, payload: P): void {
  if (!ctx.outbox) throw new Error("events are recorded inside transactional()");
  ctx.outbox.push({ tenantId: payload.tenantId, kind: kind.name, type: kind.webhookType(payload), payload });
}

export function publishRegistration(ctx: RequestContext, payload: RegistrationEventPayload): void {
  record(ctx, registrationKind, payload);
}

export function publishCall(ctx: RequestContext, payload: CallEventPayload): void {
  record(ctx, callKind, payload);
}

export function publishExtension(ctx: RequestContext, payload: ExtensionEventPayload): void {
  record(ctx, extensionKind, payload);
}

export function publishVoicemail(ctx: RequestContext, payload: VoicemailEventPayload): void {
  record(ctx, voicemailKind, payload);
}
