import { IsBoolean, IsInt, Max, Min, ValidateIf } from "class-validator";
import { Field, InputType, Int, ObjectType } from "type-graphql";
import { CallDestination, CallDestinationInput } from "../call-destination/call-destination.type";

export const DEFAULT_RING_SECONDS = 25;
export const MIN_RING_SECONDS = 5;
export const MAX_RING_SECONDS = 120;

/**
 * How calls to an extension are handled (contract §12), in this order: forwardAlways set → straight
 * there, the extension does not ring; doNotDisturb → busy; else its registered devices ring for
 * ringSeconds. Busy → forwardBusy, else voicemail when enabled, else 486. No answer or nothing
 * registered → forwardNoAnswer, else voicemail when enabled, else 480.
 */
@ObjectType({ simpleResolvers: true })
export class CallHandling {
  @Field()
  doNotDisturb!: boolean;

  @Field(() => Int, { description: `How long the extension's devices ring before a call counts as unanswered: ${MIN_RING_SECONDS} to ${MAX_RING_SECONDS} seconds.` })
  ringSeconds!: number;

  @Field(() => CallDestination, { nullable: true })
  forwardAlways!: CallDestination | null;

  @Field(() => CallDestination, { nullable: true })
  forwardBusy!: CallDestination | null;

  @Field(() => CallDestination, { nullable: true })
  forwardNoAnswer!: CallDestination | null;
}

const presentNotNull = (_: object, value: unknown) => value !== undefined && value !== null;
const RING = `The ring seconds must be a whole number from ${MIN_RING_SECONDS} to ${MAX_RING_SECONDS}.`;

/** A field left out keeps its value; a forward given as null is removed. Forwards are judged by validateDestination. */
@InputType()
export class CallHandlingInput {
  @Field(() => Boolean, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsBoolean({ message: "The do not disturb field must be true or false." })
  doNotDisturb?: boolean | null;

  @Field(() => Int, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsInt({ message: RING })
  @Min(MIN_RING_SECONDS, { message: RING })
  @Max(MAX_RING_SECONDS, { message: RING })
  ringSeconds?: number | null;

  @Field(() => CallDestinationInput, { nullable: true })
  forwardAlways?: CallDestinationInput | null;

  @Field(() => CallDestinationInput, { nullable: true })
  forwardBusy?: CallDestinationInput | null;

  @Field(() => CallDestinationInput, { nullable: true })
  forwardNoAnswer?: CallDestinationInput | null;
}
