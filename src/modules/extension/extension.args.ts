import { ArgsType, Field, ID, Int } from "type-graphql";
import { ExtensionStatus } from "./extension.entity";

@ArgsType()
export class ExtensionPageArgs {
  @Field(() => Int, { nullable: true, description: "Page size, 0 to 100 (default 20)." })
  first?: number | null;

  @Field(() => String, { nullable: true, description: "The endCursor of the previous page." })
  after?: string | null;

  @Field(() => String, { nullable: true, description: "Case-insensitive match on number, display name or email." })
  search?: string | null;

  @Field(() => ExtensionStatus, { nullable: true })
  status?: ExtensionStatus | null;
}

@ArgsType()
export class ExtensionsArgs extends ExtensionPageArgs {
  @Field(() => ID, { nullable: true, description: "Tenant keys may omit it (their own); an ADMIN without it lists every tenant." })
  tenantId?: string | null;
}
