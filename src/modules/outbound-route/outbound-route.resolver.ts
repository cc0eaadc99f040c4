import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { listComplexity } from "../../graphql/list-complexity";
import { Tenant } from "../tenant/tenant.entity";
import { Trunk } from "../trunk/trunk.types";
import { CreateOutboundRouteInput, OutboundRoute, UpdateOutboundRouteInput } from "./outbound-route.types";

const EXPECTED_ROUTES = 10;

@Resolver(() => OutboundRoute)
export class OutboundRouteResolver {
  @Query(() => OutboundRoute, { description: "One outbound route; another tenant's answers NOT_FOUND." })
  outboundRoute(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.outboundRoutes.get(ctx, id);
  }

  @FieldResolver(() => [Trunk], { description: "Tried in this order.", complexity: listComplexity(3) })
  async trunks(@Root() route: OutboundRoute, @Ctx() ctx: RequestContext) {
    const rows = await ctx.services.trunks.byIds(ctx, route.trunkIds);
    return route.trunkIds.map((id) => rows.find((t) => t.id === id)).filter((t) => t !== undefined);
  }

  @Mutation(() => OutboundRoute)
  createOutboundRoute(@Arg("input", () => CreateOutboundRouteInput) input: CreateOutboundRouteInput, @Ctx() ctx: RequestContext) {
    return ctx.services.outboundRoutes.create(ctx, input);
  }

  @Mutation(() => OutboundRoute)
  updateOutboundRoute(@Arg("id", () => ID) id: string, @Arg("input", () => UpdateOutboundRouteInput) input: UpdateOutboundRouteInput, @Ctx() ctx: RequestContext) {
    return ctx.services.outboundRoutes.update(ctx, id, input);
  }

  @Mutation(() => ID)
  deleteOutboundRoute(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.outboundRoutes.delete(ctx, id);
  }
}

@Resolver(() => Tenant)
export class TenantOutboundRoutesResolver {
  @FieldResolver(() => [OutboundRoute], { description: "In priority order, lowest first.", complexity: listComplexity(EXPECTED_ROUTES) })
  outboundRoutes(@Root() tenant: Tenant, @Ctx() ctx: RequestContext) {
    return ctx.services.outboundRoutes.listForTenant(ctx, tenant.id);
  }
}
