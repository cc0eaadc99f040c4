import { execute, Kind, print, type ExecutionArgs, type GraphQLError, type GraphQLFormattedError } from "graphql";
import type WebSocket from "ws";
import type { Principal } from "../auth/principal";
import type { Logger } from "../common/logger";
import { buildContext, type ContextDeps } from "../context/build-context";
import type { PubSubEngine } from "../events/pubsub";
import type { Metrics } from "../observability/metrics";
import { replayLog, sequenceOf, type LivePlan } from "./live";

/** A socket whose unsent data grows past this is too slow to follow: it is cut off, not buffered for. */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Events waiting to be executed for one group; beyond this the oldest are dropped (and counted). */
const MAX_PENDING_EVENTS = 10_000;

interface Subscriber {
  socket: WebSocket;
  /** `{"id":"<id>","type":"next","payload":` — the only bytes that differ between sharers. */
  prefix: Buffer;
  apiKeyId: number | null;
  /** While its replay runs: the live frames that arrived meanwhile, sent afterwards if newer. */
  buffered?: Array<{ seq: bigint | undefined; payload: Buffer }>;
  /** A resumed subscriber: the last sequence it was sent (a live event at or below it is not sent again). */
  lastSeq?: bigint;
}

const CLOSE = Buffer.from("}");
const TEXT = { binary: false };

/**
 * Subscribers that asked the same thing with the same rights: same document, variables, operation,
 * topic, role and tenant. Each event is executed once for the group and the serialized payload is
 * written to every member's socket.
 */
class Group {
  readonly subscribers = new Set<Subscriber>();
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  /** Per tenant, the newest sequence executed: the relay may repeat an event after a crash; it goes out once. */
  private readonly lastSeq = new Map<number, bigint>();
  private readonly unsubscribeTopic: () => void;

  constructor(
    readonly key: string,
    private readonly hub: FanoutHub,
    private readonly plan: LivePlan,
    private readonly execArgs: ExecutionArgs,
    private readonly principal: Principal,
  ) {
    this.unsubscribeTopic = hub.pubsub.subscribe(plan.topic, (payload) => this.onEvent(payload));
  }

  private onEvent(payload: unknown): void {
    if (this.plan.filter && !this.plan.filter(payload)) return;
    const seq = sequenceOf(payload);
    if (seq !== undefined) {
      const tenantId = (payload as { tenantId: number }).tenantId;
      const last = this.lastSeq.get(tenantId);
      if (last !== undefined && seq <= last) return;
      this.lastSeq.set(tenantId, seq);
    }
    if (this.pending >= MAX_PENDING_EVENTS) {
      this.hub.metrics.subscriptionEventsDropped.inc();
      return;
    }
    this.pending++;
    this.chain = this.chain.then(async () => {
      this.pending--;
      if (this.subscribers.size === 0) return;
      const json = await this.hub.run(this.execArgs, this.principal, payload);
      this.broadcast(json, seq);
    });
  }

  private broadcast(json: string, seq: bigint | undefined): void {
    // Encoded once for everyone; each frame is this subscriber's prefix around the shared bytes.
    const payload = Buffer.from(json);
    let sent = 0;
    for (const subscriber of this.subscribers) {
      if (subscriber.buffered) subscriber.buffered.push({ seq, payload });
      else if (this.hub.sendLive(subscriber, seq, payload)) sent++;
    }
    this.hub.metrics.subscriptionMessages.inc(sent);
  }

  close(): void {
    this.unsubscribeTopic();
  }
}

/**
 * Shared execution of subscription events for graphql-ws clients. Replaces graphql-ws's per
 * subscriber execute + stringify with one execute per event per distinct subscription.
 */
export class FanoutHub {
  private readonly groups = new Map<string, Group>();
  private readonly byKey = new Map<number, Set<WebSocket>>();

  constructor(
    readonly pubsub: PubSubEngine,
    private readonly deps: ContextDeps,
    readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError,
  ) {}

  /** Adds one subscription of one socket; returns the function that removes it. */
  async register(socket: WebSocket, id: string, principal: Principal, execArgs: ExecutionArgs, plan: LivePlan): Promise<() => void> {
    const key = JSON.stringify([
      print(execArgs.document),
      // Where a subscriber resumes is its own affair: the live part is the same for all.
      plan.replay ? withoutAfter(execArgs) : (execArgs.variableValues ?? {}),
      execArgs.operationName ?? null,
      plan.topic,
      principal.role,
      principal.tenantId,
    ]);
    let group = this.groups.get(key);
    if (!group) {
      group = new Group(key, this, plan, execArgs, { role: principal.role, tenantId: principal.tenantId, apiKeyId: null });
      this.groups.set(key, group);
      this.metrics.subscriptionGroups.set(this.groups.size);
    }
    const subscriber: Subscriber = { socket, prefix: Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`), apiKeyId: principal.apiKeyId };
    if (plan.initial) this.send(subscriber, Buffer.from(await this.run(execArgs, principal, await plan.initial())));
    if (plan.replay) {
      // Joined before the log is read, so nothing published from now on is missed; what the log
      // and the live feed both hold goes out once, by sequence.
      subscriber.buffered = [];
      group.subscribers.add(subscriber);
      let last: bigint;
      try {
        await this.pubsub.flushSubscriptions?.();
        last = await replayLog(plan.replay, plan.filter, async (payload) => {
          this.send(subscriber, Buffer.from(await this.run(execArgs, principal, payload)));
        });
      } catch (error) {
        this.leave(group, subscriber);
        throw error;
      }
      const live = subscriber.buffered;
      subscriber.buffered = undefined;
      subscriber.lastSeq = last;
      for (const frame of live) this.sendLive(subscriber, frame.seq, frame.payload);
    }
    group.subscribers.add(subscriber);
    this.metrics.subscriptionsActive.inc();
    if (principal.apiKeyId !== null) {
      let sockets = this.byKey.get(principal.apiKeyId);
      if (!sockets) this.byKey.set(principal.apiKeyId, (sockets = new Set()));
      sockets.add(socket);
    }
    const owner = group;
    return () => {
      if (owner.subscribers.has(subscriber)) this.metrics.subscriptionsActive.dec();
      this.leave(owner, subscriber);
    };
  }

  private leave(group: Group, subscriber: Subscriber): void {
    group.subscribers.delete(subscriber);
    if (group.subscribers.size === 0 && this.groups.get(group.key) === group) {
      group.close();
      this.groups.delete(group.key);
      this.metrics.subscriptionGroups.set(this.groups.size);
    }
  }

  /** Executes the subscription's selection for one event, with fresh loaders, and serializes it once. */
  async run(execArgs: ExecutionArgs, principal: Principal, payload: unknown): Promise<string> {
    const contextValue = buildContext(this.deps, principal, "graphql");
    const result = await execute({ ...execArgs, rootValue: payload, contextValue });
    if (!result.errors) return JSON.stringify(result);
    const errors = result.errors.map((e: GraphQLError) => this.formatError(e.toJSON(), e));
    return JSON.stringify({ ...result, errors });
  }

  /** A live frame: not sent to a resumed subscriber who already had it from the log. */
  sendLive(subscriber: Subscriber, seq: bigint | undefined, payload: Buffer): boolean {
    if (subscriber.lastSeq !== undefined && seq !== undefined) {
      if (seq <= subscriber.lastSeq) return false;
      subscriber.lastSeq = seq;
    }
    return this.send(subscriber, payload);
  }

  /** Writes one `next` frame; a socket that cannot keep up is cut off rather than buffered for. */
  send(subscriber: Subscriber, payload: Buffer): boolean {
    const { socket } = subscriber;
    if (socket.readyState !== 1) return false;
    if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.log.warn({ buffered: socket.bufferedAmount }, "closing a WebSocket that cannot keep up with its subscriptions");
      this.metrics.slowConsumersClosed.inc();
      socket.terminate();
      return false;
    }
    socket.send(Buffer.concat([subscriber.prefix, payload, CLOSE]), TEXT);
    return true;
  }

  /** Closes every socket authenticated with a revoked key (the revocation reaches every instance through pub/sub). */
  closeKey(apiKeyId: number): void {
    const sockets = this.byKey.get(apiKeyId);
    if (!sockets) return;
    this.byKey.delete(apiKeyId);
    for (const socket of sockets) socket.close(4403, "Forbidden: API key revoked");
  }

  forgetSocket(socket: WebSocket, apiKeyId: number | null): void {
    if (apiKeyId === null) return;
    const sockets = this.byKey.get(apiKeyId);
    sockets?.delete(socket);
    if (sockets?.size === 0) this.byKey.delete(apiKeyId);
  }

  close(): void {
    for (const group of this.groups.values()) group.close();
    this.groups.clear();
    this.byKey.clear();
  }
}

/** The variables without the one that carries the root field's `after` argument. */
function withoutAfter(execArgs: ExecutionArgs): Record<string, unknown> {
  const variables = { ...(execArgs.variableValues ?? {}) };
  for (const definition of execArgs.document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    for (const selection of definition.selectionSet.selections) {
      if (selection.kind !== Kind.FIELD) continue;
      const after = selection.arguments?.find((a) => a.name.value === "after");
      if (after?.value.kind === Kind.VARIABLE) delete variables[after.value.name.value];
    }
  }
  return variables;
}
