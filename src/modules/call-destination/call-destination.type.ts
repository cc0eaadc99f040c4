import { Field, InputType, ObjectType, registerEnumType } from "type-graphql";

/**
 * Where a call goes (contract §11). Stored in lower case (as events and REST spell enum values), in
 * two columns of the owning table: `<name>_type` and `<name>_target`.
 */
export enum CallDestinationType {
  EXTENSION = "extension",
  RING_GROUP = "ring_group",
  QUEUE = "queue",
  VOICEMAIL = "voicemail",
  EXTERNAL = "external",
  HANGUP = "hangup",
}
registerEnumType(CallDestinationType, { name: "CallDestinationType" });

/** The stored values, for a column's CHECK constraint. */
export const CALL_DESTINATION_TYPES = Object.values(CallDestinationType);

@ObjectType({ simpleResolvers: true, description: "Where a call goes: an extension, ring group or queue of the tenant, a mailbox, an E.164 number, or nowhere." })
export class CallDestination {
  @Field(() => CallDestinationType)
  type!: CallDestinationType;

  @Field(() => String, {
    nullable: true,
    description: "EXTENSION, RING_GROUP, QUEUE: its dialable number; VOICEMAIL: the extension's number; EXTERNAL: an E.164 number; HANGUP: null.",
  })
  target!: string | null;
}

@InputType()
export class CallDestinationInput {
  @Field(() => CallDestinationType)
  type!: CallDestinationType;

  @Field(() => String, { nullable: true })
  target?: string | null;
}
