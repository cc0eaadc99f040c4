import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { listComplexity } from "../../graphql/list-complexity";
import { Tenant } from "../tenant/tenant.entity";
import { CreateTrunkInput, Trunk, UpdateTrunkInput } from "./trunk.types";

const EXPECTED_TRUNKS = 10;

@Resolver(() => Trunk)
export class TrunkResolver {
  @Query(() => Trunk, { description: "One trunk: a shared one, or one of the caller's tenant; another tenant's answers NOT_FOUND." })
  trunk(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.trunks.get(ctx, id);
  }

  @Query(() => [Trunk], {
    description: "ADMIN without tenantId: every trunk; with it, or for a tenant's key: the shared trunks and the tenant's own.",
    complexity: listComplexity(EXPECTED_TRUNKS),
  })
  trunks(@Arg("tenantId", () => ID, { nullable: true }) tenantId: string | null | undefined, @Ctx() ctx: RequestContext) {
    return ctx.services.trunks.list(ctx, tenantId);
  }

  @Mutation(() => Trunk)
  createTrunk(@Arg("input", () => CreateTrunkInput) input: CreateTrunkInput, @Ctx() ctx: RequestContext) {
    return ctx.services.trunks.create(ctx, input);
  }

  @Mutation(() => Trunk)
  updateTrunk(@Arg("id", () => ID) id: string, @Arg("input", () => UpdateTrunkInput) input: UpdateTrunkInput, @Ctx() ctx: RequestContext) {
    return ctx.services.trunks.update(ctx, id, input);
  }

  @Mutation(() => ID, { description: "Refused (CONFLICT) while an outbound route uses it." })
  deleteTrunk(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.trunks.delete(ctx, id);
  }
}

@Resolver(() => Tenant)
export class TenantTrunksResolver {
  @FieldResolver(() => [Trunk], { description: "The shared trunks and the tenant's own.", complexity: listComplexity(EXPECTED_TRUNKS) })
  trunks(@Root() tenant: Tenant, @Ctx() ctx: RequestContext) {
    return ctx.services.trunks.list(ctx, tenant.id);
  }
}
