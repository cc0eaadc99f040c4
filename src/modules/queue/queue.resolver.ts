import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { listComplexity } from "../../graphql/list-complexity";
import { HANGUP, readDestination } from "../call-destination/call-destination";
import { CallDestination } from "../call-destination/call-destination.type";
import { Tenant } from "../tenant/tenant.entity";
import { QueueAgent } from "./queue-agent.entity";
import { Queue } from "./queue.entity";
import { CreateQueueInput, UpdateQueueInput } from "./queue.inputs";
import type { QueueRow } from "./queue.service";

/** Expected sizes of the plain lists, for the query cost estimate. */
export const EXPECTED_QUEUES_PER_TENANT = 20;
export const EXPECTED_AGENTS_PER_QUEUE = 20;

@Resolver(() => Queue)
export class QueueResolver {
  @Query(() => Queue, { description: "One queue; another tenant's answers NOT_FOUND." })
  queue(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.queues.get(ctx, id);
  }

  @Query(() => [Queue], {
    description: "Tenant keys may omit tenantId (their own); an ADMIN without it lists every tenant's queues.",
    complexity: listComplexity(EXPECTED_QUEUES_PER_TENANT),
  })
  queues(@Arg("tenantId", () => ID, { nullable: true }) tenantId: string | null | undefined, @Ctx() ctx: RequestContext) {
    return ctx.services.queues.list(ctx, tenantId);
  }

  @FieldResolver(() => CallDestination, { description: "Where a caller goes after maxWaitSeconds (default HANGUP)." })
  timeoutDestination(@Root() queue: QueueRow): CallDestination {
    return readDestination(queue as unknown as Record<string, unknown>, "timeout_destination") ?? { ...HANGUP };
  }

  @FieldResolver(() => Tenant)
  async tenant(@Root() queue: QueueRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.tenant.load(queue.tenantId);
  }

  @FieldResolver(() => [QueueAgent], {
    description: "Its agents, in the order calls are offered: lower penalty first.",
    complexity: listComplexity(EXPECTED_AGENTS_PER_QUEUE),
  })
  agents(@Root() queue: QueueRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.agentsByQueue.load(queue.id);
  }

  @Mutation(() => Queue)
  createQueue(@Arg("input", () => CreateQueueInput) input: CreateQueueInput, @Ctx() ctx: RequestContext) {
    return ctx.services.queues.create(ctx, input);
  }

  @Mutation(() => Queue)
  updateQueue(@Arg("id", () => ID) id: string, @Arg("input", () => UpdateQueueInput) input: UpdateQueueInput, @Ctx() ctx: RequestContext) {
    return ctx.services.queues.update(ctx, id, input);
  }

  @Mutation(() => ID, {
    description: "Deletes the queue and every membership in it. Refused (CONFLICT) while a destination names it, unless force turns those destinations into HANGUP.",
  })
  deleteQueue(
    @Arg("id", () => ID) id: string,
    @Arg("force", () => Boolean, { defaultValue: false }) force: boolean,
    @Ctx() ctx: RequestContext,
  ) {
    return ctx.services.queues.delete(ctx, id, force);
  }
}
