import { createClient, type Client } from "graphql-ws";
import { print } from "graphql";
import WebSocket from "ws";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { RedisPubSub } from "../../src/events/pubsub";
import type { TestServer } from "./server";

export interface LiveSubscription<T> {
  /** Every message received so far, in order. */
  received: Array<{ data?: T | null; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> }>;
  /** Resolves with the next message matching `predicate` (already received ones count), or fails after `ms`. */
  next(predicate?: (data: T) => boolean, ms?: number): Promise<T>;
  /** Resolves with the error the server answered the subscription with. */
  error(ms?: number): Promise<{ message: string; extensions?: Record<string, unknown> }>;
  client: Client;
  close(): Promise<void>;
}

/**
 * Opens a graphql-ws client as `key` and subscribes; waits until the server has attached the
 * subscription (counted by the server's subscriptions_active gauge, so open them one at a time).
 */
export async function subscribe<T, V>(
  target: TestServer | LiveTarget,
  doc: TypedDocumentNode<T, V>,
  variables: V,
  key: string,
  options: { expectError?: boolean } = {},
): Promise<LiveSubscription<T>> {
  const ts: LiveTarget = "server" in target ? inProcessTarget(target) : target;
  const before = await ts.activeSubscriptions();
  const client = createClient({ url: ts.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, connectionParams: { authorization: `Bearer ${key}` } });
  const received: LiveSubscription<T>["received"] = [];
  const waiters = new Set<() => void>();
  let failure: { message: string; extensions?: Record<string, unknown> } | undefined;
  client.subscribe(
    { query: print(doc), variables: variables as Record<string, unknown> },
    {
      next: (value) => {
        received.push(value as LiveSubscription<T>["received"][number]);
        if ((value as { errors?: unknown[] }).errors) failure = (value as { errors: Array<{ message: string }> }).errors[0];
        for (const w of waiters) w();
      },
      error: (err) => {
        failure = Array.isArray(err) ? err[0] : { message: String((err as { reason?: string }).reason ?? err) };
        for (const w of waiters) w();
      },
      complete: () => undefined,
    },
  );
  const wait = <R>(check: () => R | undefined, ms: number, what: string) =>
    new Promise<R>((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value === undefined) return false;
        waiters.delete(attempt);
        clearTimeout(timer);
        resolve(value);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(attempt);
        reject(new Error(`timed out waiting for ${what}; received ${JSON.stringify(received)}`));
      }, ms);
      if (!attempt()) waiters.add(attempt);
    });
  let cursor = 0;
  const sub: LiveSubscription<T> = {
    received,
    client,
    next: (predicate = () => true, ms = 5000) =>
      wait(
        () => {
          for (; cursor < received.length; cursor++) {
            const data = received[cursor].data;
            if (data && predicate(data)) return received[cursor++].data as T;
          }
          return undefined;
        },
        ms,
        "a subscription event",
      ),
    error: (ms = 5000) => wait(() => failure, ms, "a subscription error"),
    // Waits until the server has let go too, so the next subscribe() counts from a settled baseline.
    close: async () => {
      const attached = !options.expectError && !failure;
      const count = await ts.activeSubscriptions();
      await client.dispose();
      const deadline = Date.now() + 2000;
      while (attached && (await ts.activeSubscriptions()) >= count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    },
  };
  if (!options.expectError) {
    const deadline = Date.now() + 5000;
    while ((await ts.activeSubscriptions()) <= before) {
      if (failure) throw new Error(`subscription refused: ${JSON.stringify(failure)}`);
      if (Date.now() > deadline) throw new Error("the server did not attach the subscription");
      await new Promise((r) => setTimeout(r, 10));
    }
    await ts.settle?.();
  }
  return sub;
}

/** A server the tests can subscribe to and observe: its WebSocket URL and how many subscriptions it holds. */
export interface LiveTarget {
  wsUrl: string;
  activeSubscriptions(): Promise<number>;
  /** Resolves once the server's pub/sub subscriptions are in effect (Redis acknowledges SUBSCRIBE asynchronously). */
  settle?(): Promise<void>;
}

function inProcessTarget(ts: TestServer): LiveTarget {
  return {
    wsUrl: ts.wsUrl,
    activeSubscriptions: async () => (await ts.server.metrics.subscriptionsActive.get()).values[0]?.value ?? 0,
    settle: async () => {
      if (ts.server.pubsub instanceof RedisPubSub) await ts.server.pubsub.flushSubscriptions();
    },
  };
}

/** A server in another process, observed through its /metrics; `settle` waits for Redis to list a subscriber on `channel`. */
export function remoteTarget(url: string, settle?: () => Promise<void>): LiveTarget {
  return {
    wsUrl: url.replace(/^http/, "ws") + "/graphql",
    activeSubscriptions: async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return Number(/^subscriptions_active (\d+)/m.exec(text)?.[1] ?? 0);
    },
    settle,
  };
}

/** Posts telephony events as `key`. */
export async function postEvents(ts: TestServer, key: string, events: unknown) {
  const res = await ts.http("/api/events", { key, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(events) });
  return { status: res.status, body: (await res.json()) as any };
}

/** A REGISTER as the SIP engine reports it (contract §6), with `extra` fields over the defaults. */
export const registrationEvent = (domain: string, extension: string, extra: Record<string, unknown> = {}) => ({
  type: "registration",
  action: "register",
  domain,
  extension,
  contact: `sip:${extension}@10.0.0.5:5060`,
  user_agent: "Yealink T54W",
  source_address: "203.0.113.7:5060",
  transport: "udp",
  expires: 3600,
  ...extra,
});

/** A call-leg event as the SIP engine reports it (contract §6), with `extra` fields over the defaults. */
export const callEvent = (domain: string, extension: string, action: string, callId: string, extra: Record<string, unknown> = {}) => ({
  type: "call",
  action,
  call_id: callId,
  domain,
  extension,
  direction: "inbound",
  caller_number: "+15550001111",
  callee_number: extension,
  ...extra,
});
