import type { RequestContext } from "../context/request-context";

/**
 * Runs `work` in one transaction with a context whose manager is the transaction's, then runs the
 * work it queued in `afterCommit` (event publication) only once the commit has succeeded.
 * Nested calls join the outer transaction.
 */
export async function transactional<T>(ctx: RequestContext, work: (tx: RequestContext) => Promise<T>): Promise<T> {
  if (ctx.manager.queryRunner?.isTransactionActive) return work(ctx);
  const afterCommit: RequestContext["afterCommit"] = [];
  const result = await ctx.dataSource.transaction((manager) => work({ ...ctx, manager, afterCommit }));
  for (const hook of afterCommit) {
    try {
      await hook();
    } catch (error) {
      ctx.log.error({ err: error }, "after-commit hook failed");
    }
  }
  return result;
}
