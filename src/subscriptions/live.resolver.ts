import { Arg, Ctx, Field, ID, ObjectType, registerEnumType, Resolver, Root, Subscription, type SubscribeResolverData } from "type-graphql";
import { readScope } from "../auth/access";
import { badInput, notFound } from "../common/errors";
import type { RequestContext } from "../context/request-context";
import { ActiveCall } from "../modules/active-call/active-call.entity";
import { Cdr } from "../modules/cdr/cdr.entity";
import { Device } from "../modules/device/device.entity";
import { Extension } from "../modules/extension/extension.entity";
import type { CallEventPayload, RegistrationEventPayload } from "./events";
import { liveSubscribe, type LivePlan, type LiveReplay } from "./live";
import { allTenantsTopic, tenantTopic, type LiveKind } from "./topics";

/** The `sequence` field and `after` argument every resumable event and subscription shares (contract §9). */
export const SEQUENCE_DESCRIPTION = "The event's place in its tenant's event log (a decimal number, increasing in commit order): resume with `after`.";
export const AFTER_DESCRIPTION = "Resume: first every logged event with a greater sequence, in order, then the live ones.";

export enum RegistrationEventType {
  REGISTERED = "REGISTERED",
  REFRESHED = "REFRESHED",
  UNREGISTERED = "UNREGISTERED",
  EXPIRED = "EXPIRED",
}
registerEnumType(RegistrationEventType, { name: "RegistrationEventType" });

export enum CallEventType {
  STARTED = "STARTED",
  ANSWERED = "ANSWERED",
  HELD = "HELD",
  RESUMED = "RESUMED",
  ENDED = "ENDED",
}
registerEnumType(CallEventType, { name: "CallEventType" });

@ObjectType({ simpleResolvers: true, description: "A device registered, refreshed, unregistered or expired." })
export class RegistrationEvent {
  @Field(() => RegistrationEventType)
  type!: RegistrationEventType;

  @Field(() => ID)
  tenantId!: number;

  @Field(() => Extension)
  extension!: Extension;

  @Field(() => Device)
  device!: Device;

  @Field()
  occurredAt!: Date;

  @Field(() => String, { description: SEQUENCE_DESCRIPTION })
  sequence!: string;
}

@ObjectType({ simpleResolvers: true, description: "A call leg started, was answered, held, resumed or ended (then `cdr` is its record)." })
export class ActiveCallEvent {
  @Field(() => CallEventType)
  type!: CallEventType;

  @Field(() => ID)
  tenantId!: number;

  @Field(() => ActiveCall, { description: "The leg as of this event (for ENDED: as it was when it ended)." })
  call!: ActiveCall;

  @Field(() => Cdr, { nullable: true })
  cdr!: Cdr | null;

  @Field()
  occurredAt!: Date;

  @Field(() => String, { description: SEQUENCE_DESCRIPTION })
  sequence!: string;
}

/** The live kinds a tenant's subscriptions follow and resume (each is also its event_log kind name). */
type TenantLiveKind = Exclude<LiveKind, "queues">;

export type Data = SubscribeResolverData<unknown, Record<string, unknown>, RequestContext>;

/** A resumed subscription: `after` needs one tenant, and a sequence the log still holds everything after. */
async function replayOf(ctx: RequestContext, kind: TenantLiveKind, tenantId: number | null, after: unknown): Promise<LiveReplay | undefined> {
  if (after === undefined || after === null) return undefined;
  if (tenantId === null) throw badInput({ after: ["Resuming with after needs one tenant: name tenantId."] });
  const from = await ctx.services.events.assertResumable(tenantId, String(after));
  return { after: from, read: (seq, limit) => ctx.services.events.read(tenantId, kind, seq, limit) };
}

/** The topic a tenant-scoped subscription listens on: the caller's tenant, one named tenant, or all (ADMIN). */
async function tenantPlan(ctx: RequestContext, kind: TenantLiveKind, tenantId: unknown, after: unknown): Promise<LivePlan> {
  const scope = readScope(ctx, tenantId as string | null | undefined);
  if (scope === null) {
    await replayOf(ctx, kind, null, after);
    return { topic: allTenantsTopic(kind) };
  }
  if (!(await ctx.loaders.tenant.load(scope))) throw notFound("Tenant");
  return { topic: tenantTopic(kind, scope), replay: await replayOf(ctx, kind, scope, after) };
}

async function registrationPlan({ args, context }: Data): Promise<AsyncIterable<unknown>> {
  return liveSubscribe(context, await tenantPlan(context, "registrations", args.tenantId, args.after), context.pubsub);
}

/**
 * The plan of a subscription scoped to the tenant or to one of its extensions (`extensionId`): the
 * tenant's topic of that kind, filtered to the extension's events by `extensionOf(payload)`.
 */
export async function tenantOrExtensionPlan(
  { args, context }: Data,
  kind: TenantLiveKind,
  extensionOf: (payload: unknown) => number,
): Promise<AsyncIterable<unknown>> {
  if (args.extensionId === undefined || args.extensionId === null) {
    return liveSubscribe(context, await tenantPlan(context, kind, args.tenantId, args.after), context.pubsub);
  }
  const scope = readScope(context, args.tenantId as string | null | undefined);
  const extension = await context.services.extensions.get(context, args.extensionId as string);
  if (scope !== null && extension.tenantId !== scope) throw notFound("Extension");
  const plan: LivePlan = {
    topic: tenantTopic(kind, extension.tenantId),
    filter: (payload) => extensionOf(payload) === extension.id,
    replay: await replayOf(context, kind, extension.tenantId, args.after),
  };
  return liveSubscribe(context, plan, context.pubsub);
}

const callPlan = (data: Data) => tenantOrExtensionPlan(data, "calls", (payload) => (payload as CallEventPayload).call.extensionId);

/**
 * Live registration and call events. Topics come from the authenticated scope, never from raw
 * arguments; another tenant's id answers NOT_FOUND. Over graphql-ws each event is executed once per
 * distinct subscription and the same bytes go to everyone who shares it (src/subscriptions/fanout-hub.ts).
 */
@Resolver()
export class LiveResolver {
  @Subscription(() => RegistrationEvent, {
    subscribe: registrationPlan,
    description: "Registrations of the tenant's devices. Tenant keys may omit tenantId; an ADMIN who omits it receives every tenant's.",
  })
  registrationEvents(
    @Root() event: RegistrationEventPayload,
    @Arg("tenantId", () => ID, { nullable: true }) _tenantId: string | null,
    @Arg("after", () => String, { nullable: true, description: AFTER_DESCRIPTION }) _after: string | null,
    @Ctx() _ctx: RequestContext,
  ): RegistrationEventPayload {
    return event;
  }

  @Subscription(() => ActiveCallEvent, {
    subscribe: callPlan,
    description: "Call-leg events of the tenant, or of one extension. An ADMIN who names neither receives every tenant's.",
  })
  activeCallEvents(
    @Root() event: CallEventPayload,
    @Arg("tenantId", () => ID, { nullable: true }) _tenantId: string | null,
    @Arg("extensionId", () => ID, { nullable: true }) _extensionId: string | null,
    @Arg("after", () => String, { nullable: true, description: AFTER_DESCRIPTION }) _after: string | null,
  ): CallEventPayload {
    return event;
  }
}
