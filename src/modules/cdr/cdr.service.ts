import { readRows } from "../../db/read";
import { canRead, parseId, readScope } from "../../auth/access";
import { badInput, notFound, type FieldErrors } from "../../common/errors";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { SqlParams } from "../../db/sql";
import { ConnectionPage, decodeCursor, encodeCursor, pageSize } from "../../graphql/connection";
import type { ExtensionRow } from "../extension/extension.service";
import type { QueueRow } from "../queue/queue.service";
import { CallDirection, CallDisposition, type Cdr } from "./cdr.entity";
import { CdrFilter, type CdrPageArgs } from "./cdr.inputs";
import { assignOwn } from "../../common/json";

/** What every read of a CDR returns; cursorAt is started_at to the microsecond, for the keyset cursor. */
export type CdrRow = Omit<Cdr, "tenantRow" | "createdAt"> & { cursorAt: string };

/**
 * A validated, normalised CDR page request. Plain JSON values only: it is also the DataLoader key
 * that groups the parents asking the same question.
 */
export interface CdrQuery {
  limit: number;
  /** The (started_at, id) of the last row seen, newest first. */
  after: [string, string] | null;
  from: string | null;
  to: string | null;
  extensionId: number | null;
  direction: CallDirection | null;
  disposition: CallDisposition | null;
  number: string | null;
  trunkId: number | null;
  phoneNumber: string | null;
}

export const CDR_COLUMNS = `c.id, c.tenant_id AS "tenantId", c.call_id AS "callId", c.linked_id AS "linkedId",
  c.extension_id AS "extensionId", c.extension_number AS "extensionNumber", c.direction,
  c.caller_number AS "callerNumber", c.caller_name AS "callerName", c.callee_number AS "calleeNumber",
  c.queue_id AS "queueId", c.started_at AS "startedAt", c.answered_at AS "answeredAt", c.ended_at AS "endedAt",
  c.duration_seconds AS "durationSeconds", c.billable_seconds AS "billableSeconds", c.disposition,
  c.hangup_cause AS "hangupCause", c.trunk_id AS "trunkId", c.phone_number AS "phoneNumber", c.external_number AS "externalNumber",
  to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "cursorAt"`;

const CURSOR_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const CURSOR_ID = /^[1-9][0-9]{0,18}$/;

const cursorOf = (row: CdrRow) => encodeCursor([row.cursorAt, String(row.id)]);

/** started_at keeps microseconds, which a JS Date would lose, so the cursor carries PostgreSQL's own text of it. */
function decodeCdrCursor(after: string): [string, string] {
  const [at, id] = decodeCursor(after, ["string", "string"]) as [string, string];
  const ms = CURSOR_AT.test(at) ? Date.parse(at.slice(0, 23) + "Z") : Number.NaN;
  const real = !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 19) === at.slice(0, 19);
  if (!real || !CURSOR_ID.test(id) || BigInt(id) > 9_223_372_036_854_775_807n) throw badInput({ after: ["The cursor is invalid."] });
  return [at, id];
}

/** The queue a call (finished or in progress) went through, if it still exists, and only ever one of the call's tenant. */
export async function queueOfCall(ctx: RequestContext, call: { tenantId: number; queueId: number | null }): Promise<QueueRow | null> {
  if (call.queueId === null) return null;
  const queue = await ctx.loaders.queue.load(call.queueId);
  return queue && queue.tenantId === call.tenantId ? queue : null;
}

/** Whose CDRs: those of some tenants, or of some extensions. */
interface Parent {
  kind: "tenant" | "extension";
  ids: readonly number[];
}

export class CdrService {
  /** Root `cdrs(tenantId, filter, first, after)`. */
  async list(ctx: RequestContext, tenantId: string | null | undefined, args: CdrPageArgs): Promise<ConnectionPage<CdrRow>> {
    const named = readScope(ctx, tenantId);
    const query = await this.normalize(args);
    let scope: number;
    if (query.extensionId !== null) {
      // The extension's existence in the tenant is its tenant's existence too.
      scope = (await this.visibleExtension(ctx, query.extensionId, named)).tenantId;
    } else if (named === null) {
      // An ADMIN who names no tenant and no extension: every tenant at once would need an index on
      // started_at alone, for a question nobody asks.
      throw badInput({ tenantId: ["The tenant id is required, unless the filter names an extension."] });
    } else {
      scope = named;
    }
    const parent: Parent = { kind: "tenant", ids: [scope] };
    const rows = (await this.fetchPages(ctx, parent, query)).get(scope);
    if (!rows) throw notFound("Tenant");
    return new ConnectionPage(rows, query.limit, cursorOf, async () => (await this.countFor(ctx, parent, query)).get(scope) ?? 0);
  }

  /** `Tenant.cdrs`: judged here, then answered with the other tenants of the request in one query. */
  async forTenant(ctx: RequestContext, tenantId: number, args: CdrPageArgs): Promise<ConnectionPage<CdrRow>> {
    const query = await this.normalize(args);
    if (query.extensionId !== null) await this.visibleExtension(ctx, query.extensionId, tenantId);
    return ctx.loaders.cdrsByTenant.load({ parentId: tenantId, args: query });
  }

  /** `Extension.cdrs`; an extensionId in the filter is one more condition (another extension's gives an empty page). */
  async forExtension(ctx: RequestContext, extensionId: number, args: CdrPageArgs): Promise<ConnectionPage<CdrRow>> {
    const query = await this.normalize(args);
    return ctx.loaders.cdrsByExtension.load({ parentId: extensionId, args: query });
  }

  /** `Cdr.extension`: null once the extension has been deleted (its id is never reused). */
  async extensionOf(ctx: RequestContext, cdr: CdrRow): Promise<ExtensionRow | null> {
    if (cdr.extensionId === null) return null;
    const extension = await ctx.loaders.extension.load(cdr.extensionId);
    return extension && extension.tenantId === cdr.tenantId ? extension : null;
  }

  /** `Cdr.queue`: null once the queue has been deleted. */
  queueOf(ctx: RequestContext, cdr: CdrRow): Promise<QueueRow | null> {
    return queueOfCall(ctx, cdr);
  }

  /**
   * For each (tenant, extension, call_id): the CDR leg with that call_id, the extension's own leg
   * first, else the call's latest leg in the tenant (null while none exists). One statement per batch.
   */
  async legsOfCalls(ctx: RequestContext, keys: ReadonlyArray<{ tenantId: number; extensionId: number; callId: string }>): Promise<Array<CdrRow | null>> {
    const rows: Array<CdrRow & { key: number }> = await readRows(ctx,
      `SELECT k.ord AS key, leg.* FROM unnest($1::int[], $2::int[], $3::text[]) WITH ORDINALITY AS k(tenant_id, extension_id, call_id, ord)
       CROSS JOIN LATERAL (SELECT ${CDR_COLUMNS} FROM cdr c WHERE c.tenant_id = k.tenant_id AND c.call_id = k.call_id
                           ORDER BY (c.extension_id IS NOT DISTINCT FROM k.extension_id) DESC, c.started_at DESC, c.id DESC LIMIT 1) AS leg`,
      [keys.map((k) => k.tenantId), keys.map((k) => k.extensionId), keys.map((k) => k.callId)],
    );
    const byKey = new Map(rows.map(({ key, ...row }) => [Number(key), row as CdrRow]));
    return keys.map((_, i) => byKey.get(i + 1) ?? null);
  }

  /**
   * One page per parent (tenant or extension) for every parent of a batch: one keyset query with a
   * LATERAL page per parent, and one grouped count, run only if a client asks for totalCount.
   */
  async pagesFor(ctx: RequestContext, parent: Parent, query: CdrQuery): Promise<Array<ConnectionPage<CdrRow>>> {
    const found = await this.fetchPages(ctx, parent, query);
    let counts: Promise<Map<number, number>> | undefined;
    const countAll = () => (counts ??= this.countFor(ctx, parent, query));
    return parent.ids.map((id) => new ConnectionPage(found.get(id) ?? [], query.limit, cursorOf, async () => (await countAll()).get(id) ?? 0));
  }

  /**
   * The rows of each parent's page, keyed by the parents that exist (a parent without CDRs maps to
   * an empty list; a missing one is absent), so a root read learns both in one statement.
   */
  private async fetchPages(ctx: RequestContext, parent: Parent, query: CdrQuery): Promise<Map<number, CdrRow[]>> {
    const p = new SqlParams();
    const ids = p.add(parent.ids);
    const source =
      parent.kind === "tenant"
        ? { from: `tenant t`, id: `t.id`, tenant: `t.id`, match: [] }
        : { from: `extension x`, id: `x.id`, tenant: `x.tenant_id`, match: [`c.extension_id = x.id`] };
    // A parent without CDRs comes back once, with every page column null.
    const rows: Array<(CdrRow | { [K in keyof CdrRow]: null }) & { parentId: number }> = await readRows(ctx,
      `SELECT ${source.id} AS "parentId", page.* FROM ${source.from}
       LEFT JOIN LATERAL (${this.pageSql(p, source.match, source.tenant, query)}) AS page ON true
       WHERE ${source.id} = ANY(${ids}::int[])
       ORDER BY 1, page."startedAt" DESC, page.id DESC`,
      p.values,
    );
    const found = new Map<number, CdrRow[]>();
    for (const { parentId, ...row } of rows) {
      let list = found.get(parentId);
      if (!list) found.set(parentId, (list = []));
      if (row.id !== null) list.push(row as CdrRow);
    }
    return found;
  }

  /**
   * Newest first, keyset on (started_at, id). A number may be either party's: the two sides are read
   * as two ordered index scans and merged, so a number on every other call stays as cheap as a rare one.
   *
   * One extension's page (Extension.cdrs, or a filter naming an extension) walks the extension's
   * (extension_id, started_at DESC, id DESC) index newest first, partition by partition, stopping
   * after the page, and checks the tenant on the page's rows, after the walk: inside it, the planner
   * multiplies the two conditions' selectivities (the extension decides the tenant), expects a
   * handful of rows, and sorts every CDR of the extension in the window, or walks the tenant's index
   * instead (test/e2e/cdr-page-plan.test.ts; the compiled read does the same). An extension id is
   * never reused nor written on another tenant's CDR, so the check removes nothing in practice; were
   * such a row there, it could only shorten the page, never show.
   */
  private pageSql(p: SqlParams, match: string[], tenant: string, query: CdrQuery): string {
    const filters = this.conditions(p, query);
    if (query.after) filters.push(`(c.started_at, c.id) < (${p.add(query.after[0])}::timestamptz, ${p.add(query.after[1])}::bigint)`);
    const limit = p.add(query.limit + 1);
    const order = `ORDER BY c.started_at DESC, c.id DESC LIMIT ${limit}`;
    if (query.number === null) {
      if (match.length === 0 && query.extensionId === null) {
        return `SELECT ${CDR_COLUMNS} FROM cdr c WHERE ${[`c.tenant_id = ${tenant}`, ...filters].join(" AND ")} ${order}`;
      }
      return `SELECT w.* FROM (SELECT ${CDR_COLUMNS} FROM cdr c WHERE ${[...match, ...filters].join(" AND ")} ${order}) AS w WHERE w."tenantId" = ${tenant}`;
    }
    const where = [...match, `c.tenant_id = ${tenant}`, ...filters];
    const number = p.add(query.number);
    const side = (column: string) => `(SELECT ${CDR_COLUMNS} FROM cdr c WHERE ${[...where, `c.${column} = ${number}`].join(" AND ")} ${order})`;
    return `SELECT u.* FROM (${side("caller_number")} UNION ${side("callee_number")}) AS u ORDER BY u."startedAt" DESC, u.id DESC LIMIT ${limit}`;
  }

  private async countFor(ctx: RequestContext, parent: Parent, query: CdrQuery): Promise<Map<number, number>> {
    const p = new SqlParams();
    const ids = p.add(parent.ids);
    const where = [...this.conditions(p, query)];
    if (query.number !== null) {
      const number = p.add(query.number);
      where.push(`(c.caller_number = ${number} OR c.callee_number = ${number})`);
    }
    const sql =
      parent.kind === "tenant"
        ? `SELECT c.tenant_id AS "parentId", count(*)::int AS count FROM cdr c
           WHERE ${[`c.tenant_id = ANY(${ids}::int[])`, ...where].join(" AND ")} GROUP BY c.tenant_id`
        : `SELECT c.extension_id AS "parentId", count(*)::int AS count FROM cdr c JOIN extension x ON x.id = c.extension_id AND x.tenant_id = c.tenant_id
           WHERE ${[`c.extension_id = ANY(${ids}::int[])`, ...where].join(" AND ")} GROUP BY c.extension_id`;
    const rows: Array<{ parentId: number; count: number }> = await readRows(ctx, sql, p.values);
    return new Map(rows.map((r) => [r.parentId, r.count]));
  }

  conditions(p: SqlParams, query: CdrQuery): string[] {
    const where: string[] = [];
    if (query.from !== null) where.push(`c.started_at >= ${p.add(query.from)}::timestamptz`);
    if (query.to !== null) where.push(`c.started_at < ${p.add(query.to)}::timestamptz`);
    if (query.extensionId !== null) where.push(`c.extension_id = ${p.add(query.extensionId)}`);
    if (query.direction !== null) where.push(`c.direction = ${p.add(query.direction)}`);
    if (query.disposition !== null) where.push(`c.disposition = ${p.add(query.disposition)}`);
    if (query.trunkId !== null) where.push(`c.trunk_id = ${p.add(query.trunkId)}`);
    if (query.phoneNumber !== null) where.push(`c.phone_number = ${p.add(query.phoneNumber)}`);
    return where;
  }

  /** Judges the arguments (BAD_USER_INPUT with fields) and turns them into a CdrQuery. */
  async normalize(args: CdrPageArgs): Promise<CdrQuery> {
    const limit = pageSize(args.first);
    const after = args.after ? decodeCdrCursor(args.after) : null;
    const filter = assignOwn(new CdrFilter(), args.filter);
    const extra: FieldErrors = {};
    const extensionId = filter.extensionId === undefined || filter.extensionId === null ? null : parseId(filter.extensionId);
    if (extensionId === null && filter.extensionId !== undefined && filter.extensionId !== null) {
      extra.extensionId = ["The extension id must be a positive integer id."];
    }
    const from = filter.from ?? null;
    const to = filter.to ?? null;
    // PostgreSQL's timestamptz has no year 0 and stops at 294276; keep to years 1–9999.
    for (const [field, value] of [["from", from], ["to", to]] as const) {
      const year = value instanceof Date ? value.getUTCFullYear() : null;
      if (year !== null && (Number.isNaN(year) || year < 1 || year > 9999)) extra[field] = [`The ${field} date must be between the years 1 and 9999.`];
    }
    const trunkId = filter.trunkId === undefined || filter.trunkId === null ? null : parseId(filter.trunkId);
    if (trunkId === null && filter.trunkId !== undefined && filter.trunkId !== null) extra.trunkId = ["The trunk id must be a positive integer id."];
    if (from instanceof Date && to instanceof Date && from.getTime() > to.getTime()) {
      extra.to = ["The to date must not be before the from date."];
    }
    // What GraphQL already coerced (dates, enums, ids) passes the validator's rules as it is: it runs
    // (a share of a CDR page's server time) only for what only it judges, the two number strings, or
    // to word an error.
    const judged =
      Object.keys(extra).length === 0 && (filter.number ?? null) === null && (filter.phoneNumber ?? null) === null &&
      [from, to].every((d) => d === null || (d instanceof Date && !Number.isNaN(d.getTime()))) &&
      ((filter.direction ?? null) === null || Object.values(CallDirection).includes(filter.direction as CallDirection)) &&
      ((filter.disposition ?? null) === null || Object.values(CallDisposition).includes(filter.disposition as CallDisposition)) &&
      Object.values(filter).every((v) => v === undefined || v === null || v instanceof Date || (typeof v === "string" && !v.includes("\u0000")));
    if (!judged) await assertValid(filter, extra);
    const number = filter.number?.trim() || null;
    return {
      limit,
      after,
      from: from?.toISOString() ?? null,
      to: to?.toISOString() ?? null,
      extensionId,
      direction: filter.direction ?? null,
      disposition: filter.disposition ?? null,
      number,
      trunkId,
      phoneNumber: filter.phoneNumber?.trim() || null,
    };
  }

  /** An extension named in a filter: visible to the caller and, when a tenant is given, inside it. */
  private async visibleExtension(ctx: RequestContext, id: number, tenantId: number | null): Promise<ExtensionRow> {
    const extension = await ctx.loaders.extension.load(id);
    if (!extension || (tenantId !== null && extension.tenantId !== tenantId) || !canRead(ctx, extension.tenantId)) {
      throw notFound("Extension", { extensionId: ["The selected extension does not exist."] });
    }
    return extension;
  }
}
