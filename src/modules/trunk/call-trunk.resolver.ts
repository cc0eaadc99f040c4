import { Ctx, FieldResolver, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { ActiveCall } from "../active-call/active-call.entity";
import { Cdr } from "../cdr/cdr.entity";
import { Trunk } from "./trunk.types";

/** The trunk of a call leg with a carrier, if the caller may see it (shared, or the leg's tenant's); null once deleted. */
async function trunkOf(ctx: RequestContext, leg: { tenantId: number; trunkId: number | null }): Promise<Trunk | null> {
  if (leg.trunkId === null || leg.trunkId === undefined) return null;
  const trunk = await ctx.loaders.trunk.load(leg.trunkId);
  return trunk && (trunk.tenantId === null || trunk.tenantId === leg.tenantId) ? trunk : null;
}

@Resolver(() => Cdr)
export class CdrTrunkResolver {
  @FieldResolver(() => Trunk, { nullable: true, description: "The trunk of a call with a carrier; null for internal calls or once the trunk is deleted." })
  trunk(@Root() cdr: Cdr, @Ctx() ctx: RequestContext) {
    return trunkOf(ctx, cdr);
  }
}

@Resolver(() => ActiveCall)
export class ActiveCallTrunkResolver {
  @FieldResolver(() => Trunk, { nullable: true, description: "The trunk of a call with a carrier; null for internal calls." })
  trunk(@Root() call: ActiveCall, @Ctx() ctx: RequestContext) {
    return trunkOf(ctx, call);
  }
}
