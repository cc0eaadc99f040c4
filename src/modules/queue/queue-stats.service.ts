import type { EntityManager } from "typeorm";
import type { RequestContext } from "../../context/request-context";
import { QueueStatsFeed } from "../../subscriptions/queue-stats-feed";
import { groupBy } from "../../common/group-by";
import type { QueueStats } from "./queue-stats.type";
import type { WaitingCall } from "./waiting-call.type";

export type QueueStatsRow = QueueStats;

/** The agent row `a` is on a call: a call leg of its extension is in progress (ringing, answered or held). */
export const AGENT_ON_CALL_SQL = `EXISTS (SELECT 1 FROM active_call ac WHERE ac.extension_id = a.extension_id)`;

/**
 * The agent row `a` is on do-not-disturb (its extension's call handling, contract §12): it takes no
 * calls, so the wallboard counts it with the paused agents, never as available (unless on a call,
 * which makes it busy).
 */
export const AGENT_DND_SQL = `EXISTS (SELECT 1 FROM call_handling ch WHERE ch.id = a.extension_id AND ch.do_not_disturb)`;

/**
 * Every figure of many queues in one statement. "Today" starts at midnight in the tenant's time
 * zone. Each part reads only its own rows through a partial index: the callers waiting now, the
 * calls answered today, the calls abandoned today; agents are busy while any call leg of their
 * extension is in progress. A wait is known only when the join arrived; calls without one count
 * as answered but stay out of the average and the service level, which would otherwise be guessed.
 * Service level = answered within the target ÷ (answered + abandoned after waiting past the target):
 * a caller who gave up after the target was not served in time; one who hung up sooner counts on
 * neither side.
 */
const STATS_SQL = `
  WITH q AS (
    SELECT q.id, q.service_level_seconds,
           date_trunc('day', now() AT TIME ZONE t.timezone) AT TIME ZONE t.timezone AS day_start
      FROM queue q JOIN tenant t ON t.id = q.tenant_id
     WHERE q.id = ANY($1::int[])
  )
  SELECT q.id AS "queueId",
         w.waiting AS "callsWaiting",
         w.longest AS "longestWaitSeconds",
         ag.total AS "agentsTotal",
         ag.total - ag.paused - ag.busy AS "agentsAvailable",
         ag.busy AS "agentsBusy",
         ag.paused AS "agentsPaused",
         an.answered AS "answeredToday",
         ab.abandoned AS "abandonedToday",
         COALESCE(an.average_wait, 0)::float8 AS "averageWaitSeconds",
         CASE WHEN an.known + ab.late = 0 THEN 1 ELSE an.within::float8 / (an.known + ab.late) END AS "serviceLevel",
         now() AS "updatedAt"
    FROM q
    CROSS JOIN LATERAL (
      SELECT count(*)::int AS waiting,
             GREATEST(COALESCE(floor(EXTRACT(EPOCH FROM now() - min(c.joined_at))), 0), 0)::int AS longest
        FROM queue_call c
       WHERE c.queue_id = q.id AND c.answered_at IS NULL AND c.abandoned_at IS NULL
    ) w
    CROSS JOIN LATERAL (
      SELECT count(*)::int AS total,
             count(*) FILTER (WHERE a.paused OR (${AGENT_DND_SQL} AND NOT ${AGENT_ON_CALL_SQL}))::int AS paused,
             count(*) FILTER (WHERE NOT a.paused AND ${AGENT_ON_CALL_SQL})::int AS busy
        FROM queue_agent a
       WHERE a.queue_id = q.id
    ) ag
    CROSS JOIN LATERAL (
      SELECT count(*)::int AS answered,
             count(c.joined_at)::int AS known,
             avg(GREATEST(EXTRACT(EPOCH FROM c.answered_at - c.joined_at), 0)) AS average_wait,
             count(*) FILTER (WHERE c.answered_at - c.joined_at <= make_interval(secs => q.service_level_seconds))::int AS within
        FROM queue_call c
       WHERE c.queue_id = q.id AND c.answered_at IS NOT NULL AND c.answered_at >= q.day_start
    ) an
    CROSS JOIN LATERAL (
      SELECT count(*)::int AS abandoned,
             count(*) FILTER (WHERE c.abandoned_at - c.joined_at > make_interval(secs => q.service_level_seconds))::int AS late
        FROM queue_call c
       WHERE c.queue_id = q.id AND c.abandoned_at IS NOT NULL AND c.abandoned_at >= q.day_start
    ) ab`;

/**
 * The live figures of queues: computed on demand (the `Queue.stats` field, batched per request)
 * and pushed to `queueStats` subscribers through this instance's feed.
 */
export class QueueStatsService {
  readonly feed = new QueueStatsFeed(this);

  /** Figures of the given queues, in their order; null for a queue that does not exist (any more). */
  async compute(manager: EntityManager, queueIds: readonly number[]): Promise<Array<QueueStatsRow | null>> {
    const rows: QueueStatsRow[] = await manager.query(STATS_SQL, [queueIds]);
    const byId = new Map(rows.map((row) => [row.queueId, row]));
    return queueIds.map((id) => byId.get(id) ?? null);
  }

  /** `Queue.waitingCalls` for many queues: one read of the waiting index, longest wait first. */
  async waitingOf(manager: EntityManager, queueIds: readonly number[]): Promise<WaitingCall[][]> {
    const rows: Array<WaitingCall & { queueId: number }> = await manager.query(
      `SELECT c.queue_id AS "queueId", c.call_id AS "callId", c.joined_at AS "joinedAt", c.caller_number AS "callerNumber", c.caller_name AS "callerName"
         FROM queue_call c
        WHERE c.queue_id = ANY($1::int[]) AND c.answered_at IS NULL AND c.abandoned_at IS NULL
        ORDER BY c.queue_id, c.joined_at, c.id`,
      [queueIds],
    );
    return groupBy(queueIds, rows, (row) => row.queueId).map((list) => list.map(({ callId, joinedAt, callerNumber, callerName }) => ({ callId, joinedAt, callerNumber, callerName })));
  }

  /**
   * The `queueStats(queueId)` subscription: the caller must be allowed to read the queue (another
   * tenant's answers NOT_FOUND); then the current figures at once and the feed's updates after.
   */
  async subscribe(ctx: RequestContext, rawQueueId: string | number): Promise<AsyncIterableIterator<unknown>> {
    const queue = await ctx.services.queues.get(ctx, rawQueueId);
    return this.feed.subscribe(ctx, queue.id);
  }

  /** Stops the feed's timers (server shutdown). */
  close(): void {
    this.feed.close();
  }
}
