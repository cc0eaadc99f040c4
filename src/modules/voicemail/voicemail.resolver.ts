import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import { notFound } from "../../common/errors";
import type { RequestContext } from "../../context/request-context";
import { connectionComplexity, connectionType } from "../../graphql/connection";
import type { VoicemailEventPayload } from "../../subscriptions/events";
import { AFTER_DESCRIPTION, tenantOrExtensionPlan, type Data } from "../../subscriptions/live.resolver";
import { Cdr } from "../cdr/cdr.entity";
import type { CdrRow } from "../cdr/cdr.service";
import { Extension } from "../extension/extension.entity";
import type { ExtensionRow } from "../extension/extension.service";
import { VoicemailMessage } from "./voicemail-message.entity";
import { VoicemailPageArgs } from "./voicemail.inputs";
import type { VoicemailRow, VoicemailSummary as Summary } from "./voicemail.service";
import { VoicemailEvent, VoicemailSummary } from "./voicemail.types";

export const VoicemailMessageConnection = connectionType(VoicemailMessage, "VoicemailMessage");

/** Where a message's audio is downloaded (the REST route of contract §8). */
export const audioPath = (id: number | string): string => `/api/voicemail/${id}/audio`;

/** A message inside an event carries its extension's snapshot, so it still resolves once the message (or extension) is gone. */
type MessageRoot = VoicemailRow & { extension?: ExtensionRow };

const voicemailPlan = (data: Data) =>
  tenantOrExtensionPlan(data, "voicemail", (payload) => (payload as VoicemailEventPayload).extension.id);

@Resolver(() => VoicemailMessage)
export class VoicemailResolver {
  @Query(() => VoicemailMessage, { description: "One voicemail message; another tenant's answers NOT_FOUND." })
  voicemailMessage(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.voicemail.get(ctx, id);
  }

  @Mutation(() => VoicemailMessage, { description: "Marks a message heard (or, with heard: false, unheard again). TENANT_ADMIN or ADMIN." })
  markVoicemailHeard(
    @Arg("id", () => ID) id: string,
    @Arg("heard", () => Boolean, { nullable: true, defaultValue: true }) heard: boolean | null,
    @Ctx() ctx: RequestContext,
  ) {
    return ctx.services.voicemail.markHeard(ctx, id, heard ?? true);
  }

  @Mutation(() => ID, { description: "Deletes a message and its audio. TENANT_ADMIN or ADMIN." })
  deleteVoicemailMessage(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.voicemail.delete(ctx, id);
  }

  @FieldResolver(() => Extension)
  async extension(@Root() message: MessageRoot, @Ctx() ctx: RequestContext) {
    if (message.extension) return message.extension;
    const extension = await ctx.loaders.extension.load(message.extensionId);
    if (!extension) throw notFound("Extension");
    return extension;
  }

  @FieldResolver(() => String, { description: "The path of the audio download: GET it with a reading key of the tenant (Range requests supported)." })
  audioUrl(@Root() message: MessageRoot): string {
    return audioPath(message.id);
  }

  @FieldResolver(() => Cdr, { nullable: true, description: "The CDR leg of the call that left the message (same callId), once it exists." })
  cdr(@Root() message: MessageRoot, @Ctx() ctx: RequestContext): Promise<CdrRow | null> | null {
    if (!message.callId) return null;
    return ctx.loaders.cdrOfCall.load({ tenantId: message.tenantId, extensionId: message.extensionId, callId: message.callId });
  }

  @Subscription(() => VoicemailEvent, {
    subscribe: voicemailPlan,
    description: "Voicemail of the tenant, or of one extension: the message-waiting indicator. An ADMIN who names neither receives every tenant's.",
  })
  voicemailEvents(
    @Root() event: VoicemailEventPayload,
    @Arg("tenantId", () => ID, { nullable: true }) _tenantId: string | null,
    @Arg("extensionId", () => ID, { nullable: true }) _extensionId: string | null,
    @Arg("after", () => String, { nullable: true, description: AFTER_DESCRIPTION }) _after: string | null,
  ): VoicemailEventPayload {
    return { ...event, message: { ...event.message, extension: event.extension } as MessageRoot };
  }
}

@Resolver(() => Extension)
export class ExtensionVoicemailResolver {
  @FieldResolver(() => VoicemailMessageConnection, { complexity: connectionComplexity, description: "The extension's voicemail, newest first." })
  voicemailMessages(@Root() extension: ExtensionRow, @Args() args: VoicemailPageArgs, @Ctx() ctx: RequestContext) {
    return ctx.services.voicemail.forExtension(ctx, extension.id, args);
  }

  @FieldResolver(() => VoicemailSummary)
  voicemailSummary(@Root() extension: ExtensionRow, @Ctx() ctx: RequestContext): Promise<Summary> {
    return ctx.loaders.voicemailSummaryByExtension.load(extension.id);
  }
}
