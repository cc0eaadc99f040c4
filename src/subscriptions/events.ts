import type { RequestContext } from "../context/request-context";
import type { ActiveCallRow } from "../modules/active-call/active-call.service";
import type { CdrRow } from "../modules/cdr/cdr.service";
import type { DeviceRow } from "../modules/device/device.service";
import type { ExtensionRow } from "../modules/extension/extension.service";
import type { VoicemailRow, VoicemailSummary } from "../modules/voicemail/voicemail.service";
import { allTenantsTopic, tenantTopic, type LiveKind } from "./topics";

export type RegistrationEventType = "REGISTERED" | "REFRESHED" | "UNREGISTERED" | "EXPIRED";
export type CallEventType = "STARTED" | "ANSWERED" | "HELD" | "RESUMED" | "ENDED";

/**
 * What travels on pub/sub: snapshots of the rows as committed, so a subscriber's selection is
 * answered without reading the database again. Dates arrive as ISO strings (JSON).
 */
export interface RegistrationEventPayload {
  type: RegistrationEventType;
  tenantId: number;
  extension: ExtensionRow;
  device: DeviceRow;
  occurredAt: string;
}

export interface CallEventPayload {
  type: CallEventType;
  tenantId: number;
  call: ActiveCallRow;
  cdr: CdrRow | null;
  occurredAt: string;
}

function queue(ctx: RequestContext, kind: LiveKind, tenantId: number, payload: object): void {
  // Published only once the transaction has committed: a subscriber that queries on receipt sees the state.
  ctx.afterCommit.push(async () => {
    await Promise.all([ctx.pubsub.publish(tenantTopic(kind, tenantId), payload), ctx.pubsub.publish(allTenantsTopic(kind), payload)]);
  });
}

export function publishRegistration(ctx: RequestContext, payload: RegistrationEventPayload): void {
  queue(ctx, "registrations", payload.tenantId, payload);
}

export function publishCall(ctx: RequestContext, payload: CallEventPayload): void {
  queue(ctx, "calls", payload.tenantId, payload);
}

export type VoicemailEventType = "NEW" | "HEARD" | "UNHEARD" | "DELETED";

/** A message arrived, was marked heard or unheard, or was deleted; `summary` is the mailbox as the change left it. */
export interface VoicemailEventPayload {
  type: VoicemailEventType;
  tenantId: number;
  extension: ExtensionRow;
  message: VoicemailRow;
  summary: VoicemailSummary;
  occurredAt: string;
}

export function publishVoicemail(ctx: RequestContext, payload: VoicemailEventPayload): void {
  queue(ctx, "voicemail", payload.tenantId, payload);
}
