import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Resolver, Root } from "type-graphql";
import type { RequestContext } from "../../context/request-context";
import { Extension } from "../extension/extension.entity";
import { QueueAgent } from "./queue-agent.entity";
import { Queue } from "./queue.entity";
import type { QueueAgentRow } from "./queue.service";

@Resolver(() => QueueAgent)
export class QueueAgentResolver {
  @FieldResolver(() => Queue)
  async queue(@Root() agent: QueueAgentRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.queue.load(agent.queueId);
  }

  @FieldResolver(() => Date, {
    nullable: true,
    description:
      "Since when the agent is available (neither paused nor on a call): the latest of its enrolment, the end of its last pause and the end of its extension's last call. Null while paused or on a call.",
  })
  async availableSince(@Root() agent: QueueAgentRow, @Ctx() ctx: RequestContext) {
    return (await ctx.loaders.agentAvailableSince.load(agent.id))?.since ?? null;
  }

  @FieldResolver(() => Extension)
  async extension(@Root() agent: QueueAgentRow, @Ctx() ctx: RequestContext) {
    return ctx.loaders.extension.load(agent.extensionId);
  }

  @Mutation(() => QueueAgent, {
    description: "Enrols an extension of the queue's tenant. Refused with BAD_USER_INPUT when it is already an agent of the queue.",
  })
  addQueueAgent(
    @Arg("queueId", () => ID) queueId: string,
    @Arg("extensionId", () => ID) extensionId: string,
    @Arg("penalty", () => Int, { nullable: true, defaultValue: 0 }) penalty: number | null,
    @Ctx() ctx: RequestContext,
  ) {
    return ctx.services.queues.addAgent(ctx, queueId, extensionId, penalty);
  }

  @Mutation(() => QueueAgent, { description: "Changes what is given; null or absent keeps the current value." })
  updateQueueAgent(
    @Arg("id", () => ID) id: string,
    @Arg("penalty", () => Int, { nullable: true }) penalty: number | null | undefined,
    @Arg("paused", () => Boolean, { nullable: true }) paused: boolean | null | undefined,
    @Ctx() ctx: RequestContext,
  ) {
    return ctx.services.queues.updateAgent(ctx, id, { penalty, paused });
  }

  @Mutation(() => ID, { description: "Unenrols the agent; the extension stays." })
  removeQueueAgent(@Arg("id", () => ID) id: string, @Ctx() ctx: RequestContext) {
    return ctx.services.queues.removeAgent(ctx, id);
  }
}
