import type { RedisClient } from "../events/redis-topology";
import { Role } from "../auth/role";
import type { Logger } from "../common/logger";
import { buildContext, type ContextDeps } from "../context/build-context";
import { UNBIND_SUFFIX } from "../engine/binding-notes";
import { STREAM_KEY } from "./stream-consumer";

/**
 * Reconciliation with the SIP engine (contract §14, "the engine's view converges"). Every
 * RECONCILE_INTERVAL seconds each engine node publishes, on the event stream, a snapshot of what it
 * holds (deploy/kamailio/routes/reconcile.cfg): its registrations (RPC ul.dump) and its dialogs (RPC
 * dlg.list), each cut into base64 parts, one stream entry per part. Parts of one snapshot may reach
 * different instances; they are joined in Redis, and the instance that stores the last one
 * reconciles (once: a marker taken with SET NX). The product then corrects what it holds with the
 * usual telephony events, through the one ingestion handler (so the same events, CDRs, audit and
 * idempotence apply):
 *   - a device registered in the product whose binding no engine node holds → unregister;
 *   - a binding the engine holds that the product lacks → register (its remaining expiry);
 *   - a call leg in progress whose dialog no engine node holds → end (with its CDR).
 * Only what is older than the snapshot (its taken_at, minus the second the events' occurred_at is
 * cut to) is judged: an event the engine sent after the dump must not be undone by it.
 * Several nodes: each node's latest set is kept for ENGINE_RECONCILE_S, and the product compares
 * with the union of the sets of the nodes heard from within that time (a node gone quiet for longer
 * no longer keeps anything alive).
 */

export type SnapshotKind = "location" | "dialogs";

export interface SnapshotPart {
  node: string;
  kind: SnapshotKind;
  generation: string;
  takenAt: number;
  interval: number;
  part: number;
  parts: number;
  data: string;
}

/** Parts of a snapshot waiting for the others (seconds): a snapshot never completed is dropped. */
const PART_TTL_S = 600;
/** Largest number of parts of one snapshot (RECONCILE_PART bytes each). */
const MAX_PARTS = 100_000;
/** occurred_at has whole seconds: an event up to this long after taken_at may carry an earlier time. */
const SLACK_MS = 2_000;
/** Events handed to the ingestion handler at once. */
const CHUNK = 2_000;

const SECONDS = /^[0-9]{1,12}(\.[0-9]{1,9})?$/;

/** A snapshot part, or null when the entry is not one (or not a valid one). */
export function parseSnapshotPart(raw: unknown): SnapshotPart | null {
  if (typeof raw !== "object" || raw === null) return null;
  const r = raw as Record<string, unknown>;
  if (r.type !== "snapshot") return null;
  const ok =
    typeof r.node === "string" && r.node.length > 0 && r.node.length <= 255 &&
    (r.kind === "location" || r.kind === "dialogs") &&
    typeof r.generation === "string" && SECONDS.test(r.generation) &&
    typeof r.taken_at === "string" && SECONDS.test(r.taken_at) &&
    Number.isInteger(r.interval) && (r.interval as number) >= 1 &&
    Number.isInteger(r.parts) && (r.parts as number) >= 1 && (r.parts as number) <= MAX_PARTS &&
    Number.isInteger(r.part) && (r.part as number) >= 0 && (r.part as number) < (r.parts as number) &&
    typeof r.data === "string";
  if (!ok) return null;
  return {
    node: r.node as string,
    kind: r.kind as SnapshotKind,
    generation: r.generation as string,
    takenAt: Math.round(Number(r.taken_at) * 1000),
    interval: r.interval as number,
    part: r.part as number,
    parts: r.parts as number,
    data: r.data as string,
  };
}

export function isSnapshotEntry(raw: unknown): boolean {
  return typeof raw === "object" && raw !== null && (raw as { type?: unknown }).type === "snapshot";
}

interface Binding {
  aor: string;
  contact: string;
  expires: number;
  userAgent?: string;
  received?: string;
  socket?: string;
}

export interface ReconcileOutcome {
  node: string;
  kind: SnapshotKind;
  held: number;
  events: number;
}

export class EngineReconciler {
  constructor(
    private readonly deps: ContextDeps,
    private readonly redis: RedisClient,
    private readonly prefix: string,
    /** ENGINE_RECONCILE_S: how long a node's set counts after it was taken; 0 turns reconciliation off. */
    private readonly periodS: number,
    private readonly log: Logger,
  ) {}

  /** Stores one part; reconciles when it completes its snapshot. Null when nothing was reconciled. */
  async accept(part: SnapshotPart): Promise<ReconcileOutcome | null> {
    if (this.periodS === 0) return null;
    if (part.interval * 2 > this.periodS) {
      this.log.warn({ node: part.node, interval: part.interval, engineReconcileS: this.periodS }, "the engine's RECONCILE_INTERVAL is more than half ENGINE_RECONCILE_S: convergence may take longer");
    }
    const key = `${this.prefix}pbx:snapshot:${part.node}:${part.kind}:${part.generation}`;
    const results = await this.redis.multi().hset(key, String(part.part), part.data).expire(key, PART_TTL_S).hlen(key).exec();
    const stored = Number(results?.[2]?.[1] ?? 0);
    if (stored < part.parts) return null;
    // Every part is in: one instance (the first to get here) reconciles.
    if ((await this.redis.set(`${key}:done`, "1", "EX", PART_TTL_S, "NX")) !== "OK") return null;
    const fields = await this.redis.hgetall(key);
    await this.redis.del(key);
    const chunks: Buffer[] = [];
    for (let i = 0; i < part.parts; i++) {
      const data = fields[String(i)];
      if (data === undefined) return null;
      chunks.push(Buffer.from(data, "base64"));
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      this.log.warn({ node: part.node, kind: part.kind, generation: part.generation }, "an engine snapshot is not valid JSON; ignored");
      return null;
    }
    return part.kind === "location" ? this.reconcileLocation(part, bindingsOf(body)) : this.reconcileDialogs(part, callIdsOf(body));
  }

  /**
   * Keeps this node's set and returns the union of the sets of the nodes heard from within
   * ENGINE_RECONCILE_S, and the oldest taken_at among them (what is older than that is judged).
   */
  private async union(part: SnapshotPart, keys: string[]): Promise<{ keys: Set<string>; takenAt: number }> {
    const setsKey = `${this.prefix}pbx:engine:${part.kind}`;
    await this.redis.hset(setsKey, part.node, JSON.stringify({ takenAt: part.takenAt, keys }));
    await this.redis.expire(setsKey, this.periodS * 4);
    const all = await this.redis.hgetall(setsKey);
    const union = new Set(keys);
    let oldest = part.takenAt;
    const gone: string[] = [];
    for (const [node, text] of Object.entries(all)) {
      if (node === part.node) continue;
      const other = JSON.parse(text) as { takenAt: number; keys: string[] };
      // A node quiet for ENGINE_RECONCILE_S is gone (stopped, or renamed by a restart).
      if (other.takenAt < part.takenAt - this.periodS * 1000) {
        gone.push(node);
        continue;
      }
      for (const k of other.keys) union.add(k);
      oldest = Math.min(oldest, other.takenAt);
    }
    if (gone.length) await this.redis.hdel(setsKey, ...gone);
    return { keys: union, takenAt: oldest };
  }

  private async reconcileLocation(part: SnapshotPart, bindings: Binding[]): Promise<ReconcileOutcome> {
    const keyOf = (aor: string, contact: string) => `${aor.toLowerCase()}|${contact}`;
    const { keys, takenAt } = await this.union(part, bindings.map((b) => keyOf(b.aor, b.contact)));
    const threshold = new Date(takenAt - SLACK_MS);
    const ctx = this.context(part);
    const devices: Array<{ number: string; domain: string; contact: string; registeredAt: Date; unregisteredAt: Date | null; live: boolean }> = await ctx.manager.query(
      `SELECT e.extension_number AS "number", t.sip_domain AS "domain", d.contact_uri AS "contact", d.registered_at AS "registeredAt",
              d.unregistered_at AS "unregisteredAt", (d.unregistered_at IS NULL AND d.expires_at > now()) AS "live"
         FROM device d JOIN extension e ON e.id = d.extension_id JOIN tenant t ON t.id = d.tenant_id
        WHERE (d.unregistered_at IS NULL AND d.expires_at > now()) OR d.unregistered_at >= $1`,
      [threshold],
    );
    const occurredAt = new Date(part.takenAt).toISOString();
    const events: object[] = [];
    const known = new Map(devices.map((d) => [keyOf(`${d.number}@${d.domain}`, d.contact), d]));
    // registered in the product, held by no node, and registered before the snapshot
    for (const [key, d] of known) {
      if (d.live && !keys.has(key) && new Date(d.registeredAt) < threshold) {
        events.push({ type: "registration", action: "unregister", domain: d.domain, extension: d.number, contact: d.contact, occurred_at: occurredAt });
      }
    }
    // held by this node, and the product has it not (nor saw it end after the snapshot)
    const missing = bindings.filter((b) => {
      const d = known.get(keyOf(b.aor, b.contact));
      return !(d?.live || (d?.unregisteredAt && new Date(d.unregisteredAt) >= threshold)) && b.aor.lastIndexOf("@") > 0 && b.expires > 0;
    });
    // ...and whose extension was not disabled or deleted since (the engine drops such a binding at
    // its next call or REGISTER, src/engine/binding-notes.ts): it must not come back as registered
    // One EXISTS per key (ioredis pipelines them), not a pipeline object: in a Redis Cluster the keys lie in different slots.
    const noted = await Promise.all(missing.map((b) => this.redis.exists(`${this.prefix}${STREAM_KEY}${UNBIND_SUFFIX}${b.aor}`).catch(() => 1)));
    for (const [i, b] of missing.entries()) {
      if (Number(noted[i] ?? 1) !== 0) continue;
      const at = b.aor.lastIndexOf("@");
      const transport = b.socket?.split(":")[0]?.toLowerCase();
      const source = /^sip:([^;]+)/.exec(b.received ?? "")?.[1];
      events.push({
        type: "registration",
        action: "register",
        domain: b.aor.slice(at + 1),
        extension: b.aor.slice(0, at),
        contact: b.contact,
        expires: Math.min(b.expires, 604_800),
        ...(b.userAgent ? { user_agent: b.userAgent } : {}),
        ...(source ? { source_address: source } : {}),
        ...(transport && ["udp", "tcp", "tls", "ws", "wss"].includes(transport) ? { transport } : {}),
        occurred_at: occurredAt,
      });
    }
    return { node: part.node, kind: part.kind, held: bindings.length, events: await this.apply(part, events) };
  }

  private async reconcileDialogs(part: SnapshotPart, callIds: string[]): Promise<ReconcileOutcome> {
    const { keys, takenAt } = await this.union(part, callIds);
    const threshold = new Date(takenAt - SLACK_MS);
    const ctx = this.context(part);
    const legs: Array<{ tenantId: number; callId: string; linkedId: string | null; number: string }> = await ctx.manager.query(
      `SELECT a.tenant_id AS "tenantId", a.call_id AS "callId", a.linked_id AS "linkedId", e.extension_number AS "number"
         FROM active_call a JOIN extension e ON e.id = a.extension_id
        WHERE a.started_at < $1`,
      [threshold],
    );
    const occurredAt = new Date(part.takenAt).toISOString();
    const events = legs
      .filter((leg) => !keys.has(leg.linkedId ?? leg.callId.replace(/;callee$/, "")) && !keys.has(leg.callId))
      .map((leg) => ({ type: "call", action: "end", tenant_id: leg.tenantId, extension: leg.number, call_id: leg.callId, hangup_cause: "engine_lost", occurred_at: occurredAt }));
    return { node: part.node, kind: part.kind, held: callIds.length, events: await this.apply(part, events) };
  }

  private context(part: SnapshotPart) {
    return buildContext(this.deps, { role: Role.INGEST, tenantId: null, apiKeyId: null }, "ingest", `snapshot:${part.node}:${part.kind}:${part.generation}`);
  }

  /** Applies the corrections through the ingestion handler; returns how many changed something. */
  private async apply(part: SnapshotPart, events: object[]): Promise<number> {
    let applied = 0;
    for (let i = 0; i < events.length; i += CHUNK) {
      const ctx = this.context(part);
      const outcomes = await ctx.services.ingest.ingestMany(ctx, events.slice(i, i + CHUNK));
      for (const [j, outcome] of outcomes.entries()) {
        if (outcome.status === "applied") applied++;
        else if (outcome.status === "rejected") ctx.log.debug({ event: events[i + j], code: outcome.code, reason: outcome.message }, "a reconciliation event was refused");
      }
    }
    if (applied) this.log.info({ node: part.node, kind: part.kind, generation: part.generation, corrected: applied }, "reconciled the product with an engine snapshot");
    return applied;
  }
}

/** The bindings of an RPC ul.dump answer ({result: {Domains: [{Domain: {AoRs: [{Info: {AoR, Contacts: [{Contact}]}}]}}]}}). */
export function bindingsOf(body: unknown): Binding[] {
  const out: Binding[] = [];
  const result = (body as { result?: { Domains?: unknown } })?.result;
  for (const domain of asArray(result?.Domains)) {
    for (const aor of asArray((domain as { Domain?: { AoRs?: unknown } })?.Domain?.AoRs)) {
      const info = (aor as { Info?: { AoR?: unknown; Contacts?: unknown } })?.Info;
      if (typeof info?.AoR !== "string") continue;
      for (const c of asArray(info.Contacts)) {
        const contact = (c as { Contact?: Record<string, unknown> })?.Contact;
        if (!contact || typeof contact.Address !== "string") continue;
        // Expires: seconds left, or "permanent" / "deleted" / "expired"
        const expires = typeof contact.Expires === "number" ? contact.Expires : contact.Expires === "permanent" ? 3600 : 0;
        out.push({
          aor: info.AoR,
          contact: contact.Address,
          expires,
          userAgent: typeof contact["User-Agent"] === "string" && contact["User-Agent"] !== "[not set]" ? (contact["User-Agent"] as string) : undefined,
          received: typeof contact.Received === "string" ? contact.Received : undefined,
          socket: typeof contact.Socket === "string" ? contact.Socket : undefined,
        });
      }
    }
  }
  return out;
}

/** The SIP Call-IDs of an RPC dlg.list answer ({result: [{"call-id": …}, …]}). */
export function callIdsOf(body: unknown): string[] {
  return asArray((body as { result?: unknown })?.result)
    .map((d) => (d as Record<string, unknown>)?.["call-id"])
    .filter((id): id is string => typeof id === "string");
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
