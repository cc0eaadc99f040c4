import { IsOptional, IsString, Matches, MaxLength, ValidateIf } from "class-validator";
import { ArgsType, Field, ID, InputType, Int, ObjectType } from "type-graphql";
import { CallDestination, CallDestinationInput } from "../call-destination/call-destination.type";

export const E164_MESSAGE = "The number must be in E.164 format: + and 7 to 15 digits, e.g. +442071234567.";
const LABEL_MESSAGE = "The label must be a string of at most 255 characters.";

@ObjectType({ simpleResolvers: true, description: "A public number (DID) a tenant owns; calls to it go to its destination." })
export class PhoneNumber {
  @Field(() => ID)
  id!: number;

  @Field(() => ID)
  tenantId!: number;

  @Field({ description: "E.164, unique across the platform." })
  number!: string;

  @Field(() => String, { nullable: true })
  label!: string | null;

  @Field(() => CallDestination)
  destination!: CallDestination;

  @Field()
  createdAt!: Date;

  @Field()
  updatedAt!: Date;
}

@InputType()
export class CreatePhoneNumberInput {
  @Field(() => ID)
  tenantId!: string;

  @Field()
  @IsString({ message: E164_MESSAGE })
  @Matches(/^\+[1-9][0-9]{6,14}$/, { message: E164_MESSAGE })
  number!: string;

  @Field(() => String, { nullable: true })
  @ValidateIf((_: object, v: unknown) => v !== undefined && v !== null)
  @IsString({ message: LABEL_MESSAGE })
  @MaxLength(255, { message: LABEL_MESSAGE })
  label?: string | null;

  @Field(() => CallDestinationInput, { nullable: true, description: "Where its calls go; default HANGUP." })
  @IsOptional()
  destination?: CallDestinationInput | null;
}

@InputType()
export class UpdatePhoneNumberInput {
  @Field(() => String, { nullable: true, description: "null removes it." })
  @ValidateIf((_: object, v: unknown) => v !== undefined && v !== null)
  @IsString({ message: LABEL_MESSAGE })
  @MaxLength(255, { message: LABEL_MESSAGE })
  label?: string | null;

  @Field(() => CallDestinationInput, { nullable: true })
  @IsOptional()
  destination?: CallDestinationInput | null;
}

@ArgsType()
export class PhoneNumberPageArgs {
  @Field(() => Int, { nullable: true, description: "Page size, 0 to 100 (default 20)." })
  first?: number | null;

  @Field(() => String, { nullable: true, description: "The endCursor of the previous page." })
  after?: string | null;

  @Field(() => String, { nullable: true, description: "Matches the number (digits, with or without +) or the label, case-insensitive." })
  search?: string | null;
}
