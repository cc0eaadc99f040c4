import { IsDefined, IsInt, IsString, Length, Matches, Max, Min, ValidateIf } from "class-validator";
import { Field, InputType, Int } from "type-graphql";

export const SLUG_PATTERN = /^[a-z0-9-]{1,63}$/;
/** A DNS hostname: dot-separated labels of letters, digits and inner hyphens, 253 characters at most. */
export const HOSTNAME_PATTERN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
export const MAX_EXTENSIONS_CEILING = 1_000_000;

const present = (_: object, value: unknown) => value !== undefined;

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
}
