import { IsBoolean, IsDefined, IsEnum, IsInt, IsString, Length, Matches, Max, Min, ValidateIf } from "class-validator";
import { Field, ID, InputType, Int } from "type-graphql";
import { CallDestinationInput } from "../call-destination/call-destination.type";
import { QueueStrategy } from "./queue.entity";

export const QUEUE_NUMBER_PATTERN = /^[0-9]{1,20}$/;
export const DEFAULT_SERVICE_LEVEL_SECONDS = 20;
export const MAX_SERVICE_LEVEL_SECONDS = 3600;
export const DEFAULT_AGENT_RING_SECONDS = 15;
export const DEFAULT_MAX_WAIT_SECONDS = 300;

/** Validate when the field was sent; undefined means "not given". */
const present = (_: object, value: unknown) => value !== undefined;
/** Validate when sent and not null; null on an optional field means "not given". */
const presentNotNull = (_: object, value: unknown) => value !== undefined && value !== null;

const M = {
  name: "The name must be a string of 1 to 255 characters.",
  number: "The queue number must be 1 to 20 digits.",
  strategy: `The strategy must be one of ${Object.keys(QueueStrategy).join(", ")}.`,
  penalty: "The penalty must be a whole number of at least 0.",
  paused: "The paused field must be true or false.",
  serviceLevelSeconds: `The service level seconds must be a whole number from 1 to ${MAX_SERVICE_LEVEL_SECONDS}.`,
  agentRingSeconds: "The agent ring seconds must be a whole number from 5 to 300.",
  maxWaitSeconds: "The max wait seconds must be a whole number from 5 to 3600.",
};

/** The queue rules of the contract, in one place for every transport. */
@InputType()
export class CreateQueueInput {
  @Field(() => ID)
  @IsDefined({ message: "The tenant id field is required." })
  tenantId!: string | number;

  @Field()
  @IsString({ message: M.name })
  @Length(1, 255, { message: M.name })
  name!: string;

  @Field({ description: "Dialable: digits only, 1 to 20, unique among the tenant's queues." })
  @IsString({ message: M.number })
  @Matches(QUEUE_NUMBER_PATTERN, { message: M.number })
  number!: string;

  @Field(() => QueueStrategy, { nullable: true, defaultValue: QueueStrategy.RING_ALL })
  @ValidateIf(presentNotNull)
  @IsEnum(QueueStrategy, { message: M.strategy })
  strategy?: QueueStrategy | null;

  @Field(() => Int, {
    nullable: true,
    defaultValue: DEFAULT_SERVICE_LEVEL_SECONDS,
    description: "Service-level target: calls answered within this many seconds (1 to 3600) meet it.",
  })
  @ValidateIf(presentNotNull)
  @IsInt({ message: M.serviceLevelSeconds })
  @Min(1, { message: M.serviceLevelSeconds })
  @Max(MAX_SERVICE_LEVEL_SECONDS, { message: M.serviceLevelSeconds })
  serviceLevelSeconds?: number | null;

  @Field(() => Int, { nullable: true, defaultValue: DEFAULT_AGENT_RING_SECONDS, description: "How long one offer rings an agent (5 to 300 s)." })
  @ValidateIf(presentNotNull)
  @IsInt({ message: M.agentRingSeconds })
  @Min(5, { message: M.agentRingSeconds })
  @Max(300, { message: M.agentRingSeconds })
  agentRingSeconds?: number | null;

  @Field(() => Int, { nullable: true, defaultValue: DEFAULT_MAX_WAIT_SECONDS, description: "How long a caller waits at most (5 to 3600 s), then timeoutDestination." })
  @ValidateIf(presentNotNull)
  @IsInt({ message: M.maxWaitSeconds })
  @Min(5, { message: M.maxWaitSeconds })
  @Max(3600, { message: M.maxWaitSeconds })
  maxWaitSeconds?: number | null;

  @Field(() => CallDestinationInput, { nullable: true, description: "Where a caller goes after maxWaitSeconds (default HANGUP)." })
  timeoutDestination?: CallDestinationInput | null;
}

@InputType()
export class UpdateQueueInput {
  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: M.name })
  @Length(1, 255, { message: M.name })
  name?: string;

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: M.number })
  @Matches(QUEUE_NUMBER_PATTERN, { message: M.number })
  number?: string;

  @Field(() => QueueStrategy, { nullable: true })
  @ValidateIf(present)
  @IsEnum(QueueStrategy, { message: M.strategy })
  strategy?: QueueStrategy;

  @Field(() => Int, { nullable: true })
  @ValidateIf(present)
  @IsInt({ message: M.serviceLevelSeconds })
  @Min(1, { message: M.serviceLevelSeconds })
  @Max(MAX_SERVICE_LEVEL_SECONDS, { message: M.serviceLevelSeconds })
  serviceLevelSeconds?: number;

  @Field(() => Int, { nullable: true })
  @ValidateIf(present)
  @IsInt({ message: M.agentRingSeconds })
  @Min(5, { message: M.agentRingSeconds })
  @Max(300, { message: M.agentRingSeconds })
  agentRingSeconds?: number;

  @Field(() => Int, { nullable: true })
  @ValidateIf(present)
  @IsInt({ message: M.maxWaitSeconds })
  @Min(5, { message: M.maxWaitSeconds })
  @Max(3600, { message: M.maxWaitSeconds })
  maxWaitSeconds?: number;

  @Field(() => CallDestinationInput, { nullable: true })
  timeoutDestination?: CallDestinationInput | null;
}

/**
 * The settings of one enrolment (the arguments of addQueueAgent and updateQueueAgent). Not a
 * GraphQL input type: the contract passes them as plain arguments; null means "not given".
 */
export class QueueAgentSettings {
  @ValidateIf(presentNotNull)
  @IsInt({ message: M.penalty })
  @Min(0, { message: M.penalty })
  penalty?: number | null;

  @ValidateIf(presentNotNull)
  @IsBoolean({ message: M.paused })
  paused?: boolean | null;
}
