import { randomUUID } from "node:crypto";
import type { EntityManager } from "typeorm";
import type { Logger } from "../common/logger";
import type { RequestContext } from "../context/request-context";
import { RedisPubSub, type PubSubEngine } from "../events/pubsub";
import type { QueueStatsRow, QueueStatsService } from "../modules/queue/queue-stats.service";
import { liveSubscribe } from "./live";
import { queueStatsTopic } from "./topics";

/** The first change schedules one recompute this much later; changes inside the window ride along. */
export const QUEUE_STATS_WINDOW_MS = 250;
/**
 * While a queue is watched its figures are also recomputed this often, and published if they
 * changed: what no event announces (the tenant's midnight, a notice lost while Redis reconnected)
 * still reaches the screen.
 */
export const QUEUE_STATS_REFRESH_MS = 30_000;

/** What subscribers receive when the queue has been deleted; the field answers NOT_FOUND. */
export interface QueueGone {
  queueId: number;
  gone: true;
}
export type QueueStatsPayload = QueueStatsRow | QueueGone;

/** How a recompute of a watched queue ended: its figures went out, had not moved, or could not be read. */
export type RecomputeOutcome = "published" | "unchanged" | "failed";

/**
 * Announces, after commit, that the figures of these queues may have moved. The notice carries no
 * figures: every instance that has subscribers for a queue recomputes them itself, so what a
 * screen receives is bounded by its own instance's window however many instances ingest events.
 */
export function publishQueueChange(ctx: RequestContext, queueIds: readonly number[]): void {
  const ids = [...new Set(queueIds)];
  if (ids.length === 0) return;
  ctx.afterCommit.push(async () => {
    await Promise.all(ids.map((queueId) => ctx.pubsub.publish(queueStatsTopic(queueId), { queueId })));
  });
}

/** One queue followed by this instance for its local subscribers. */
class Watch {
  refs = 0;
  /** The figures last published (without updatedAt), so a change notice that moved nothing sends nothing. */
  last: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly stopNotices: () => void;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly queueId: number,
    private readonly topic: string,
    private readonly pubsub: PubSubEngine,
    private readonly compute: () => Promise<QueueStatsPayload>,
    private readonly log: Logger,
    private readonly observe: (outcome: RecomputeOutcome) => void,
  ) {
    this.stopNotices = pubsub.subscribe(queueStatsTopic(queueId), () => this.schedule());
    this.heartbeat = setInterval(() => this.schedule(), QUEUE_STATS_REFRESH_MS);
    this.heartbeat.unref();
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Serialized: a slow recompute never overtakes a later one.
      this.chain = this.chain.then(() => this.refresh());
    }, QUEUE_STATS_WINDOW_MS);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    if (this.stopped) return;
    try {
      const payload = await this.compute();
      const { updatedAt: _updatedAt, ...figures } = payload as QueueStatsRow;
      const key = JSON.stringify(figures);
      if (this.stopped) return;
      if (key === this.last) return this.observe("unchanged");
      this.last = key;
      await this.pubsub.publish(this.topic, payload);
      this.observe("published");
    } catch (error) {
      if (this.stopped) return;
      this.observe("failed");
      this.log.warn({ err: error, queueId: this.queueId }, "could not recompute a queue's figures");
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    this.stopNotices();
  }
}

/** Ends `release` with the iterator, however graphql-ws ends it (complete, socket closed). */
function releasing(iterator: AsyncIterableIterator<unknown>, release: () => void): AsyncIterableIterator<unknown> {
  return {
    next: () => iterator.next(),
    return: (value?: unknown) => {
      release();
      return iterator.return ? iterator.return(value) : Promise.resolve({ value: undefined, done: true });
    },
    throw: (error?: unknown) => {
      release();
      return iterator.throw ? iterator.throw(error) : Promise.reject(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * This instance's side of `queueStats`. A queue with local subscribers is watched: its change
 * notices (from any instance, via pub/sub) are coalesced per QUEUE_STATS_WINDOW_MS into one
 * recompute, and the result goes out on a topic only this instance listens to, where the shared
 * fan-out executes it once for everyone who asked the same thing. Change notices are published
 * only after commit, and a recompute always starts after the notice that triggered it arrived, so
 * the last update a subscriber gets reflects every committed change.
 */
export class QueueStatsFeed {
  private readonly instance = randomUUID();
  private readonly watches = new Map<number, Watch>();
  /** Told how each recompute ended (the server counts them in queue_stats_recomputes_total). */
  onRecompute: (outcome: RecomputeOutcome) => void = () => undefined;

  constructor(private readonly stats: QueueStatsService) {}

  /** The current figures at once, then each change. The caller has checked the right to read the queue. */
  async subscribe(ctx: RequestContext, queueId: number): Promise<AsyncIterableIterator<unknown>> {
    const release = this.retain(ctx, queueId);
    try {
      const initial = async () => {
        // SUBSCRIBE is acknowledged asynchronously by Redis; once it has been, no change committed
        // after the figures below can go unannounced.
        if (ctx.pubsub instanceof RedisPubSub) await ctx.pubsub.flushSubscriptions();
        return this.figures(ctx.dataSource.manager, queueId);
      };
      const iterator = await liveSubscribe(ctx, { topic: this.topic(queueId), initial }, ctx.pubsub);
      return releasing(iterator, release);
    } catch (error) {
      release();
      throw error;
    }
  }

  close(): void {
    for (const watch of this.watches.values()) watch.stop();
    this.watches.clear();
  }

  private topic(queueId: number): string {
    return `${queueStatsTopic(queueId)}.figures.${this.instance}`;
  }

  private async figures(manager: EntityManager, queueId: number): Promise<QueueStatsPayload> {
    const [row] = await this.stats.compute(manager, [queueId]);
    return row ?? { queueId, gone: true };
  }

  private retain(ctx: RequestContext, queueId: number): () => void {
    let watch = this.watches.get(queueId);
    if (!watch) {
      const manager = ctx.dataSource.manager;
      watch = new Watch(queueId, this.topic(queueId), ctx.pubsub, () => this.figures(manager, queueId), ctx.log, (outcome) => this.onRecompute(outcome));
      this.watches.set(queueId, watch);
    }
    const owner = watch;
    owner.refs++;
    // The newcomer's first figures are fresher than the last published; the next recompute must go out.
    owner.last = undefined;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--owner.refs > 0 || this.watches.get(queueId) !== owner) return;
      owner.stop();
      this.watches.delete(queueId);
    };
  }
}
