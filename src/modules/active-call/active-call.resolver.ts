import { Arg, Ctx, FieldResolver, ID, Query, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { listComplexity } from "../../graphql/list-complexity";
import { Extension } from "../extension/extension.entity";
import type { ExtensionRow } from "../extension/extension.service";
import { Queue } from "../queue/queue.entity";
import { Tenant } from "../tenant/tenant.entity";
import { ActiveCall } from "./active-call.entity";
import type { ActiveCallRow } from "./active-call.service";

@Resolver(() => ActiveCall)
export class ActiveCallResolver {
  @Query(() => [ActiveCall], {
    complexity: listComplexity(50),
    description: "Call legs in progress, oldest first: one tenant, or every tenant for an ADMIN who names none.",
  })
  activeCalls(@Arg("tenantId", () => ID, { nullable: true }) tenantId: string | null, @Ctx() ctx: RequestContext) {
    return ctx.services.activeCalls.list(ctx, tenantId);
  }

  @FieldResolver(() => Extension)
  extension(@Root() call: ActiveCallRow, @Ctx() ctx: RequestContext) {
    return ctx.services.activeCalls.extensionOf(ctx, call);
  }

  @FieldResolver(() => Queue, { nullable: true, description: "The queue the call is in or came through." })
  queue(@Root() call: ActiveCallRow, @Ctx() ctx: RequestContext) {
    return ctx.services.activeCalls.queueOf(ctx, call);
  }
}

@Resolver(() => Tenant)
export class TenantActiveCallsResolver {
  @FieldResolver(() => [ActiveCall], { complexity: listComplexity(20), description: "The tenant's call legs in progress, oldest first." })
  activeCalls(@Root() tenant: Tenant, @Ctx() ctx: RequestContext) {
    return ctx.loaders.activeCallsByTenant.load(tenant.id);
  }
}

@Resolver(() => Extension)
export class ExtensionActiveCallsResolver {
  @FieldResolver(() => [ActiveCall], { complexity: listComplexity(2), description: "The extension's call legs in progress, oldest first." })
  activeCalls(@Root() extension: ExtensionRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.activeCallsByExtension.load(extension.id);
  }
}
