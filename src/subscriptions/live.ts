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
  const push = (payload: unknown) => {
    if (plan.filter && !plan.filter(payload)) return;
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w({ value: payload, done: false });
    } else if (queue.length < 1000) {
      queue.push(payload);
    }
  };
  const unsubscribe = pubsub.subscribe(plan.topic, push);
  let initial = plan.initial?.();
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
