import type { RequestContext } from "../context/request-context";

/**
 * Runs `work` in one transaction with a context whose manager is the transaction's, then runs the
 * work it queued in `afterCommit` (event publication), in order, only once the commit has succeeded.
 * Nested calls join the outer transaction.
 */
export async function transactional<T>(ctx: RequestContext, work: (tx: RequestContext) => Promise<T>): Promise<T> {
  if (ctx.manager.queryRunner?.isTransactionActive) return work(ctx);
  const afterCommit: RequestContext["afterCommit"] = [];
  const result = await ctx.dataSource.transaction((manager) => work({ ...ctx, manager, afterCommit }));
  // Started one after another, so publications leave in commit order (each hook sends at once, on
  // one connection), then awaited together: a batch of many events waits one round trip, not one each.
  const settled = await Promise.allSettled(afterCommit.map(async (hook) => hook()));
  for (const outcome of settled) if (outcome.status === "rejected") ctx.log.error({ err: outcome.reason }, "after-commit hook failed");
  return result;
}
