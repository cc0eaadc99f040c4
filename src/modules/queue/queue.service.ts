import { readRows } from "../../db/read";
import { parseId, readScope, requirePrincipal, requireRole, writeScope } from "../../auth/access";
import { Role } from "../../auth/role";
import {
  badInput,
  notFound,
  pgConstraint,
  pgErrorCode,
  PG_FOREIGN_KEY_VIOLATION,
  PG_UNIQUE_VIOLATION,
} from "../../common/errors";
import { groupBy } from "../../common/group-by";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { SqlParams } from "../../db/sql";
import { transactional } from "../../db/transaction";
import { publishQueueChange } from "../../subscriptions/queue-stats-feed";
import { createdChanges, deletedChanges, isEmpty, recordAudit, updatedChanges, type AuditRecord, type AuditSnapshot } from "../audit/audit";
import { destinationAuditValue, HANGUP, readDestination, registerDestinationHolder, releaseReferences, renameReferences, typesNaming, validateDestination } from "../call-destination/call-destination";
import { DIAL_PLAN_TAKEN, translateDialPlan } from "../dial-plan/dial-plan";
import type { QueueAgent } from "./queue-agent.entity";
import { AGENT_DND_SQL, AGENT_ON_CALL_SQL } from "./queue-stats.service";
import { QueueStrategy, type Queue } from "./queue.entity";
import { CreateQueueInput, DEFAULT_AGENT_RING_SECONDS, DEFAULT_MAX_WAIT_SECONDS, DEFAULT_SERVICE_LEVEL_SECONDS, QueueAgentSettings, UpdateQueueInput } from "./queue.inputs";
import { assignOwn } from "../../common/json";

export type QueueRow = Omit<Queue, "tenantRow">;
/** An agent the media application may offer a call to now. */
export interface OfferableAgent {
  agentId: number;
  extensionId: number;
  number: string;
  penalty: number;
  lastCallEndedAt: Date | null;
  answeredToday: number;
}

export type QueueAgentRow = Omit<QueueAgent, "queueRow" | "extensionRow" | "unpausedAt">;

export const QUEUE_COLUMNS = `q.id, q.tenant_id AS "tenantId", q.name, q.number, q.strategy, q.service_level_seconds AS "serviceLevelSeconds",
  q.agent_ring_seconds AS "agentRingSeconds", q.max_wait_seconds AS "maxWaitSeconds", q.timeout_destination_type AS "timeoutDestinationType",
  q.timeout_destination_target AS "timeoutDestinationTarget", q.created_at AS "createdAt", q.updated_at AS "updatedAt"`;

export const QUEUE_AGENT_COLUMNS = `a.id, a.tenant_id AS "tenantId", a.queue_id AS "queueId", a.extension_id AS "extensionId",
  a.penalty, a.paused, a.paused_at AS "pausedAt", a.created_at AS "createdAt", a.updated_at AS "updatedAt"`;

/**
 * `QueueAgent.availableSince` of the agent row `a`, as the queue statistics judge state (paused or
 * on do-not-disturb, else busy while its extension has a call leg in progress, else available): null unless available,
 * else the latest of its enrolment, the end of its last pause and the end of its extension's last
 * call. Calls are looked for from a day before the other two, so the read stays on the CDR index
 * and partitions of (extension_id, started_at); a call that lasted over a day is not seen.
 */
export const AVAILABLE_SINCE_SQL = `(CASE WHEN a.paused OR ${AGENT_ON_CALL_SQL} OR ${AGENT_DND_SQL} THEN NULL
  ELSE GREATEST(a.created_at, a.unpaused_at, (SELECT max(c.ended_at) FROM cdr c
    WHERE c.extension_id = a.extension_id AND c.started_at >= GREATEST(a.created_at, a.unpaused_at) - interval '1 day')) END)`;

/** A queue as the audit trail shows it (GraphQL field names and values). */
export function queueSnapshot(row: QueueRow): AuditSnapshot {
  return {
    name: row.name,
    number: row.number,
    strategy: row.strategy.toUpperCase(),
    serviceLevelSeconds: row.serviceLevelSeconds,
    agentRingSeconds: row.agentRingSeconds,
    maxWaitSeconds: row.maxWaitSeconds,
    timeoutDestination: destinationAuditValue(readDestination(row as unknown as Record<string, unknown>, "timeout_destination")),
  };
}

// A queue's timeoutDestination may name an extension, another queue or a ring group (contract §11).
registerDestinationHolder({ table: "queue", column: "timeout_destination", entityType: "queue", field: "timeoutDestination", label: `'queue ' || h.number` });

/** A queue membership as the audit trail shows it; ids as GraphQL ids. */
export function queueAgentSnapshot(row: QueueAgentRow): AuditSnapshot {
  return { queueId: String(row.queueId), extensionId: String(row.extensionId), penalty: row.penalty, paused: row.paused };
}

/** The entry of a membership that ends (removed, or with its extension or queue). */
export function agentRemoved(row: QueueAgentRow): AuditRecord {
  return { tenantId: row.tenantId, action: "queue_agent.removed", entityType: "queue_agent", entityId: row.id, changes: deletedChanges(queueAgentSnapshot(row)) };
}

const QUEUE_ORDER = `q.tenant_id, q.name, q.id`;
/** A queue's agents in the order calls are offered to them: lower penalty first. */
const AGENT_ORDER = `a.penalty, a.id`;
/** An extension's memberships in enrolment order. */
export const MEMBERSHIP_ORDER = `a.id`;

const READERS = [Role.ADMIN, Role.TENANT_ADMIN, Role.VIEWER];
const WRITERS = [Role.ADMIN, Role.TENANT_ADMIN];

const TAKEN_NUMBER = "The queue number has already been taken.";
const ALREADY_AGENT = "The extension is already an agent of this queue.";

function translateQueueWrite(error: unknown): never {
  const code = pgErrorCode(error);
  if (code === DIAL_PLAN_TAKEN) translateDialPlan("number")(error);
  if (code === PG_UNIQUE_VIOLATION && pgConstraint(error) === "uq_queue__tenant_id__number") throw badInput({ number: [TAKEN_NUMBER] });
  // An ADMIN may name any tenant id; one that does not exist is reported like any unknown tenant.
  if (code === PG_FOREIGN_KEY_VIOLATION && pgConstraint(error) === "fk_queue__tenant_id") {
    throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
  }
  throw error;
}

/**
 * Queues and their agents. Every method checks the caller's role before it looks anything up, so a
 * refusal never tells whether an id exists; another tenant's queue, agent or extension answers
 * NOT_FOUND exactly like a missing one.
 */
export class QueueService {
  async get(ctx: RequestContext, rawId: string | number): Promise<QueueRow> {
    const principal = requireRole(ctx, ...READERS);
    const id = parseId(rawId);
    const row = id === null ? null : await ctx.loaders.queue.load(id);
    if (!row || (principal.role !== Role.ADMIN && principal.tenantId !== row.tenantId)) throw notFound("Queue");
    return row;
  }

  /** Root `queues(tenantId)`: one tenant's queues, or every tenant's for an ADMIN who names none. */
  async list(ctx: RequestContext, tenantId: string | number | null | undefined): Promise<QueueRow[]> {
    requireRole(ctx, ...READERS);
    const scope = readScope(ctx, tenantId);
    const p = new SqlParams();
    const where = scope === null ? "" : `WHERE q.tenant_id = ${p.add(scope)}`;
    return readRows(ctx, `SELECT ${QUEUE_COLUMNS} FROM queue q ${where} ORDER BY ${QUEUE_ORDER}`, p.values);
  }

  /** The media application's look at the queue a call names (contract §13): by SIP domain and number. */
  async forCall(ctx: RequestContext, domain: string, number: string): Promise<QueueRow | null> {
    requireRole(ctx, Role.INGEST, Role.ADMIN);
    const [row] = await readRows<QueueRow>(ctx,
      `SELECT ${QUEUE_COLUMNS} FROM queue q JOIN tenant t ON t.id = q.tenant_id WHERE t.sip_domain = lower($1) AND q.number = $2`,
      [domain, number],
    );
    return row ?? null;
  }

  /**
   * The agents a queue may offer a call to now (contract §13): not paused, not on do-not-disturb
   * (§12: it takes no calls; the wallboard counts it with the paused), extension active, not on
   * a call, with a registered device; lower penalty first, then enrolment order; with what the
   * strategies need (the end of the agent's last call of this queue, its answers today).
   */
  async offerable(ctx: RequestContext, queueId: number): Promise<OfferableAgent[]> {
    requireRole(ctx, Role.INGEST, Role.ADMIN);
    return readRows<OfferableAgent>(ctx,
      `SELECT a.id AS "agentId", a.extension_id AS "extensionId", e.extension_number AS number, a.penalty,
              (SELECT max(c.ended_at) FROM cdr c WHERE c.extension_id = a.extension_id AND c.queue_id = a.queue_id
                 AND c.started_at >= now() - interval '30 days') AS "lastCallEndedAt",
              (SELECT count(*)::int FROM queue_call qc WHERE qc.queue_id = a.queue_id AND qc.agent_extension_id = a.extension_id
                 AND qc.answered_at >= date_trunc('day', now())) AS "answeredToday"
         FROM queue_agent a JOIN extension e ON e.id = a.extension_id
        WHERE a.queue_id = $1 AND NOT a.paused AND NOT ${AGENT_DND_SQL} AND e.status = 'active' AND NOT ${AGENT_ON_CALL_SQL}
          AND EXISTS (SELECT 1 FROM device d WHERE d.extension_id = a.extension_id AND d.unregistered_at IS NULL AND d.expires_at > now())
        ORDER BY a.penalty, ${MEMBERSHIP_ORDER}`,
      [queueId],
    );
  }

  async create(ctx: RequestContext, input: CreateQueueInput): Promise<QueueRow> {
    requireRole(ctx, ...WRITERS);
    await assertValid(input);
    const tenantId = writeScope(ctx, input.tenantId);
    return transactional(ctx, async (tx) => {
      const timeout = input.timeoutDestination ? await validateDestination(tx, tenantId, input.timeoutDestination, "timeoutDestination") : HANGUP;
      const [row]: QueueRow[] = await tx.manager
        .query(
          `INSERT INTO queue AS q (tenant_id, name, number, strategy, service_level_seconds, agent_ring_seconds, max_wait_seconds, timeout_destination_type, timeout_destination_target)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${QUEUE_COLUMNS}`,
          [
            tenantId,
            input.name,
            input.number,
            input.strategy ?? QueueStrategy.RING_ALL,
            input.serviceLevelSeconds ?? DEFAULT_SERVICE_LEVEL_SECONDS,
            input.agentRingSeconds ?? DEFAULT_AGENT_RING_SECONDS,
            input.maxWaitSeconds ?? DEFAULT_MAX_WAIT_SECONDS,
            timeout.type,
            timeout.target,
          ],
        )
        .catch(translateQueueWrite);
      await recordAudit(tx, { tenantId, action: "queue.created", entityType: "queue", entityId: row.id, changes: createdChanges(queueSnapshot(row)) });
      return row;
    });
  }

  async update(ctx: RequestContext, rawId: string | number, input: UpdateQueueInput): Promise<QueueRow> {
    requireRole(ctx, ...WRITERS);
    await assertValid(input);
    return transactional(ctx, async (tx) => {
      const current = await this.lockQueue(tx, rawId, "UPDATE");
      const p = new SqlParams();
      const sets: string[] = [];
      if (input.name !== undefined) sets.push(`name = ${p.add(input.name)}`);
      if (input.number !== undefined) sets.push(`number = ${p.add(input.number)}`);
      if (input.strategy !== undefined) sets.push(`strategy = ${p.add(input.strategy)}`);
      if (input.agentRingSeconds !== undefined) sets.push(`agent_ring_seconds = ${p.add(input.agentRingSeconds)}`);
      if (input.maxWaitSeconds !== undefined) sets.push(`max_wait_seconds = ${p.add(input.maxWaitSeconds)}`);
      if (input.timeoutDestination !== undefined) {
        // null puts it back to the default, HANGUP
        const timeout = input.timeoutDestination === null ? HANGUP : await validateDestination(tx, current.tenantId, input.timeoutDestination, "timeoutDestination");
        sets.push(`timeout_destination_type = ${p.add(timeout.type)}`, `timeout_destination_target = ${p.add(timeout.target)}`);
      }
      if (input.serviceLevelSeconds !== undefined) {
        sets.push(`service_level_seconds = ${p.add(input.serviceLevelSeconds)}`);
        publishQueueChange(tx, [current.id]);
      }
      if (sets.length === 0) return current;
      const [rows]: [QueueRow[]] = await tx.manager
        .query(`UPDATE queue AS q SET ${sets.join(", ")}, updated_at = now() WHERE q.id = ${p.add(current.id)} RETURNING ${QUEUE_COLUMNS}`, p.values)
        .catch(translateQueueWrite);
      const changes = updatedChanges(queueSnapshot(current), queueSnapshot(rows[0]));
      if (!isEmpty(changes)) await recordAudit(tx, { tenantId: current.tenantId, action: "queue.updated", entityType: "queue", entityId: current.id, changes });
      // Destinations that name the queue follow its new number.
      await recordAudit(tx, await renameReferences(tx, current.tenantId, typesNaming("queue"), current.number, rows[0].number));
      return rows[0];
    });
  }

  /**
   * Deletes the queue; its memberships go with it (the foreign key cascades). Destinations naming it
   * refuse the delete (CONFLICT naming them) unless `force` turns them into HANGUP (contract §11).
   */
  async delete(ctx: RequestContext, rawId: string | number, force = false): Promise<number> {
    requireRole(ctx, ...WRITERS);
    return transactional(ctx, async (tx) => {
      const current = await this.lockQueue(tx, rawId, "UPDATE");
      await recordAudit(tx, await releaseReferences(tx, current.tenantId, typesNaming("queue"), current.number, force, `The queue ${current.name}`));
      // Its memberships go with it; each leaves its own entry.
      const [agents]: [QueueAgentRow[]] = await tx.manager.query(`DELETE FROM queue_agent AS a WHERE a.queue_id = $1 RETURNING ${QUEUE_AGENT_COLUMNS}`, [current.id]);
      await tx.manager.query(`DELETE FROM queue WHERE id = $1`, [current.id]);
      await recordAudit(tx, [
        ...agents.map((agent) => agentRemoved(agent)),
        { tenantId: current.tenantId, action: "queue.deleted", entityType: "queue", entityId: current.id, changes: deletedChanges(queueSnapshot(current)) },
      ]);
      publishQueueChange(tx, [current.id]);
      return current.id;
    });
  }

  /**
   * Enrols an extension of the queue's tenant. Locking the queue and the extension (shared) orders
   * this against deleting either: a concurrent deleteExtension either sees the new membership
   * (and refuses) or has removed the extension before we look (NOT_FOUND).
   */
  async addAgent(
    ctx: RequestContext,
    rawQueueId: string | number,
    rawExtensionId: string | number,
    penalty: number | null | undefined,
  ): Promise<QueueAgentRow> {
    requireRole(ctx, ...WRITERS);
    await assertValid(Object.assign(new QueueAgentSettings(), { penalty }));
    return transactional(ctx, async (tx) => {
      const queue = await this.lockQueue(tx, rawQueueId, "SHARE");
      const extensionId = parseId(rawExtensionId);
      // The extension must be one of the queue's tenant; any other answers as missing.
      const [extension]: Array<{ id: number }> =
        extensionId === null
          ? []
          : await tx.manager.query(`SELECT id FROM extension WHERE id = $1 AND tenant_id = $2 FOR SHARE`, [extensionId, queue.tenantId]);
      if (!extension) throw notFound("Extension", { extensionId: ["The selected extension does not exist."] });
      const [row]: QueueAgentRow[] = await tx.manager
        .query(
          `INSERT INTO queue_agent AS a (tenant_id, queue_id, extension_id, penalty) VALUES ($1, $2, $3, $4)
           ON CONFLICT ON CONSTRAINT uq_queue_agent__queue_id__extension_id DO NOTHING
           RETURNING ${QUEUE_AGENT_COLUMNS}`,
          [queue.tenantId, queue.id, extension.id, penalty ?? 0],
        );
      if (!row) throw badInput({ extensionId: [ALREADY_AGENT] });
      await recordAudit(tx, { tenantId: row.tenantId, action: "queue_agent.added", entityType: "queue_agent", entityId: row.id, changes: createdChanges(queueAgentSnapshot(row)) });
      publishQueueChange(tx, [queue.id]);
      return row;
    });
  }

  async updateAgent(
    ctx: RequestContext,
    rawId: string | number,
    settings: { penalty?: number | null; paused?: boolean | null },
  ): Promise<QueueAgentRow> {
    requireRole(ctx, ...WRITERS);
    await assertValid(assignOwn(new QueueAgentSettings(), settings));
    return transactional(ctx, async (tx) => {
      const current = await this.lockAgent(tx, rawId);
      const p = new SqlParams();
      const sets: string[] = [];
      if (settings.penalty !== undefined && settings.penalty !== null) sets.push(`penalty = ${p.add(settings.penalty)}`);
      if (settings.paused !== undefined && settings.paused !== null) {
        // A pause keeps its start while it lasts; resuming clears it and records when it ended.
        const paused = p.add(settings.paused);
        sets.push(
          `paused = ${paused}`,
          `paused_at = CASE WHEN ${paused}::boolean THEN COALESCE(CASE WHEN a.paused THEN a.paused_at END, now()) END`,
          `unpaused_at = CASE WHEN a.paused AND NOT ${paused}::boolean THEN now() ELSE a.unpaused_at END`,
        );
      }
      if (sets.length === 0) return current;
      publishQueueChange(tx, [current.queueId]);
      const [rows]: [QueueAgentRow[]] = await tx.manager.query(
        `UPDATE queue_agent AS a SET ${sets.join(", ")}, updated_at = now() WHERE a.id = ${p.add(current.id)} RETURNING ${QUEUE_AGENT_COLUMNS}`,
        p.values,
      );
      const changes = updatedChanges(queueAgentSnapshot(current), queueAgentSnapshot(rows[0]));
      if (!isEmpty(changes)) await recordAudit(tx, { tenantId: current.tenantId, action: "queue_agent.updated", entityType: "queue_agent", entityId: current.id, changes });
      return rows[0];
    });
  }

  async removeAgent(ctx: RequestContext, rawId: string | number): Promise<number> {
    requireRole(ctx, ...WRITERS);
    return transactional(ctx, async (tx) => {
      const current = await this.lockAgent(tx, rawId);
      await tx.manager.query(`DELETE FROM queue_agent WHERE id = $1`, [current.id]);
      await recordAudit(tx, agentRemoved(current));
      publishQueueChange(tx, [current.queueId]);
      return current.id;
    });
  }

  /** `Tenant.queues` for many tenants: one query. */
  async listForTenants(ctx: RequestContext, tenantIds: readonly number[]): Promise<QueueRow[][]> {
    const rows: QueueRow[] = await readRows(ctx,
      `SELECT ${QUEUE_COLUMNS} FROM queue q WHERE q.tenant_id = ANY($1::int[]) ORDER BY ${QUEUE_ORDER}`,
      [tenantIds],
    );
    return groupBy(tenantIds, rows, (row) => row.tenantId);
  }

  /** `Queue.agents` for many queues: one query. */
  async agentsOfQueues(ctx: RequestContext, queueIds: readonly number[]): Promise<QueueAgentRow[][]> {
    const rows: QueueAgentRow[] = await readRows(ctx,
      `SELECT ${QUEUE_AGENT_COLUMNS} FROM queue_agent a WHERE a.queue_id = ANY($1::int[]) ORDER BY ${AGENT_ORDER}`,
      [queueIds],
    );
    return groupBy(queueIds, rows, (row) => row.queueId);
  }

  /** `Extension.queueMemberships` for many extensions: one query. */
  async membershipsOfExtensions(ctx: RequestContext, extensionIds: readonly number[]): Promise<QueueAgentRow[][]> {
    const rows: QueueAgentRow[] = await readRows(ctx,
      `SELECT ${QUEUE_AGENT_COLUMNS} FROM queue_agent a WHERE a.extension_id = ANY($1::int[]) ORDER BY ${MEMBERSHIP_ORDER}`,
      [extensionIds],
    );
    return groupBy(extensionIds, rows, (row) => row.extensionId);
  }

  /** Loads and row-locks a queue the caller may change; another tenant's answers as not found. */
  private async lockQueue(tx: RequestContext, rawId: string | number, mode: "UPDATE" | "SHARE"): Promise<QueueRow> {
    const principal = requirePrincipal(tx);
    const id = parseId(rawId);
    const [row]: QueueRow[] = id === null ? [] : await tx.manager.query(`SELECT ${QUEUE_COLUMNS} FROM queue q WHERE q.id = $1 FOR ${mode}`, [id]);
    if (!row || (principal.role !== Role.ADMIN && principal.tenantId !== row.tenantId)) throw notFound("Queue");
    return row;
  }

  private async lockAgent(tx: RequestContext, rawId: string | number): Promise<QueueAgentRow> {
    const principal = requirePrincipal(tx);
    const id = parseId(rawId);
    const [row]: QueueAgentRow[] =
      id === null ? [] : await tx.manager.query(`SELECT ${QUEUE_AGENT_COLUMNS} FROM queue_agent a WHERE a.id = $1 FOR UPDATE`, [id]);
    if (!row || (principal.role !== Role.ADMIN && principal.tenantId !== row.tenantId)) throw notFound("Queue agent");
    return row;
  }
}
