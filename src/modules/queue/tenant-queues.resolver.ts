import { Ctx, FieldResolver, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { listComplexity } from "../../graphql/list-complexity";
import { Tenant } from "../tenant/tenant.entity";
import { Queue } from "./queue.entity";
import { EXPECTED_QUEUES_PER_TENANT } from "./queue.resolver";

/** The queue edge of Tenant, kept with the queue module. */
@Resolver(() => Tenant)
export class TenantQueuesResolver {
  @FieldResolver(() => [Queue], { description: "Its queues, by name.", complexity: listComplexity(EXPECTED_QUEUES_PER_TENANT) })
  queues(@Root() tenant: Tenant, @Ctx() ctx: RequestContext) {
    return ctx.loaders.queuesByTenant.load(tenant.id);
  }
}
