import type { GraphQLResolveInfo } from "graphql";
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root } from "type-graphql";
import { extensionPrefetch } from "../../graphql/extension-prefetch";
import type { RequestContext } from "../../context/request-context";
import { connectionComplexity } from "../../graphql/connection";
import { ExtensionPageArgs } from "../extension/extension.args";
import { ExtensionConnection } from "../extension/extension.resolver";
import { Tenant } from "./tenant.entity";
import { CreateTenantInput, UpdateTenantInput } from "./tenant.inputs";

@Resolver(() => Tenant)
export class TenantResolver {
  @Query(() => [Tenant], { description: "Every tenant for ADMIN; the caller's own for tenant keys." })
  tenants(@Ctx() ctx: RequestContext) {
    return ctx.services.tenants.list(ctx);
  }

  @Query(() => Tenant)
  tenant(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.tenants.get(ctx, id);
  }

  @FieldResolver(() => ExtensionConnection, { complexity: connectionComplexity })
  extensions(@Root() tenant: Tenant, @Args() args: ExtensionPageArgs, @Ctx() ctx: RequestContext, @Info() info: GraphQLResolveInfo) {
    return ctx.loaders.extensionsByTenant.load({
      parentId: tenant.id,
      args: {
        first: args.first ?? null,
        after: args.after ?? null,
        search: args.search ?? null,
        status: args.status ?? null,
        prefetch: extensionPrefetch(info),
      },
    });
  }

  @Mutation(() => Tenant)
  createTenant(@Arg("input", () => CreateTenantInput) input: CreateTenantInput, @Ctx() ctx: RequestContext) {
    return ctx.services.tenants.create(ctx, input);
  }

  @Mutation(() => Tenant)
  updateTenant(@Arg("id", () => ID) id: string, @Arg("input", () => UpdateTenantInput) input: UpdateTenantInput, @Ctx() ctx: RequestContext) {
    return ctx.services.tenants.update(ctx, id, input);
  }

  @Mutation(() => ID, { description: "Refused with CONFLICT while the tenant has extensions, unless force." })
  deleteTenant(@Arg("id", () => ID) id: string, @Arg("force", () => Boolean, { defaultValue: false }) force: boolean, @Ctx() ctx: RequestContext) {
    return ctx.services.tenants.delete(ctx, id, force);
  }
}
