import { IsDefined, IsEnum, IsInt, IsString, Length, Matches, Max, Min, ValidateIf } from "class-validator";
import { Field, ID, InputType, Int } from "type-graphql";
import { CallDestinationInput, CallDestinationType } from "../call-destination/call-destination.type";
import { RingGroupStrategy } from "./ring-group.types";

export const RING_GROUP_NUMBER_PATTERN = /^[0-9]{1,20}$/;
export const DEFAULT_RING_GROUP_SECONDS = 20;
export const MIN_RING_SECONDS = 5;
export const MAX_RING_SECONDS = 120;
export const MAX_POSITION = 1000;

const present = (_: object, value: unknown) => value !== undefined;
const presentNotNull = (_: object, value: unknown) => value !== undefined && value !== null;

const M = {
  name: "The name must be a string of 1 to 255 characters.",
  number: "The ring group number must be 1 to 20 digits.",
  strategy: `The strategy must be one of ${Object.keys(RingGroupStrategy).join(", ")}.`,
  ringSeconds: `The ring seconds must be a whole number from ${MIN_RING_SECONDS} to ${MAX_RING_SECONDS}.`,
  position: `The position must be a whole number from 0 to ${MAX_POSITION}.`,
};

/** The ring group rules, in one place for every transport; the fallback is judged by validateDestination. */
@InputType()
export class CreateRingGroupInput {
  @Field(() => ID)
  @IsDefined({ message: "The tenant id field is required." })
  tenantId!: string | number;

  @Field()
  @IsString({ message: M.name })
  @Length(1, 255, { message: M.name })
  name!: string;

  @Field()
  @IsString({ message: M.number })
  @Matches(RING_GROUP_NUMBER_PATTERN, { message: M.number })
  number!: string;

  @Field(() => RingGroupStrategy, { nullable: true, defaultValue: RingGroupStrategy.SIMULTANEOUS })
  @ValidateIf(presentNotNull)
  @IsEnum(RingGroupStrategy, { message: M.strategy })
  strategy?: RingGroupStrategy | null;

  @Field(() => Int, { nullable: true, defaultValue: DEFAULT_RING_GROUP_SECONDS })
  @ValidateIf(presentNotNull)
  @IsInt({ message: M.ringSeconds })
  @Min(MIN_RING_SECONDS, { message: M.ringSeconds })
  @Max(MAX_RING_SECONDS, { message: M.ringSeconds })
  ringSeconds?: number | null;

  @Field(() => CallDestinationInput, { nullable: true, defaultValue: { type: CallDestinationType.HANGUP }, description: "Where an unanswered call goes; HANGUP when absent." })
  fallback?: CallDestinationInput | null;
}

@InputType()
export class UpdateRingGroupInput {
  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: M.name })
  @Length(1, 255, { message: M.name })
  name?: string;

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: M.number })
  @Matches(RING_GROUP_NUMBER_PATTERN, { message: M.number })
  number?: string;

  @Field(() => RingGroupStrategy, { nullable: true })
  @ValidateIf(present)
  @IsEnum(RingGroupStrategy, { message: M.strategy })
  strategy?: RingGroupStrategy;

  @Field(() => Int, { nullable: true })
  @ValidateIf(present)
  @IsInt({ message: M.ringSeconds })
  @Min(MIN_RING_SECONDS, { message: M.ringSeconds })
  @Max(MAX_RING_SECONDS, { message: M.ringSeconds })
  ringSeconds?: number;

  @Field(() => CallDestinationInput, { nullable: true })
  fallback?: CallDestinationInput;
}

/** addRingGroupMember's position (a plain argument); null means "after the last". */
export class RingGroupMemberSettings {
  @ValidateIf(presentNotNull)
  @IsInt({ message: M.position })
  @Min(0, { message: M.position })
  @Max(MAX_POSITION, { message: M.position })
  position?: number | null;
}
