import type { RequestContext } from "../context/request-context";
import { AppError, ErrorCode } from "../common/errors";
import { ACTIVE_CALL_COLUMNS, type ActiveCallRow } from "../modules/active-call/active-call.service";
import { CDR_COLUMNS, type CdrRow } from "../modules/cdr/cdr.service";
import { publishCall, type CallEventType } from "../subscriptions/events";
import type { ResolvedTarget } from "./ingest.service";
import type { CallEventInput } from "./telephony-event";

type Applied = { status: "applied" | "duplicate" | "ignored"; reason?: string };

/** Partitions kept by maintenance around now; a CDR outside them gets its month created first. */
const PARTITION_WINDOW_MS = 60 * 24 * 3600 * 1000;

/**
 * One call-leg action, inside the caller's transaction. The leg (tenant, call_id, extension) is
 * serialized by an advisory lock, so a repeated or reordered event — on any instance — sees the
 * effect of the one before it: a second `end` finds the CDR and writes nothing; an `end` with no
 * `start` still writes a CDR; an `answer` after `end` is ignored.
 */
export async function applyCallEvent(tx: RequestContext, target: ResolvedTarget, event: CallEventInput): Promise<Applied> {
  const { tenantId, extension } = target;
  const at = event.occurred_at ? new Date(event.occurred_at) : new Date();
  await tx.manager.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`call-leg:${tenantId}:${event.call_id}:${extension.id}`]);
  const queueId = event.queue === undefined ? undefined : await queueIdOf(tx, tenantId, event.queue);
  const [current]: ActiveCallRow[] = await tx.manager.query(
    `SELECT ${ACTIVE_CALL_COLUMNS} FROM active_call a WHERE a.tenant_id = $1 AND a.call_id = $2 AND a.extension_id = $3`,
    [tenantId, event.call_id, extension.id],
  );
  const ended = current ? false : await hasCdr(tx, tenantId, event.call_id, extension.extensionNumber);
  const publish = (type: CallEventType, call: ActiveCallRow, cdr: CdrRow | null = null) =>
    publishCall(tx, { type, tenantId, call, cdr, occurredAt: at.toISOString() });

  switch (event.action) {
    case "start": {
      if (ended) return { status: "ignored", reason: "the call has already ended" };
      if (current) return { status: "duplicate", reason: "the call has already started" };
      const call = await insertCall(tx, target, event, at, "ringing", null, queueId ?? null);
      publish("STARTED", call);
      return { status: "applied" };
    }
    case "answer": {
      if (ended) return { status: "ignored", reason: "the call has already ended" };
      if (current && current.state !== "ringing") return { status: "duplicate", reason: "the call was already answered" };
      // An answer whose start never arrived still opens the leg, answered.
      const call = current
        ? await updateCall(tx, current, `state = 'answered', answered_at = $2${queueId ? ", queue_id = $3" : ""}`, queueId ? [at, queueId] : [at])
        : await insertCall(tx, target, event, at, "answered", at, queueId ?? null);
      publish("ANSWERED", call);
      return { status: "applied" };
    }
    case "hold":
    case "resume": {
      const [from, to, type] = event.action === "hold" ? (["answered", "held", "HELD"] as const) : (["held", "answered", "RESUMED"] as const);
      if (!current) return { status: "ignored", reason: ended ? "the call has already ended" : "the call is not in progress" };
      if (current.state === to) return { status: "duplicate", reason: `the call is already ${to}` };
      if (current.state !== from) return { status: "ignored", reason: `a ${current.state} call cannot be ${event.action === "hold" ? "held" : "resumed"}` };
      publish(type, await updateCall(tx, current, `state = '${to}'`, []));
      return { status: "applied" };
    }
    case "end": {
      if (ended) return { status: "duplicate", reason: "the call has already ended" };
      const call = current ?? synthesizedCall(target, event, at, queueId ?? null);
      if (current) await tx.manager.query(`DELETE FROM active_call WHERE id = $1`, [current.id]);
      const cdr = await insertCdr(tx, target, call, event, at);
      if (!cdr) return { status: "duplicate", reason: "the call has already ended" };
      publish("ENDED", call, cdr);
      return { status: "applied" };
    }
  }
}

async function queueIdOf(tx: RequestContext, tenantId: number, number: string): Promise<number> {
  const [row]: Array<{ id: number }> = await tx.manager.query(`SELECT id FROM queue WHERE tenant_id = $1 AND number = $2`, [tenantId, number]);
  if (!row) throw new AppError(ErrorCode.NOT_FOUND, "Queue not found.", { queue: [`The tenant has no queue ${number}.`] });
  return row.id;
}

async function hasCdr(tx: RequestContext, tenantId: number, callId: string, extensionNumber: string): Promise<boolean> {
  const rows = await tx.manager.query(`SELECT 1 FROM cdr WHERE tenant_id = $1 AND call_id = $2 AND extension_number = $3 LIMIT 1`, [
    tenantId,
    callId,
    extensionNumber,
  ]);
  return rows.length > 0;
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
       state, queue_id, started_at, answered_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ${ACTIVE_CALL_COLUMNS}`,
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
       callee_number, queue_id, started_at, answered_at, ended_at, duration_seconds, billable_seconds, disposition, hangup_cause)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
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
    ],
  );
  return rows[0];
}
