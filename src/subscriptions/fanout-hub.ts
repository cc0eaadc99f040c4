import { execute, Kind, print, type ExecutionArgs, type ExecutionResult, type GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from "graphql";
import type WebSocket from "ws";
import type { Principal } from "../auth/principal";
import type { Logger } from "../common/logger";
import { buildContext, type ContextDeps } from "../context/build-context";
import type { PubSubEngine } from "../events/pubsub";
import type { Metrics } from "../observability/metrics";
import { clientError } from "../graphql/prepare";
import { replayLog, SeenSequences, sequenceOf, type LivePlan } from "./live";
import { EVENT_KINDS } from "./events";
import { mergeTree, normalizeSubscription, project, unionDocument, type CanonicalTree, type NormalizedSubscription } from "./selection";

/** A socket whose unsent data grows past this is too slow to follow: it is cut off, not buffered for. */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Events waiting to be executed for one group; beyond this the oldest are dropped (and counted). */
const MAX_PENDING_EVENTS = 10_000;
/**
 * After a pub/sub interruption, the log is read from this long before it began: an event committed
 * just before may have been published into the dying connection. What was delivered is skipped by
 * sequence, so the margin costs a read, never a duplicate.
 */
const CATCH_UP_MARGIN_MS = 5_000;
/** A feed waits this long at most for its subscription to come back before reading the log anyway. */
const CATCH_UP_MAX_WAIT_MS = 10_000;
const CATCH_UP_PAGE = 500;
/** `tenant.<id>.<kind>` or `all.<kind>`: the topics whose events the event log holds. */
const LOGGED_TOPIC = /^(?:tenant\.(\d+)|all)\.([a-z]+)$/;

interface Subscriber {
  socket: WebSocket;
  /** `{"id":"<id>","type":"next","payload":` — the only bytes that differ between sharers. */
  prefix: Buffer;
  apiKeyId: number | null;
  /** While its replay runs: the live frames that arrived meanwhile, sent afterwards if newer. */
  buffered?: Array<{ seq: bigint | undefined; payload: Buffer }>;
  /** A resumed subscriber: the sequences it was sent (from the log, then live): none is sent twice. */
  seen?: SeenSequences;
}

const CLOSE = Buffer.from("}");
const TEXT = { binary: false };

/** The distinct-subscription bounds of one instance (SUBSCRIPTION_MAX_DISTINCT_PER_KEY / _PER_TENANT). */
export interface FanoutLimits {
  perKey: number;
  perTenant: number;
}

/**
 * Subscribers whose documents select the same thing the same way (same client shape: response
 * keys, order and canonical fields) in one feed: each event is rendered once for them and the same
 * bytes are written to every member's socket.
 */
class Group {
  readonly subscribers = new Set<Subscriber>();
  /** Subscribers still sending their first payload or replay: the group must outlive them. */
  joining = 0;
  /** What is below the root field: groups that differ only in the root's alias render it once per event. */
  readonly innerKey: string | undefined;
  /** `{"data":{"<root alias>":` — the group's own bytes around the shared rendering. */
  readonly head: string | undefined;

  constructor(
    /** Unique in the hub: the feed's key and the shape's. */
    readonly key: string,
    readonly feed: Feed,
    /** The first member's own arguments: its document runs alone when the shared execution fails. */
    readonly execArgs: ExecutionArgs,
    /** How the group reads the feed's shared result; undefined: not shareable, its own document runs. */
    readonly normalized: NormalizedSubscription | undefined,
  ) {
    if (normalized) {
      this.innerKey = `${normalized.root.canonical}\n${JSON.stringify(normalized.root.sub)}`;
      this.head = `{"data":{${JSON.stringify(normalized.root.key)}:`;
    }
  }
}

/**
 * Everything one instance's subscribers of one root field (with its arguments, resume's `after`
 * aside) and one scope (topic, role, tenant) watch. The feed listens on the topic once, filters and
 * de-duplicates each event once, executes the union of its groups' canonical selections once, and
 * hands each group the result to project: the cost of an event no longer grows with the number of
 * distinct documents (aliases, fragments, field order, subsets of fields).
 */
class Feed {
  readonly groups = new Map<string, Group>();
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  /** Per tenant, the sequences executed: the relay may repeat events (after a crash, a dropped publish); each goes out once. */
  private readonly seen = new Map<number, SeenSequences>();
  private readonly unsubscribeTopic: () => void;
  /** The union of the shareable groups' selections, rebuilt when a group joins or leaves. */
  private union: ExecutionArgs | undefined;
  /** While pub/sub is interrupted and the log is read: live events held back, delivered after the log's. */
  private held: unknown[] | undefined;
  private heldTimer: NodeJS.Timeout | undefined;
  private catchingUp = false;
  private readonly createdAt = Date.now();
  private readonly stopWatching: () => void;

  constructor(
    readonly key: string,
    private readonly hub: FanoutHub,
    private readonly plan: LivePlan,
    private readonly principal: Principal,
    private readonly schema: GraphQLSchema,
  ) {
    this.unsubscribeTopic = hub.pubsub.subscribe(plan.topic, (payload) => this.onEvent(payload));
    this.stopWatching = LOGGED_TOPIC.test(plan.topic)
      ? (hub.pubsub.watchInterruptions?.({ interrupted: () => this.hold(), restored: (since) => void this.catchUp(since) }) ?? (() => undefined))
      : () => undefined;
  }

  /** Pub/sub is interrupted: live events that come before the log is read are held back. */
  private hold(): void {
    if (this.held) return;
    this.held = [];
    const since = Date.now();
    // The interruption may not concern this feed (another shard's subscriber), or not end soon:
    // live events are not held for longer than this; the log is read once more when it does end.
    this.heldTimer = setTimeout(() => void this.catchUp(since), CATCH_UP_MAX_WAIT_MS);
    this.heldTimer.unref();
  }

  /**
   * Pub/sub is back (Redis reconnected, a Sentinel or Cluster failover): what was published from
   * `since` on may be lost. The events of the log committed since then are delivered first (those
   * already delivered are skipped by sequence), then the live events held meanwhile.
   */
  private async catchUp(since: number): Promise<void> {
    if (this.catchingUp) return;
    this.catchingUp = true;
    this.held ??= [];
    clearTimeout(this.heldTimer);
    let relayed = 0;
    try {
      const [, tenant, live] = LOGGED_TOPIC.exec(this.plan.topic)!;
      const kinds = [...EVENT_KINDS.values()].filter((k) => k.live === live).map((k) => k.name);
      const from = new Date(Math.max(since - CATCH_UP_MARGIN_MS, this.createdAt));
      let after = { at: from.toISOString(), tenant: 0, seq: "0" };
      for (;;) {
        const rows: Array<{ tenantId: number; sequence: string; payload: object; at: string }> = await this.hub.deps.dataSource.query(
          `SELECT e.tenant_id AS "tenantId", e.sequence::text AS sequence, e.payload, to_char(e.committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
           FROM event_log e
           WHERE e.kind = ANY($1) AND ($2::int IS NULL OR e.tenant_id = $2)
             AND (e.committed_at, e.tenant_id, e.sequence) > ($3::timestamptz, $4::int, $5::bigint)
           ORDER BY e.committed_at, e.tenant_id, e.sequence LIMIT ${CATCH_UP_PAGE}`,
          [kinds, tenant === undefined ? null : Number(tenant), after.at, after.tenant, after.seq],
        );
        for (const row of rows) {
          const before = this.pending;
          this.accept({ ...row.payload, sequence: row.sequence });
          if (this.pending > before) relayed++;
        }
        if (rows.length < CATCH_UP_PAGE) break;
        const last = rows[rows.length - 1];
        after = { at: last.at, tenant: last.tenantId, seq: last.sequence };
      }
      if (relayed) this.hub.log.info({ topic: this.plan.topic, relayed }, "relayed again from the event log the events pub/sub lost while it was interrupted");
    } catch (error) {
      this.hub.log.error({ err: error, topic: this.plan.topic }, "could not read the event log after a pub/sub interruption; events published meanwhile may be missing");
    } finally {
      const held = this.held ?? [];
      this.held = undefined;
      this.catchingUp = false;
      for (const payload of held) this.accept(payload);
    }
  }

  changed(): void {
    this.union = undefined;
  }

  private unionArgs(): ExecutionArgs | undefined {
    if (this.union) return this.union;
    const tree: CanonicalTree = new Map();
    for (const group of this.groups.values()) if (group.normalized) mergeTree(tree, group.normalized.tree);
    if (tree.size === 0) return undefined;
    this.union = { schema: this.schema, document: unionDocument(tree) };
    return this.union;
  }

  private onEvent(payload: unknown): void {
    if (this.held) {
      if (this.held.length < MAX_PENDING_EVENTS) this.held.push(payload);
      else this.hub.metrics.subscriptionEventsDropped.inc();
      return;
    }
    this.accept(payload);
  }

  private accept(payload: unknown): void {
    if (this.plan.filter && !this.plan.filter(payload)) return;
    // The scope is re-checked on every event, for every subscriber of the feed (they share it): a
    // tenant's subscriber never receives another tenant's event, whatever reached the topic.
    const tenantId = (payload as { tenantId?: unknown } | null)?.tenantId;
    if (this.principal.tenantId !== null && typeof tenantId === "number" && tenantId !== this.principal.tenantId) {
      this.hub.log.error({ topic: this.plan.topic, tenantId }, "dropping another tenant's event that reached a tenant's subscriptions");
      return;
    }
    const seq = sequenceOf(payload);
    if (seq !== undefined) {
      const tenant = (payload as { tenantId: number }).tenantId;
      const seen = this.seen.get(tenant);
      if (!seen) this.seen.set(tenant, new SeenSequences(seq));
      else if (!seen.first(seq)) return;
    }
    if (this.pending >= MAX_PENDING_EVENTS) {
      this.hub.metrics.subscriptionEventsDropped.inc();
      return;
    }
    this.pending++;
    this.chain = this.chain.then(async () => {
      this.pending--;
      if (this.groups.size === 0) return;
      try {
        await this.deliver(payload, seq);
      } catch (error) {
        this.hub.log.error({ err: error, topic: this.plan.topic }, "a subscription event could not be executed");
      }
    });
  }

  private async deliver(payload: unknown, seq: bigint | undefined): Promise<void> {
    const union = this.unionArgs();
    const shared = union ? await this.hub.execute(union, this.principal, payload) : undefined;
    // The shared execution answers every shareable group unless it failed somewhere: then each
    // group runs its own document, so every subscriber gets exactly the errors its own selection has.
    const data = shared && !shared.errors ? (shared.data as Record<string, unknown> | null | undefined) : undefined;
    const rendered = new Map<string, string>();
    for (const group of [...this.groups.values()]) {
      if (group.subscribers.size === 0) continue;
      let json: string;
      const normalized = group.normalized;
      if (normalized && data) {
        const { root } = normalized;
        // Documents that differ only in the root field's alias share the rendering of what is below it.
        let inner = rendered.get(group.innerKey!);
        if (inner === undefined) rendered.set(group.innerKey!, (inner = JSON.stringify(project(data[root.canonical], root.sub))));
        json = `${group.head}${inner}}}`;
      } else {
        json = await this.hub.run(group.execArgs, this.principal, payload);
      }
      this.hub.broadcast(group, json, seq);
    }
  }

  close(): void {
    clearTimeout(this.heldTimer);
    this.stopWatching();
    this.unsubscribeTopic();
  }
}

/**
 * Shared execution of subscription events for graphql-ws clients. Replaces graphql-ws's per
 * subscriber execute + stringify with one execute per event per feed (a root field, its arguments
 * and a scope), whatever the number of distinct documents that watch it.
 */
export class FanoutHub {
  private readonly feeds = new Map<string, Feed>();
  private groupCount = 0;
  private readonly byKey = new Map<number, Set<WebSocket>>();
  /** Distinct groups held per API key (the configured admin key counts as "admin") and per tenant, with how many subscribers each. */
  private readonly distinctByKey = new Map<number | "admin", Map<string, number>>();
  private readonly distinctByTenant = new Map<number, Map<string, number>>();

  constructor(
    readonly pubsub: PubSubEngine,
    readonly deps: ContextDeps,
    readonly metrics: Metrics,
    readonly log: Logger,
    private readonly formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError,
    private readonly limits: FanoutLimits = { perKey: Infinity, perTenant: Infinity },
  ) {}

  /** Adds one subscription of one socket; returns the function that removes it. */
  async register(socket: WebSocket, id: string, principal: Principal, execArgs: ExecutionArgs, plan: LivePlan): Promise<() => void> {
    const normalized = normalizeSubscription(execArgs);
    const feedKey = JSON.stringify([plan.topic, ...identity(principal, execArgs, normalized)]);
    const groupKey = `${feedKey}\n${normalized?.shapeKey ?? ""}`;
    const distinct = distinctKey(principal, execArgs, normalized);
    const refusal = this.refusal(principal, distinct);
    if (refusal) throw refusal;
    let feed = this.feeds.get(feedKey);
    if (!feed) {
      feed = new Feed(feedKey, this, plan, { role: principal.role, tenantId: principal.tenantId, apiKeyId: null }, execArgs.schema);
      this.feeds.set(feedKey, feed);
    }
    let group = feed.groups.get(groupKey);
    if (!group) {
      group = new Group(groupKey, feed, execArgs, normalized);
      feed.groups.set(groupKey, group);
      feed.changed();
      this.metrics.subscriptionGroups.set(++this.groupCount);
    }
    this.hold(principal, distinct, +1);
    const subscriber: Subscriber = { socket, prefix: Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`), apiKeyId: principal.apiKeyId };
    group.joining++;
    try {
      if (plan.initial) this.send(subscriber, Buffer.from(await this.run(execArgs, principal, await plan.initial())));
      if (plan.replay) {
        // Joined before the log is read, so nothing published from now on is missed; what the log
        // and the live feed both hold goes out once, by sequence.
        subscriber.buffered = [];
        group.subscribers.add(subscriber);
        await this.pubsub.flushSubscriptions?.();
        const last = await replayLog(plan.replay, plan.filter, async (payload) => {
          this.send(subscriber, Buffer.from(await this.run(execArgs, principal, payload)));
        });
        const live = subscriber.buffered;
        subscriber.buffered = undefined;
        subscriber.seen = new SeenSequences(last);
        for (const frame of live) this.sendLive(subscriber, frame.seq, frame.payload);
      }
    } catch (error) {
      group.joining--;
      this.leave(group, subscriber, principal, distinct);
      throw error;
    }
    group.joining--;
    group.subscribers.add(subscriber);
    this.metrics.subscriptionsActive.inc();
    if (principal.apiKeyId !== null) {
      let sockets = this.byKey.get(principal.apiKeyId);
      if (!sockets) this.byKey.set(principal.apiKeyId, (sockets = new Set()));
      sockets.add(socket);
    }
    const owner = group;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.metrics.subscriptionsActive.dec();
      this.leave(owner, subscriber, principal, distinct);
    };
  }

  /**
   * Why a subscription may not start (undefined: it may): one more distinct subscription than its
   * key, or its tenant's keys together, may hold. Asked before the subscription runs (so the client
   * gets a graphql-ws `error` message) and again when it registers (the count is then taken).
   */
  refusal(principal: Principal, execArgs: ExecutionArgs | string): GraphQLError | undefined {
    const key = typeof execArgs === "string" ? execArgs : distinctKey(principal, execArgs, normalizeSubscription(execArgs));
    const byKey = this.distinctByKey.get(principal.apiKeyId ?? "admin");
    if (!byKey?.has(key) && (byKey?.size ?? 0) >= this.limits.perKey) {
      return clientError(
        `Too many distinct subscriptions for one API key (at most ${this.limits.perKey}, SUBSCRIPTION_MAX_DISTINCT_PER_KEY): share one document among screens, or filter less narrowly.`,
        "BAD_REQUEST",
      );
    }
    if (principal.tenantId === null) return undefined;
    const byTenant = this.distinctByTenant.get(principal.tenantId);
    if (!byTenant?.has(key) && (byTenant?.size ?? 0) >= this.limits.perTenant) {
      return clientError(
        `Too many distinct subscriptions for one tenant (at most ${this.limits.perTenant}, SUBSCRIPTION_MAX_DISTINCT_PER_TENANT): share one document among screens, or filter less narrowly.`,
        "BAD_REQUEST",
      );
    }
    return undefined;
  }

  /** Counts one subscriber of a group for its key and its tenant (delta +1), or forgets one (-1). */
  private hold(principal: Principal, distinct: string, delta: 1 | -1): void {
    const count = <K>(maps: Map<K, Map<string, number>>, owner: K) => {
      let held = maps.get(owner);
      if (!held) maps.set(owner, (held = new Map()));
      const n = (held.get(distinct) ?? 0) + delta;
      if (n > 0) held.set(distinct, n);
      else held.delete(distinct);
      if (held.size === 0) maps.delete(owner);
    };
    count(this.distinctByKey, principal.apiKeyId ?? "admin");
    if (principal.tenantId !== null) count(this.distinctByTenant, principal.tenantId);
  }

  private leave(group: Group, subscriber: Subscriber, principal: Principal, distinct: string): void {
    group.subscribers.delete(subscriber);
    this.hold(principal, distinct, -1);
    const feed = group.feed;
    if (group.subscribers.size > 0 || group.joining > 0 || feed.groups.get(group.key) !== group) return;
    feed.groups.delete(group.key);
    feed.changed();
    this.metrics.subscriptionGroups.set(--this.groupCount);
    if (feed.groups.size === 0 && this.feeds.get(feed.key) === feed) {
      feed.close();
      this.feeds.delete(feed.key);
    }
  }

  /** Writes one group's rendering of an event to each of its subscribers. */
  broadcast(group: Group, json: string, seq: bigint | undefined): void {
    // Encoded once for everyone; each frame is this subscriber's prefix around the shared bytes.
    const payload = Buffer.from(json);
    let sent = 0;
    for (const subscriber of group.subscribers) {
      if (subscriber.buffered) subscriber.buffered.push({ seq, payload });
      else if (this.sendLive(subscriber, seq, payload)) sent++;
    }
    this.metrics.subscriptionMessages.inc(sent);
  }

  /** Executes a selection for one event with fresh loaders (counted: the fan-out's unit of work). */
  async execute(execArgs: ExecutionArgs, principal: Principal, payload: unknown): Promise<ExecutionResult> {
    this.metrics.subscriptionExecutions.inc();
    const contextValue = buildContext(this.deps, principal, "graphql");
    return execute({ ...execArgs, rootValue: payload, contextValue });
  }

  /** Executes a subscriber's own document for one event and serializes it (errors formatted as everywhere). */
  async run(execArgs: ExecutionArgs, principal: Principal, payload: unknown): Promise<string> {
    const result = await this.execute(execArgs, principal, payload);
    if (!result.errors) return JSON.stringify(result);
    const errors = result.errors.map((e: GraphQLError) => this.formatError(e.toJSON(), e));
    return JSON.stringify({ ...result, errors });
  }

  /** A live frame: not sent to a resumed subscriber who already had it from the log. */
  sendLive(subscriber: Subscriber, seq: bigint | undefined, payload: Buffer): boolean {
    if (subscriber.seen && seq !== undefined && !subscriber.seen.first(seq)) return false;
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
    for (const feed of this.feeds.values()) feed.close();
    this.feeds.clear();
    this.byKey.clear();
    this.distinctByKey.clear();
    this.distinctByTenant.clear();
  }
}

/**
 * What makes two subscriptions of one principal's scope the same: the root field with its arguments
 * and the shape below it — or, for a document that cannot be shared, its text, variables and
 * operation. The topic follows from these and the scope, so limits can be judged before it is known.
 */
function identity(principal: Principal, execArgs: ExecutionArgs, normalized: NormalizedSubscription | undefined): unknown[] {
  const scope = [principal.role, principal.tenantId];
  if (normalized) return [normalized.feedKey, ...scope];
  return [print(execArgs.document), withoutAfter(execArgs), execArgs.operationName ?? null, ...scope];
}

/** The key a subscription counts under for SUBSCRIPTION_MAX_DISTINCT_PER_KEY / _PER_TENANT. */
function distinctKey(principal: Principal, execArgs: ExecutionArgs, normalized: NormalizedSubscription | undefined): string {
  return `${JSON.stringify(identity(principal, execArgs, normalized))}\n${normalized?.shapeKey ?? ""}`;
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
