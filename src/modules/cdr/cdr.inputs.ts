import { IsDate, IsEnum, IsString, MaxLength, ValidateIf } from "class-validator";
import { ArgsType, Field, ID, InputType, Int } from "type-graphql";
import { CallDirection, CallDisposition } from "./cdr.entity";

export const CDR_NUMBER_MAX = 64;

/** Validate when sent and not null; null means "no condition". */
const presentNotNull = (_: object, value: unknown) => value !== undefined && value !== null;

@InputType({ description: "Conditions on CDRs; all given conditions must hold." })
export class CdrFilter {
  @Field(() => Date, { nullable: true, description: "Calls that started at or after this instant." })
  @ValidateIf(presentNotNull)
  @IsDate({ message: "The from field must be a date-time." })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: "Calls that started before this instant (exclusive)." })
  @ValidateIf(presentNotNull)
  @IsDate({ message: "The to field must be a date-time." })
  to?: Date | null;

  @Field(() => ID, { nullable: true, description: "Calls of this extension of the tenant." })
  extensionId?: string | null;

  @Field(() => CallDirection, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsEnum(CallDirection, { message: "The direction must be INBOUND, OUTBOUND or INTERNAL." })
  direction?: CallDirection | null;

  @Field(() => CallDisposition, { nullable: true })
  @ValidateIf(presentNotNull)
  @IsEnum(CallDisposition, { message: "The disposition must be ANSWERED, NO_ANSWER, BUSY, FAILED or VOICEMAIL." })
  disposition?: CallDisposition | null;

  @Field(() => String, { nullable: true, description: "Exact match on the caller's or the callee's number; blank means no condition." })
  @ValidateIf(presentNotNull)
  @IsString({ message: `The number must be a string of at most ${CDR_NUMBER_MAX} characters.` })
  @MaxLength(CDR_NUMBER_MAX, { message: `The number must be a string of at most ${CDR_NUMBER_MAX} characters.` })
  number?: string | null;

  @Field(() => ID, { nullable: true, description: "Calls through this trunk." })
  trunkId?: string | null;

  @Field(() => String, { nullable: true, description: "Calls involving this number of the tenant (the DID dialled or the caller ID sent); blank means no condition." })
  @ValidateIf(presentNotNull)
  @IsString({ message: "The phone number must be a string of at most 16 characters." })
  @MaxLength(16, { message: "The phone number must be a string of at most 16 characters." })
  phoneNumber?: string | null;
}

@ArgsType()
export class CdrPageArgs {
  @Field(() => Int, { nullable: true, description: "Page size, 0 to 100 (default 20)." })
  first?: number | null;

  @Field(() => String, { nullable: true, description: "The endCursor of the previous page." })
  after?: string | null;

  @Field(() => CdrFilter, { nullable: true })
  filter?: CdrFilter | null;
}

@ArgsType()
export class CdrsArgs extends CdrPageArgs {
  @Field(() => ID, { nullable: true, description: "Tenant keys may omit it (their own); an ADMIN names it or filters by an extension." })
  tenantId?: string | null;
}
