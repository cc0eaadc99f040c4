import type { RequestContext } from "../context/request-context";
import type { QueueEventInput } from "./telephony-event";

type Applied = { status: "applied" | "duplicate" | "ignored"; reason?: string };

interface QueueCallState {
  id: string;
  joinedAt: Date | null;
  answeredAt: Date | null;
  abandonedAt: Date | null;
}

const COLUMN = { join: "joined_at", answer: "answered_at", abandon: "abandoned_at" } as const;

/**
 * One queue event, inside the caller's transaction, its queue and (for an answer) its agent
 * resolved. The caller's passage is one row per (queue, call_id): the first event of any kind
 * creates it, later ones fill in their column, so a repeated join changes nothing, an answer or
 * abandon whose join never came still counts once (its wait unknown), and a late join supplies the
 * wait. An answer wins over an abandon in either order: a caller who was answered did not give up.
 * The caller announces the changed queues after commit.
 */
export async function applyQueueEvent(tx: RequestContext, tenantId: number, queueId: number, agentId: number | null, event: QueueEventInput): Promise<Applied> {
  const at = event.occurred_at ? new Date(event.occurred_at) : new Date();
  // Concurrent first events of one caller meet at the unique key; the loser goes on to update.
  const inserted: unknown[] = await tx.manager.query(
    `INSERT INTO queue_call (tenant_id, queue_id, call_id, ${COLUMN[event.action]}, agent_extension_id, caller_number, caller_name) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT ON CONSTRAINT uq_queue_call__queue_id__call_id DO NOTHING RETURNING id`,
    [tenantId, queueId, event.call_id, at, agentId, event.caller_number ?? null, event.caller_name ?? null],
  );
  if (inserted.length) return { status: "applied" };
  if (event.caller_number !== undefined || event.caller_name !== undefined) {
    // A caller named by a later event (the join came without) is named from then on.
    await tx.manager.query(
      `UPDATE queue_call SET caller_number = COALESCE(caller_number, $3), caller_name = COALESCE(caller_name, $4) WHERE queue_id = $1 AND call_id = $2`,
      [queueId, event.call_id, event.caller_number ?? null, event.caller_name ?? null],
    );
  }
  return update(tx, queueId, event, at, agentId);
}

async function update(tx: RequestContext, queueId: number, event: QueueEventInput, at: Date, agentId: number | null): Promise<Applied> {
  const [current]: QueueCallState[] = await tx.manager.query(
    `SELECT id, joined_at AS "joinedAt", answered_at AS "answeredAt", abandoned_at AS "abandonedAt"
       FROM queue_call WHERE queue_id = $1 AND call_id = $2 FOR UPDATE`,
    [queueId, event.call_id],
  );
  const set = async (sql: string, params: unknown[]): Promise<Applied> => {
    await tx.manager.query(`UPDATE queue_call SET ${sql}, updated_at = now() WHERE id = $1`, [current.id, ...params]);
    return { status: "applied" };
  };
  switch (event.action) {
    case "join":
      if (current.joinedAt) return { status: "duplicate", reason: "the caller has already joined the queue" };
      return set(`joined_at = $2`, [at]);
    case "answer":
      if (current.answeredAt) return { status: "duplicate", reason: "the call was already answered" };
      return set(`answered_at = $2, agent_extension_id = $3, abandoned_at = NULL`, [at, agentId]);
    case "abandon":
      if (current.answeredAt) return { status: "ignored", reason: "the call was answered" };
      if (current.abandonedAt) return { status: "duplicate", reason: "the caller has already abandoned" };
      return set(`abandoned_at = $2`, [at]);
  }
}
