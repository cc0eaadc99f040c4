import DataLoader from "dataloader";
import { requireRole } from "../../auth/access";
import { Role } from "../../auth/role";
import { badInput } from "../../common/errors";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { readRows } from "../../db/read";
import { transactional } from "../../db/transaction";
import { publishExtension } from "../../subscriptions/events";
import { publishQueueChange } from "../../subscriptions/queue-stats-feed";
import { isEmpty, recordAudit, updatedChanges, type AuditSnapshot } from "../audit/audit";
import { destinationAuditValue, readDestination, registerDestinationHolder, validateDestination } from "../call-destination/call-destination";
import { CallDestinationType, type CallDestination, type CallDestinationInput } from "../call-destination/call-destination.type";
import type { ExtensionService } from "../extension/extension.service";
import { CallHandlingInput, DEFAULT_RING_SECONDS, type CallHandling } from "./call-handling.types";

/** The three forwards: GraphQL field ↔ the column pair's prefix. */
export const FORWARDS = [
  { field: "forwardAlways", column: "forward_always" },
  { field: "forwardBusy", column: "forward_busy" },
  { field: "forwardNoAnswer", column: "forward_no_answer" },
] as const;
type ForwardField = (typeof FORWARDS)[number]["field"];

// Each forward is a destination column pair: deleting or renaming what it names finds it.
for (const { field, column } of FORWARDS) {
  registerDestinationHolder({
    table: "call_handling",
    column,
    entityType: "extension",
    field,
    label: `'extension ' || (SELECT e.extension_number FROM extension e WHERE e.id = h.id)`,
  });
}

const COLUMNS = `ch.id, ch.do_not_disturb AS "doNotDisturb", ch.ring_seconds AS "ringSeconds",
  ch.forward_always_type, ch.forward_always_target, ch.forward_busy_type, ch.forward_busy_target,
  ch.forward_no_answer_type, ch.forward_no_answer_target`;

type StoredRow = { id: number; doNotDisturb: boolean; ringSeconds: number } & Record<string, unknown>;

export const DEFAULT_CALL_HANDLING: CallHandling = Object.freeze({
  doNotDisturb: false,
  ringSeconds: DEFAULT_RING_SECONDS,
  forwardAlways: null,
  forwardBusy: null,
  forwardNoAnswer: null,
});

function fromRow(row: StoredRow | undefined): CallHandling {
  if (!row) return { ...DEFAULT_CALL_HANDLING };
  return {
    doNotDisturb: row.doNotDisturb,
    ringSeconds: row.ringSeconds,
    forwardAlways: readDestination(row, "forward_always"),
    forwardBusy: readDestination(row, "forward_busy"),
    forwardNoAnswer: readDestination(row, "forward_no_answer"),
  };
}

/** Call handling as the audit trail shows it (GraphQL names; a destination as TYPE:target). */
export function callHandlingSnapshot(c: CallHandling): AuditSnapshot {
  return {
    doNotDisturb: c.doNotDisturb,
    ringSeconds: c.ringSeconds,
    forwardAlways: destinationAuditValue(c.forwardAlways),
    forwardBusy: destinationAuditValue(c.forwardBusy),
    forwardNoAnswer: destinationAuditValue(c.forwardNoAnswer),
  };
}

const loaders = new WeakMap<object, DataLoader<number, CallHandling>>();

/**
 * An extension's call handling (contract §12): the only writer of call_handling. A change is an
 * `extension.updated` (audit entry, event and webhook) of the extension it belongs to.
 */
export class CallHandlingService {
  constructor(private readonly extensions: ExtensionService) {}

  async get(ctx: RequestContext, rawExtensionId: string | number): Promise<CallHandling> {
    const extension = await this.extensions.get(ctx, rawExtensionId);
    return this.of(ctx, extension.id);
  }

  /** `Extension.callHandling` for many extensions: one query per batch (defaults when none is stored). */
  of(ctx: RequestContext, extensionId: number): Promise<CallHandling> {
    let loader = loaders.get(ctx.loaders);
    if (!loader) {
      loader = new DataLoader<number, CallHandling>(async (ids) => {
        const rows: StoredRow[] = await readRows(ctx, `SELECT ${COLUMNS} FROM call_handling ch WHERE ch.id = ANY($1::int[])`, [ids]);
        const byId = new Map(rows.map((r) => [r.id, r]));
        return ids.map((id) => fromRow(byId.get(id)));
      });
      loaders.set(ctx.loaders, loader);
    }
    return loader.load(extensionId);
  }

  async update(ctx: RequestContext, rawExtensionId: string | number, input: CallHandlingInput): Promise<CallHandling> {
    requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    const extension = await this.extensions.get(ctx, rawExtensionId);
    await assertValid(input);
    return transactional(ctx, async (tx) => {
      const locked = await this.extensions.lockForWrite(tx, extension.id);
      const [stored]: StoredRow[] = await tx.manager.query(`SELECT ${COLUMNS} FROM call_handling ch WHERE ch.id = $1 FOR UPDATE`, [locked.id]);
      const current = fromRow(stored);
      const next: CallHandling = {
        doNotDisturb: input.doNotDisturb ?? current.doNotDisturb,
        ringSeconds: input.ringSeconds ?? current.ringSeconds,
        forwardAlways: current.forwardAlways,
        forwardBusy: current.forwardBusy,
        forwardNoAnswer: current.forwardNoAnswer,
      };
      const problems: Record<string, string[]> = {};
      for (const { field } of FORWARDS) {
        const given = input[field];
        if (given === undefined) continue;
        if (given === null) {
          next[field] = null;
          continue;
        }
        try {
          next[field] = await this.judgeForward(tx, locked.tenantId, locked.extensionNumber, given, field);
        } catch (error) {
          const fields = (error as { fields?: Record<string, string[]> }).fields;
          if (!fields) throw error;
          Object.assign(problems, fields);
        }
      }
      if (Object.keys(problems).length) throw badInput(problems);
      const changes = updatedChanges(callHandlingSnapshot(current), callHandlingSnapshot(next));
      if (isEmpty(changes)) return current;
      const d = (x: CallDestination | null) => [x?.type ?? null, x?.target ?? null];
      await tx.manager.query(
        `INSERT INTO call_handling AS ch (id, tenant_id, do_not_disturb, ring_seconds, forward_always_type, forward_always_target,
                                          forward_busy_type, forward_busy_target, forward_no_answer_type, forward_no_answer_target)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT ON CONSTRAINT pk_call_handling DO UPDATE SET
           do_not_disturb = EXCLUDED.do_not_disturb, ring_seconds = EXCLUDED.ring_seconds,
           forward_always_type = EXCLUDED.forward_always_type, forward_always_target = EXCLUDED.forward_always_target,
           forward_busy_type = EXCLUDED.forward_busy_type, forward_busy_target = EXCLUDED.forward_busy_target,
           forward_no_answer_type = EXCLUDED.forward_no_answer_type, forward_no_answer_target = EXCLUDED.forward_no_answer_target,
           updated_at = now()`,
        [locked.id, locked.tenantId, next.doNotDisturb, next.ringSeconds, ...d(next.forwardAlways), ...d(next.forwardBusy), ...d(next.forwardNoAnswer)],
      );
      await recordAudit(tx, { tenantId: locked.tenantId, action: "extension.updated", entityType: "extension", entityId: locked.id, changes });
      publishExtension(tx, { type: "UPDATED", tenantId: locked.tenantId, extension: locked, callHandling: next, occurredAt: new Date().toISOString() });
      if (changes.doNotDisturb) {
        // The wallboard counts an agent on do-not-disturb as unavailable.
        const queues: Array<{ id: number }> = await tx.manager.query(`SELECT queue_id AS id FROM queue_agent WHERE extension_id = $1`, [locked.id]);
        publishQueueChange(tx, queues.map((q) => q.id));
      }
      return next;
    });
  }

  /** Removes an extension's call handling (inside its delete, before references to it are judged). */
  async forget(tx: RequestContext, extensionId: number): Promise<void> {
    await tx.manager.query(`DELETE FROM call_handling WHERE id = $1`, [extensionId]);
  }

  /** One forward: a destination of the tenant, and never the extension itself (that would only loop). */
  private async judgeForward(tx: RequestContext, tenantId: number, ownNumber: string, given: CallDestinationInput, field: ForwardField): Promise<CallDestination> {
    const destination = await validateDestination(tx, tenantId, given, field);
    if (destination.type === CallDestinationType.EXTENSION && destination.target === ownNumber) {
      throw badInput({ [field]: ["An extension cannot forward to itself."] });
    }
    return destination;
  }
}
