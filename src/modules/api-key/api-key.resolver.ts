import { Arg, Ctx, Field, ID, Mutation, ObjectType, Query, Resolver } from "type-graphql";
import { requirePrincipal } from "../../auth/access";
import { Role } from "../../auth/role";
import type { RequestContext } from "../../context/request-context";
import { ApiKey } from "./api-key.entity";
import { CreateApiKeyInput, CreatedApiKey } from "./api-key.inputs";

@ObjectType({ simpleResolvers: true, description: "The caller, as its API key identifies it." })
export class Principal {
  @Field(() => Role)
  role!: Role;

  @Field(() => ID, { nullable: true })
  tenantId!: number | null;
}

@Resolver()
export class ApiKeyResolver {
  @Query(() => Principal)
  me(@Ctx() ctx: RequestContext): Principal {
    const { role, tenantId } = requirePrincipal(ctx);
    return { role, tenantId };
  }

  @Query(() => [ApiKey], { description: "API keys: every key for ADMIN (or one tenant's), the own tenant's for TENANT_ADMIN." })
  apiKeys(@Arg("tenantId", () => ID, { nullable: true }) tenantId: string | null, @Ctx() ctx: RequestContext) {
    return ctx.services.apiKeys.list(ctx, tenantId);
  }

  @Mutation(() => CreatedApiKey)
  createApiKey(@Arg("input", () => CreateApiKeyInput) input: CreateApiKeyInput, @Ctx() ctx: RequestContext) {
    return ctx.services.apiKeys.create(ctx, input);
  }

  @Mutation(() => ID)
  revokeApiKey(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.apiKeys.revoke(ctx, id);
  }
}
