import { IsBoolean, IsDefined, IsEnum, IsInt, IsString, Length, Matches, Min, ValidateIf } from "class-validator";
import { Field, ID, InputType } from "type-graphql";
import { QueueStrategy } from "./queue.entity";

export const QUEUE_NUMBER_PATTERN = /^[0-9]{1,20}$/;

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
