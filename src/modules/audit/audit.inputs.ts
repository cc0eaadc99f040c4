import { IsDate, IsString, MaxLength, ValidateIf } from "class-validator";
import { ArgsType, Field, ID, InputType, Int } from "type-graphql";

const presentNotNull = (_: object, value: unknown) => value !== undefined && value !== null;

@InputType({ description: "Conditions on audit entries; all given conditions must hold." })
export class AuditFilter {
  @Field(() => String, { nullable: true, description: "e.g. extension, queue_agent, api_key." })
  @ValidateIf(presentNotNull)
  @IsString({ message: "The entity type must be a string of at most 32 characters." })
  @MaxLength(32, { message: "The entity type must be a string of at most 32 characters." })
  entityType?: string | null;

  @Field(() => ID, { nullable: true, description: "The entity's GraphQL id (combine with entityType: ids repeat across types)." })
  @ValidateIf(presentNotNull)
  @IsString({ message: "The entity id must be a string of at most 64 characters." })
  @MaxLength(64, { message: "The entity id must be a string of at most 64 characters." })
  entityId?: string | null;

  @Field(() => String, { nullable: true, description: "e.g. extension.updated." })
  @ValidateIf(presentNotNull)
  @IsString({ message: "The action must be a string of at most 64 characters." })
  @MaxLength(64, { message: "The action must be a string of at most 64 characters." })
  action?: string | null;

  @Field(() => ID, { nullable: true, description: "Changes made with this API key." })
  apiKeyId?: string | null;

  @Field(() => Date, { nullable: true, description: "Entries at or after this instant." })
  @ValidateIf(presentNotNull)
  @IsDate({ message: "The from field must be a date-time." })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: "Entries before this instant (exclusive)." })
  @ValidateIf(presentNotNull)
  @IsDate({ message: "The to field must be a date-time." })
  to?: Date | null;
}

@ArgsType()
export class AuditLogArgs {
  @Field(() => ID, { nullable: true, description: "Tenant keys may omit it (their own); an ADMIN who omits it sees every entry, platform keys' included." })
  tenantId?: string | null;

  @Field(() => AuditFilter, { nullable: true })
  filter?: AuditFilter | null;

  @Field(() => Int, { nullable: true, description: "Page size, 0 to 100 (default 20)." })
  first?: number | null;

  @Field(() => String, { nullable: true, description: "The endCursor of the previous page." })
  after?: string | null;
}
