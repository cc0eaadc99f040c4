import type { RequestContext } from "../context/request-context";
import { ACTIVE_CALL_COLUMNS, type ActiveCallRow } from "../modules/active-call/active-call.service";
import { CDR_COLUMNS, type CdrRow } from "../modules/cdr/cdr.service";
import { publishCall, type CallEventType } from "../subscriptions/events";
import type { ResolvedTarget } from "./ingest.service";
import type { CallEventInput } from "./telephony-event";

type Applied = { status: "applied" | "duplicate" | "ignored"; reason?: string };

/** Partitions kept by maintenance around now; a CDR outside them gets its month created first. */
const PARTITION_WINDOW_MS = 60 * 24 * 3600 * 1000;

/** What one leg (tenant, call_id, extension) is, as the transaction has left it. */
interface LegState {
  current: ActiveCallRow | undefined;
  /** It has a CDR (consulted only while no leg is in progress). */
  ended: boolean;
}

const legKey = (tenantId: number, callId: string, extensionId: number) => `call-leg:${tenantId}:${callId}:${extensionId}`;

/**
 * The call legs of a transaction, locked and read for every event of a batch at once: one advisory
 * lock per leg (tenant, call_id, extension), all taken by one statement in hash order so that two
 * batches (on any instance) never deadlock, then the legs in progress and the legs already ended in
 * one statement each. A repeated or reordered event — here or in another transaction — therefore
 * sees the effect of the one before it. Valid only inside the transaction that locked them.
 */
export class CallLegs {
  private constructor(private readonly legs: Map<string, LegState>) {}

  static async lock(tx: RequestContext, targets: readonly ResolvedTarget[], callIds: readonly string[]): Promise<CallLegs> {
    const unique = new Map(targets.map((target, i) => [legKey(target.tenantId, callIds[i], target.extension.id), { ...target, callId: callIds[i] }]));
    const book = new CallLegs(new Map([...unique.keys()].map((k) => [k, { current: undefined, ended: false }])));
    if (unique.size === 0) return book;
    // Volatile functions of the select list run after the sort: the locks are taken in hash order.
    await tx.manager.query(`SELECT pg_advisory_xact_lock(l.h) FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($1::text[]) AS k) AS l ORDER BY l.h`, [
      [...unique.keys()],
    ]);
    const legs = [...unique.values()];
    const active: ActiveCallRow[] = await tx.manager.query(
      `SELECT ${ACTIVE_CALL_COLUMNS} FROM active_call a
       JOIN unnest($1::int[], $2::text[], $3::int[]) AS k(tenant_id, call_id, extension_id)
         ON a.tenant_id = k.tenant_id AND a.call_id = k.call_id AND a.extension_id = k.extension_id`,
      [legs.map((l) => l.tenantId), legs.map((l) => l.callId), legs.map((l) => l.extension.id)],
    );
    for (const row of active) book.legs.get(legKey(row.tenantId, row.callId, row.extensionId))!.current = row;
    const idle = legs.filter((l) => !book.state(l, l.callId).current);
    if (idle.length) {
      const ended: Array<{ tenantId: number; callId: string; extensionNumber: string }> = await tx.manager.query(
        `SELECT DISTINCT c.tenant_id AS "tenantId", c.call_id AS "callId", c.extension_number AS "extensionNumber" FROM cdr c
         JOIN unnest($1::int[], $2::text[], $3::text[]) AS k(tenant_id, call_id, extension_number)
           ON c.tenant_id = k.tenant_id AND c.call_id = k.call_id AND c.extension_number = k.extension_number`,
        [idle.map((l) => l.tenantId), idle.map((l) => l.callId), idle.map((l) => l.extension.extensionNumber)],
      );
      const endedLegs = new Set(ended.map((r) => `${r.tenantId}:${r.callId}:${r.extensionNumber}`));
      for (const l of idle) book.state(l, l.callId).ended = endedLegs.has(`${l.tenantId}:${l.callId}:${l.extension.extensionNumber}`);
    }
    return book;
  }

  state({ tenantId, extension }: ResolvedTarget, callId: string): LegState {
    const state = this.legs.get(legKey(tenantId, callId, extension.id));
    if (!state) throw new Error(`call leg ${callId} of extension ${extension.id} was not locked by this transaction`);
    return state;
  }
}

/**
 * One call-leg action, inside the transaction that locked its leg in `legs`: a second `end` finds
 * the CDR and writes nothing; an `end` with no `start` still writes a CDR; an `answer` after `end`
 * is ignored. `queueId` is the event's queue, resolved.
 */
export async function applyCallEvent(
  tx: RequestContext,
  legs: CallLegs,
  target: ResolvedTarget,
  event: CallEventInput,
  queueId: number | undefined,
): Promise<Applied> {
  const { tenantId } = target;
  const at = event.occurred_at ? new Date(event.occurred_at) : new Date();
  const leg = legs.state(target, event.call_id);
  const current = leg.current;
  const ended = current ? false : leg.ended;
  const publish = (type: CallEventType, call: ActiveCallRow, cdr: CdrRow | null = null) =>
    publishCall(tx, { type, tenantId, call, cdr, occurredAt: at.toISOString() });

  switch (event.action) {
    case "start": {
      if (ended) return { status: "ignored", reason: "the call has already ended" };
      if (current) return { status: "duplicate", reason: "the call has already started" };
      const call = (leg.current = await insertCall(tx, target, event, at, "ringing", null, queueId ?? null));
      publish("STARTED", call);
      return { status: "applied" };
    }
    case "answer": {
      if (ended) return { status: "ignored", reason: "the call has already ended" };
      if (current && current.state !== "ringing") return { status: "duplicate", reason: "the call was already answered" };
      // An answer whose start never arrived still opens the leg, answered.
      // The trunk that answered may be a later one than the trunk first tried (failover).
      const trunk = event.trunk_id !== undefined ? `, trunk_id = ${queueId ? "$4" : "$3"}` : "";
      const params: unknown[] = queueId ? [at, queueId] : [at];
      if (event.trunk_id !== undefined) params.push(event.trunk_id);
      const call = (leg.current = current
        ? await updateCall(tx, current, `state = 'answered', answered_at = $2${queueId ? ", queue_id = $3" : ""}${trunk}`, params)
        : await insertCall(tx, target, event, at, "answered", at, queueId ?? null));
      publish("ANSWERED", call);
      return { status: "applied" };
    }
    case "hold":
    case "resume": {
      const [from, to, type] = event.action === "hold" ? (["answered", "held", "HELD"] as const) : (["held", "answered", "RESUMED"] as const);
      if (!current) return { status: "ignored", reason: ended ? "the call has already ended" : "the call is not in progress" };
      if (current.state === to) return { status: "duplicate", reason: `the call is already ${to}` };
      if (current.state !== from) return { status: "ignored", reason: `a ${current.state} call cannot be ${event.action === "hold" ? "held" : "resumed"}` };
      publish(type, (leg.current = await updateCall(tx, current, `state = '${to}'`, [])));
      return { status: "applied" };
    }
    case "end": {
      if (ended) return { status: "duplicate", reason: "the call has already ended" };
      const call = current ?? synthesizedCall(target, event, at, queueId ?? null);
      if (current) await tx.manager.query(`DELETE FROM active_call WHERE id = $1`, [current.id]);
      const cdr = await insertCdr(tx, target, call, event, at);
      leg.current = undefined;
      leg.ended = true;
      if (!cdr) return { status: "duplicate", reason: "the call has already ended" };
      publish("ENDED", call, cdr);
      return { status: "applied" };
    }
  }
}

async function insertCall(
  tx: RequestContext,
  { tenantId, extension }: ResolvedTarget,
  event: CallEventInput,
  at: Date,
  state: "ringing" | "answered",
  answeredAt: Date | null,
  queueId: number | null,
): Promise<ActiveCallRow> {
  const [row]: ActiveCallRow[] = await tx.manager.query(
    `INSERT INTO active_call AS a (tenant_id, extension_id, call_id, linked_id, direction, caller_number, caller_name, callee_number,
       state, queue_id, started_at, answered_at, trunk_id, phone_number, external_number)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING ${ACTIVE_CALL_COLUMNS}`,
    [
      tenantId,
      extension.id,
      event.call_id,
      event.linked_id ?? null,
      event.direction ?? "internal",
      event.caller_number ?? null,
      event.caller_name ?? null,
      event.callee_number ?? null,
      state,
      queueId,
      at,
      answeredAt,
      event.trunk_id ?? null,
      event.phone_number ?? null,
      event.external_number ?? null,
    ],
  );
  return row;
}

async function updateCall(tx: RequestContext, current: ActiveCallRow, set: string, params: unknown[]): Promise<ActiveCallRow> {
  const [[row]]: [ActiveCallRow[]] = await tx.manager.query(
    `UPDATE active_call AS a SET ${set}, updated_at = now() WHERE a.id = $1 RETURNING ${ACTIVE_CALL_COLUMNS}`,
    [current.id, ...params],
  );
  return row;
}

/** The leg as the `end` event alone describes it, when its start never arrived. */
function synthesizedCall({ tenantId, extension }: ResolvedTarget, event: CallEventInput, at: Date, queueId: number | null): ActiveCallRow {
  return {
    id: "0",
    tenantId,
    extensionId: extension.id,
    callId: event.call_id,
    linkedId: event.linked_id ?? null,
    direction: (event.direction ?? "internal") as ActiveCallRow["direction"],
    callerNumber: event.caller_number ?? null,
    callerName: event.caller_name ?? null,
    calleeNumber: event.callee_number ?? null,
    state: "ringing" as ActiveCallRow["state"],
    queueId,
    startedAt: at,
    answeredAt: null,
    trunkId: event.trunk_id ?? null,
    phoneNumber: event.phone_number ?? null,
    externalNumber: event.external_number ?? null,
  };
}

async function insertCdr(
  tx: RequestContext,
  { tenantId, extension }: ResolvedTarget,
  call: ActiveCallRow,
  event: CallEventInput,
  endedAt: Date,
): Promise<CdrRow | undefined> {
  const startedAt = new Date(call.startedAt);
  const answeredAt = call.answeredAt ? new Date(call.answeredAt) : null;
  const end = endedAt < startedAt ? startedAt : endedAt;
  const seconds = (from: Date) => Math.max(0, Math.round((end.getTime() - from.getTime()) / 1000));
  if (Math.abs(startedAt.getTime() - Date.now()) > PARTITION_WINDOW_MS) {
    await tx.manager.query(`SELECT pbx_ensure_cdr_partitions($1::date, $1::date)`, [startedAt.toISOString().slice(0, 10)]);
  }
  const disposition = event.disposition ?? (answeredAt ? "answered" : "no_answer");
  const rows: CdrRow[] = await tx.manager.query(
    `INSERT INTO cdr AS c (tenant_id, call_id, linked_id, extension_id, extension_number, direction, caller_number, caller_name,
       callee_number, queue_id, started_at, answered_at, ended_at, duration_seconds, billable_seconds, disposition, hangup_cause,
       trunk_id, phone_number, external_number)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
     ON CONFLICT DO NOTHING RETURNING ${CDR_COLUMNS}`,
    [
      tenantId,
      call.callId,
      call.linkedId ?? event.linked_id ?? null,
      extension.id,
      extension.extensionNumber,
      call.direction,
      call.callerNumber ?? event.caller_number ?? null,
      call.callerName ?? event.caller_name ?? null,
      call.calleeNumber ?? event.callee_number ?? null,
      call.queueId,
      startedAt,
      answeredAt,
      end,
      seconds(startedAt),
      answeredAt ? seconds(answeredAt) : 0,
      disposition,
      event.hangup_cause ?? null,
      // The trunk of the end: after a failover, the one that carried (or last refused) the call.
      event.trunk_id ?? call.trunkId ?? null,
      call.phoneNumber ?? event.phone_number ?? null,
      call.externalNumber ?? event.external_number ?? null,
    ],
  );
  return rows[0];
}
