import { Arg, Ctx, FieldResolver, ID, Resolver, Root, Subscription, type SubscribeResolverData } from "type-graphql";
import { notFound } from "../../common/errors";
import type { RequestContext } from "../../context/request-context";
import type { QueueStatsPayload } from "../../subscriptions/queue-stats-feed";
import { QueueStats } from "./queue-stats.type";
import type { QueueStatsRow } from "./queue-stats.service";
import { Queue } from "./queue.entity";
import { EXPECTED_AGENTS_PER_QUEUE } from "./queue.resolver";
import { WaitingCall } from "./waiting-call.type";
import { listComplexity } from "../../graphql/list-complexity";
import type { QueueRow } from "./queue.service";

type Data = SubscribeResolverData<unknown, Record<string, unknown>, RequestContext>;

/** The figures of a queue: read with the queue (`Queue.stats`), or followed live (`queueStats`). */
@Resolver(() => Queue)
export class QueueStatsResolver {
  @FieldResolver(() => QueueStats, { description: "Its live figures now: the same as the queueStats subscription sends." })
  async stats(@Root() queue: QueueRow, @Ctx() ctx: RequestContext): Promise<QueueStatsRow> {
    const stats = await ctx.loaders.queueStats.load(queue.id);
    if (!stats) throw notFound("Queue");
    return stats;
  }

  @FieldResolver(() => [WaitingCall], {
    description: "The callers waiting in it now, longest wait first: the callers counted by stats.callsWaiting.",
    complexity: listComplexity(EXPECTED_AGENTS_PER_QUEUE),
  })
  waitingCalls(@Root() queue: QueueRow, @Ctx() ctx: RequestContext): Promise<WaitingCall[]> {
    return ctx.loaders.waitingCallsByQueue.load(queue.id);
  }

  @Subscription(() => QueueStats, {
    subscribe: ({ args, context }: Data) => context.services.queueStats.subscribe(context, args.queueId as string),
    description:
      "The queue's figures at once, then on each change, coalesced to at most four updates a second. " +
      "VIEWER, TENANT_ADMIN (own tenant) or ADMIN; another tenant's queue answers NOT_FOUND, as does a queue deleted meanwhile.",
  })
  queueStats(@Root() payload: QueueStatsPayload, @Arg("queueId", () => ID) _queueId: string): QueueStatsRow {
    if ("gone" in payload) throw notFound("Queue");
    return payload;
  }
}
