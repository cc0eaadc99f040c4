import { IsDefined, IsInt, IsString, IsTimeZone, Length, Matches, Max, Min, ValidateIf } from "class-validator";
import { Field, InputType, Int } from "type-graphql";

export const SLUG_PATTERN = /^[a-z0-9-]{1,63}$/;
/** A DNS hostname: dot-separated labels of letters, digits and inner hyphens, 253 characters at most. */
export const HOSTNAME_PATTERN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
export const MAX_EXTENSIONS_CEILING = 1_000_000;
/**
 * An IANA zone name (Area/Location, or UTC). The shape check keeps out what Intl would also accept
 * but PostgreSQL reads differently: a bare offset such as "+01:00" is POSIX-style there, its sign inverted.
 */
export const TIME_ZONE_PATTERN = /^(?=.{1,64}$)[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;
const TIME_ZONE_MESSAGE = "The timezone must be an IANA time zone name such as Europe/Berlin or UTC.";

const present = (_: object, value: unknown) => value !== undefined;
const MAX_OUTBOUND_MESSAGE = "The max outbound calls must be a whole number from 0 to 100000.";
const CALLER_ID_MESSAGE = "The default caller ID must be one of the tenant's phone numbers (E.164).";

@InputType()
export class CreateTenantInput {
  @Field()
  @IsString({ message: "The name must be a string." })
  @Length(1, 255, { message: "The name must be between 1 and 255 characters." })
  name!: string;

  @Field()
  @IsString({ message: "The slug must be a string." })
  @Matches(SLUG_PATTERN, { message: "The slug may only contain lower-case letters, digits and hyphens (1 to 63 characters)." })
  slug!: string;

  @Field()
  @IsString({ message: "The SIP domain must be a string." })
  @Matches(HOSTNAME_PATTERN, { message: "The SIP domain must be a valid hostname." })
  sipDomain!: string;

  @Field(() => Int)
  @IsDefined({ message: "The max extensions field is required." })
  @IsInt({ message: "The max extensions must be an integer." })
  @Min(0, { message: "The max extensions must be at least 0." })
  @Max(MAX_EXTENSIONS_CEILING, { message: `The max extensions may not be greater than ${MAX_EXTENSIONS_CEILING}.` })
  maxExtensions!: number;

  @Field({ nullable: true, defaultValue: "UTC", description: "IANA time zone; its day is the wallboards' \"today\"." })
  @ValidateIf(present)
  @IsString({ message: TIME_ZONE_MESSAGE })
  @Matches(TIME_ZONE_PATTERN, { message: TIME_ZONE_MESSAGE })
  @IsTimeZone({ message: TIME_ZONE_MESSAGE })
  timezone?: string;

  @Field(() => Int, { nullable: true, defaultValue: 10, description: "How many outbound calls may be in progress at once (0 to 100000)." })
  @ValidateIf(present)
  @IsInt({ message: MAX_OUTBOUND_MESSAGE })
  @Min(0, { message: MAX_OUTBOUND_MESSAGE })
  @Max(100_000, { message: MAX_OUTBOUND_MESSAGE })
  maxOutboundCalls?: number;
}

@InputType()
export class UpdateTenantInput {
  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: "The name must be a string." })
  @Length(1, 255, { message: "The name must be between 1 and 255 characters." })
  name?: string;

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: "The slug must be a string." })
  @Matches(SLUG_PATTERN, { message: "The slug may only contain lower-case letters, digits and hyphens (1 to 63 characters)." })
  slug?: string;

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: "The SIP domain must be a string." })
  @Matches(HOSTNAME_PATTERN, { message: "The SIP domain must be a valid hostname." })
  sipDomain?: string;

  @Field(() => Int, { nullable: true })
  @ValidateIf(present)
  @IsInt({ message: "The max extensions must be an integer." })
  @Min(0, { message: "The max extensions must be at least 0." })
  @Max(MAX_EXTENSIONS_CEILING, { message: `The max extensions may not be greater than ${MAX_EXTENSIONS_CEILING}.` })
  maxExtensions?: number;

  @Field({ nullable: true })
  @ValidateIf(present)
  @IsString({ message: TIME_ZONE_MESSAGE })
  @Matches(TIME_ZONE_PATTERN, { message: TIME_ZONE_MESSAGE })
  @IsTimeZone({ message: TIME_ZONE_MESSAGE })
  timezone?: string;

  @Field(() => Int, { nullable: true })
  @ValidateIf(present)
  @IsInt({ message: MAX_OUTBOUND_MESSAGE })
  @Min(0, { message: MAX_OUTBOUND_MESSAGE })
  @Max(100_000, { message: MAX_OUTBOUND_MESSAGE })
  maxOutboundCalls?: number;

  @Field(() => String, { nullable: true, description: "One of the tenant's phone numbers, sent as the caller of outbound calls of extensions without their own; null removes it." })
  @ValidateIf((_: object, value: unknown) => value !== undefined && value !== null)
  @IsString({ message: CALLER_ID_MESSAGE })
  @Matches(/^\+[1-9][0-9]{6,14}$/, { message: CALLER_ID_MESSAGE })
  defaultCallerIdNumber?: string | null;
}
