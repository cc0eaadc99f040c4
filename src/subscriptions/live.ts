import type { RequestContext } from "../context/request-context";
import type { PubSubEngine } from "../events/pubsub";

/**
 * What a subscription field listens to, decided once at subscribe time after authorization:
 * the pub/sub topic (always derived from the authenticated scope, never from raw client input),
 * an optional per-event filter, and an optional first payload sent at once (e.g. current figures).
 */
export interface LivePlan {
  topic: string;
  filter?: (payload: unknown) => boolean;
  initial?: () => Promise<unknown>;
  /** Resume: the logged events after `after` first, in order, then the live ones, none twice. */
  replay?: LiveReplay;
}

export interface LiveReplay {
  after: bigint;
  /** The next logged events (payloads with their sequence) after a sequence, oldest first. */
  read(after: bigint, limit: number): Promise<Array<{ sequence: string; payload: object }>>;
}

export const REPLAY_PAGE = 200;

/** The sequence the relay stamped on a payload (undefined for payloads that carry none). */
export function sequenceOf(payload: unknown): bigint | undefined {
  const sequence = (payload as { sequence?: unknown } | null)?.sequence;
  return typeof sequence === "string" ? BigInt(sequence) : undefined;
}

/** Sequences below the newest one that may still come late (see SeenSequences). */
const LATE_WINDOW = 64;

/**
 * One tenant's sequences as a subscriber has been sent them: a repeat is refused, a first sight is
 * let through. Events normally arrive in sequence order; one may come late, after a newer one, when
 * the relay publishes a pass again because pub/sub dropped part of it (see EventLog.pass): the
 * missing event then arrives with repeats of those around it. It is let through once, if it is
 * among the LATE_WINDOW sequences below the newest (a gap may also be an event of another kind or
 * filter, which never comes: the window bounds what that costs).
 */
export class SeenSequences {
  private newest: bigint;
  private readonly missing = new Set<bigint>();

  constructor(newest: bigint) {
    this.newest = newest;
  }

  /** Whether `seq` is seen for the first time (and records it). */
  first(seq: bigint): boolean {
    if (seq <= this.newest) return this.missing.delete(seq);
    const from = seq - this.newest > BigInt(LATE_WINDOW) ? seq - BigInt(LATE_WINDOW) : this.newest + 1n;
    for (let s = from; s < seq; s++) this.missing.add(s);
    this.newest = seq;
    // Oldest first (insertion order is ascending): beyond the window they are taken as never coming.
    for (const s of this.missing) {
      if (this.missing.size <= LATE_WINDOW) break;
      this.missing.delete(s);
    }
    return true;
  }
}

/**
 * Feeds `deliver` the logged events after `replay.after` page by page, then returns the sequence
 * of the last one: everything up to it has been delivered, what comes live must be newer.
 */
export async function replayLog(replay: LiveReplay, filter: LivePlan["filter"], deliver: (payload: object) => Promise<void> | void): Promise<bigint> {
  let after = replay.after;
  for (;;) {
    const page = await replay.read(after, REPLAY_PAGE);
    for (const item of page) {
      after = BigInt(item.sequence);
      if (!filter || filter(item.payload)) await deliver(item.payload);
    }
    if (page.length < REPLAY_PAGE) return after;
  }
}

/** Subscription the graphql-ws transport attached to this context (absent for other transports). */
export interface LiveSocketBinding {
  register(plan: LivePlan): Promise<() => void>;
}

/** An AsyncIterator that yields nothing and ends when `return()` is called. */
function idleIterator(onReturn: () => void): AsyncIterableIterator<never> {
  let finish: ((r: IteratorResult<never>) => void) | undefined;
  let done = false;
  const end = (): IteratorResult<never> => {
    if (!done) {
      done = true;
      onReturn();
    }
    finish?.({ value: undefined as never, done: true });
    return { value: undefined as never, done: true };
  };
  return {
    next: () => (done ? Promise.resolve({ value: undefined as never, done: true }) : new Promise((resolve) => (finish = resolve))),
    return: async () => end(),
    throw: async (error?: unknown) => {
      end();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** Per-subscriber iterator over a topic, for transports without the shared fan-out. */
export function topicIterator(pubsub: PubSubEngine, plan: LivePlan): AsyncIterableIterator<unknown> {
  const queue: unknown[] = [];
  let waiting: ((r: IteratorResult<unknown>) => void) | undefined;
  let done = false;
  // While the log is replayed, live events wait here; afterwards only newer ones pass.
  let buffered: unknown[] | undefined = plan.replay ? [] : undefined;
  let lastSeq = plan.replay?.after;
  const push = (payload: unknown) => {
    if (buffered) return void buffered.push(payload);
    if (plan.filter && !plan.filter(payload)) return;
    deliver(payload);
  };
  const deliver = (payload: unknown, replayed = false) => {
    const seq = sequenceOf(payload);
    if (lastSeq !== undefined && seq !== undefined) {
      if (seq <= lastSeq) return;
      lastSeq = seq;
    }
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w({ value: payload, done: false });
    } else if (replayed || queue.length < 1000) {
      queue.push(payload);
    }
  };
  const unsubscribe = pubsub.subscribe(plan.topic, push);
  let initial = plan.initial?.();
  const replay = plan.replay;
  let replaying: Promise<void> | undefined = replay
    ? (async () => {
        await pubsub.flushSubscriptions?.();
        lastSeq = await replayLog(replay, plan.filter, (payload) => deliver(payload, true));
        const live = buffered ?? [];
        buffered = undefined;
        for (const payload of live) push(payload);
      })()
    : undefined;
  const finish = async (): Promise<IteratorResult<unknown>> => {
    if (!done) {
      done = true;
      unsubscribe();
      waiting?.({ value: undefined, done: true });
    }
    return { value: undefined, done: true };
  };
  return {
    async next() {
      if (initial) {
        const value = await initial;
        initial = undefined;
        return { value, done: false };
      }
      if (replaying) {
        await replaying;
        replaying = undefined;
      }
      if (queue.length) return { value: queue.shift(), done: false };
      if (done) return { value: undefined, done: true };
      return new Promise((resolve) => (waiting = resolve));
    },
    return: finish,
    async throw(error?: unknown) {
      await finish();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * The `subscribe` of every subscription field. Over graphql-ws the transport's shared fan-out
 * takes the subscriber (one execution per event per distinct subscription, same bytes to all who
 * share it) and the iterator handed to graphql-js stays idle; elsewhere events flow per subscriber.
 */
export async function liveSubscribe(ctx: RequestContext, plan: LivePlan, pubsub: PubSubEngine): Promise<AsyncIterableIterator<unknown>> {
  if (ctx.live) {
    const unregister = await ctx.live.register(plan);
    return idleIterator(unregister);
  }
  return topicIterator(pubsub, plan);
}
