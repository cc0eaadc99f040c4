import type { RequestContext } from "../context/request-context";
import type { LoggedEvent } from "../events/event-log";
import type { PendingEvent } from "../subscriptions/events";

/**
 * Runs `work` in one transaction with a context whose manager is the transaction's. The events it
 * recorded (src/subscriptions/events.ts) are written to the event log as the transaction's last
 * statement, so each tenant's sequence is taken as late as possible and follows commit order; once
 * the commit has succeeded the relay is nudged and the work queued in `afterCommit` runs.
 * Nested calls join the outer transaction.
 */
export async function transactional<T>(ctx: RequestContext, work: (tx: RequestContext) => Promise<T>): Promise<T> {
  if (ctx.manager.queryRunner?.isTransactionActive) return work(ctx);
  const afterCommit: RequestContext["afterCommit"] = [];
  const outbox: PendingEvent[] = [];
  let logged: LoggedEvent[] = [];
  const result = await ctx.dataSource.transaction(async (manager) => {
    const value = await work({ ...ctx, manager, afterCommit, outbox });
    if (outbox.length) logged = await ctx.services.events.append(manager, outbox);
    return value;
  });
  if (logged.length) ctx.services.events.committed(logged);
  // The answer's x-pbx-write-lsn: a read sent with it as x-pbx-read-after sees this commit.
  await ctx.db?.recordCommit(ctx.dataSource);
  // Started one after another, so notices leave in commit order (each hook sends at once, on one
  // connection), then awaited together: many notices wait one round trip, not one each.
  const settled = await Promise.allSettled(afterCommit.map(async (hook) => hook()));
  for (const outcome of settled) if (outcome.status === "rejected") ctx.log.error({ err: outcome.reason }, "after-commit hook failed");
  return result;
}
