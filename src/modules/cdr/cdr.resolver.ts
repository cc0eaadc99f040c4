import { Args, Ctx, FieldResolver, Query, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { connectionComplexity, connectionType } from "../../graphql/connection";
import { Extension } from "../extension/extension.entity";
import type { ExtensionRow } from "../extension/extension.service";
import { Queue } from "../queue/queue.entity";
import { Tenant } from "../tenant/tenant.entity";
import { Cdr } from "./cdr.entity";
import { CdrPageArgs, CdrsArgs } from "./cdr.inputs";
import { CdrStatsArgs, CdrStatsBucket } from "./cdr-stats.type";
import type { CdrRow } from "./cdr.service";

export const CdrConnection = connectionType(Cdr, "Cdr");

@Resolver(() => Cdr)
export class CdrResolver {
  @Query(() => CdrConnection, { complexity: connectionComplexity, description: "CDRs of one tenant, newest first." })
  cdrs(@Args() { tenantId, ...args }: CdrsArgs, @Ctx() ctx: RequestContext) {
    return ctx.services.cdrs.list(ctx, tenantId, args);
  }

  @FieldResolver(() => Extension, { nullable: true, description: "Null once the extension has been deleted; extensionNumber keeps its number." })
  extension(@Root() cdr: CdrRow, @Ctx() ctx: RequestContext) {
    return ctx.services.cdrs.extensionOf(ctx, cdr);
  }

  @FieldResolver(() => Queue, { nullable: true, description: "The queue the call came through; null if none or deleted since." })
  queue(@Root() cdr: CdrRow, @Ctx() ctx: RequestContext) {
    return ctx.services.cdrs.queueOf(ctx, cdr);
  }
}

@Resolver(() => Tenant)
export class TenantCdrsResolver {
  @FieldResolver(() => CdrConnection, { complexity: connectionComplexity, description: "The tenant's CDRs, newest first." })
  cdrs(@Root() tenant: Tenant, @Args() args: CdrPageArgs, @Ctx() ctx: RequestContext) {
    return ctx.services.cdrs.forTenant(ctx, tenant.id, args);
  }

  @FieldResolver(() => [CdrStatsBucket], {
    complexity: ({ childComplexity }: { childComplexity: number }) => 1 + childComplexity * 31,
    description: "Calls, answered calls and their mean duration per day in the tenant's time zone, for calls that started in from..to; days without calls are absent.",
  })
  cdrStats(@Root() tenant: Tenant, @Args() args: CdrStatsArgs, @Ctx() ctx: RequestContext) {
    return ctx.loaders.cdrStatsByTenant.load({ parentId: tenant.id, args: ctx.services.cdrStats.normalize(args) });
  }
}

@Resolver(() => Extension)
export class ExtensionCdrsResolver {
  @FieldResolver(() => CdrConnection, { complexity: connectionComplexity, description: "The extension's CDRs, newest first." })
  cdrs(@Root() extension: ExtensionRow, @Args() args: CdrPageArgs, @Ctx() ctx: RequestContext) {
    return ctx.services.cdrs.forExtension(ctx, extension.id, args);
  }
}
