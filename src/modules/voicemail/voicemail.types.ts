import { Field, ID, Int, ObjectType, registerEnumType } from "type-graphql";
import { SEQUENCE_DESCRIPTION } from "../../subscriptions/live.resolver";
import { Extension } from "../extension/extension.entity";
import { VoicemailMessage } from "./voicemail-message.entity";

@ObjectType({ simpleResolvers: true, description: "An extension's mailbox in two figures: what a message-waiting indicator shows." })
export class VoicemailSummary {
  @Field(() => Int)
  unheard!: number;

  @Field(() => Int)
  total!: number;
}

export enum VoicemailEventType {
  NEW = "NEW",
  HEARD = "HEARD",
  UNHEARD = "UNHEARD",
  DELETED = "DELETED",
}
registerEnumType(VoicemailEventType, { name: "VoicemailEventType" });

@ObjectType({ simpleResolvers: true, description: "A message arrived, was marked heard or unheard, or was deleted; `summary` is the mailbox after it." })
export class VoicemailEvent {
  @Field(() => VoicemailEventType)
  type!: VoicemailEventType;

  @Field(() => ID)
  tenantId!: number;

  @Field(() => Extension)
  extension!: Extension;

  @Field(() => VoicemailMessage, { description: "The message as of this event (for DELETED: as it was)." })
  message!: VoicemailMessage;

  @Field(() => VoicemailSummary)
  summary!: VoicemailSummary;

  @Field()
  occurredAt!: Date;

  @Field(() => String, { description: SEQUENCE_DESCRIPTION })
  sequence!: string;
}
