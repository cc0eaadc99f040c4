import { readRows } from "../../db/read";
import { randomBytes } from "node:crypto";
import { canRead, canWrite, parseId, readScope, requireRole, writeScope } from "../../auth/access";
import { Role } from "../../auth/role";
import {
  AppError,
  badInput,
  conflict,
  ErrorCode,
  type FieldErrors,
  notFound,
  pgConstraint,
  pgErrorCode,
  PG_UNIQUE_VIOLATION,
} from "../../common/errors";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { likeContains, SqlParams } from "../../db/sql";
import { transactional } from "../../db/transaction";
import { prefetchColumns, primeFromRows, type ExtensionPrefetch } from "../../graphql/extension-prefetch";
import { ConnectionPage, decodeCursor, encodeCursor, MAX_PAGE_SIZE, pageSize } from "../../graphql/connection";
import { publishExtension, publishRegistration } from "../../subscriptions/events";
import { publishQueueChange } from "../../subscriptions/queue-stats-feed";
import { createdChanges, deletedChanges, isEmpty, recordAudit, REDACTED, updatedChanges, type AuditSnapshot } from "../audit/audit";
import { DEVICE_COLUMNS, type DeviceRow } from "../device/device.service";
import { releaseReferences, renameReferences, typesNaming } from "../call-destination/call-destination";
import { agentRemoved, QUEUE_AGENT_COLUMNS, type QueueAgentRow } from "../queue/queue.service";
import type { TenantService } from "../tenant/tenant.service";
import type { ExtensionCredentials, SipDigests } from "./extension-credentials";
import { ExtensionStatus, type Extension } from "./extension.entity";
import { CreateExtensionInput, UpdateExtensionInput } from "./extension.inputs";

/** What every read of an extension returns; the secret and its digests never leave the table. */
export type ExtensionRow = Omit<Extension, "secretCiphertext" | "ha1" | "ha1b" | "ha1Sha256" | "tenantRow" | "hasSecret"> & { hasSecret: boolean };

export const EXTENSION_COLUMNS = `e.id, e.tenant_id AS "tenantId", e.extension_number AS "extensionNumber",
  e.display_name AS "displayName", e.email, e.status, e.voicemail_enabled AS "voicemailEnabled",
  e.created_at AS "createdAt", e.updated_at AS "updatedAt", (e.secret_ciphertext IS NOT NULL) AS "hasSecret"`;

export interface ExtensionListArgs {
  search?: string | null;
  status?: ExtensionStatus | null;
  first?: number | null;
  after?: string | null;
  /** Relations the page's nodes select, fetched in the page's own statement (see extension-prefetch). */
  prefetch?: ExtensionPrefetch;
}

/** Queues that block deleting an extension (invariant 3). */
export interface BlockingQueue {
  id: number;
  name: string;
  number: string;
}

/** Page-numbered listing (REST `page`/`per_page`); values arrive unjudged from the transport. */
export interface ExtensionPageQuery {
  search?: unknown;
  status?: unknown;
  page?: number;
  perPage?: number;
}

export interface ExtensionPage {
  rows: ExtensionRow[];
  total: number;
  page: number;
  perPage: number;
}

export const DEFAULT_PER_PAGE = 15;
const MAX_PAGE_NUMBER = 1_000_000;

/** The REST paginator's `page` and `per_page`, judged the same way on every listing. */
export function pageNumberErrors(page: number, perPage: number): FieldErrors {
  const errors: FieldErrors = {};
  if (!Number.isInteger(page) || page < 1 || page > MAX_PAGE_NUMBER) errors.page = [`The page must be a whole number from 1 to ${MAX_PAGE_NUMBER}.`];
  if (!Number.isInteger(perPage) || perPage < 1 || perPage > MAX_PAGE_SIZE) errors.perPage = [`The per page must be a whole number from 1 to ${MAX_PAGE_SIZE}.`];
  return errors;
}
const READ_ROLES = [Role.ADMIN, Role.TENANT_ADMIN, Role.VIEWER];
const WRITE_ROLES = [Role.ADMIN, Role.TENANT_ADMIN];
const TENANT_NOT_VISIBLE = "The selected tenant does not exist.";

/** A tenant the caller cannot see, named in input, is reported on the tenantId field exactly like a missing one. */
function tenantAsField(error: unknown): never {
  if (error instanceof AppError && error.code === ErrorCode.NOT_FOUND && !error.fields) {
    throw notFound("Tenant", { tenantId: [TENANT_NOT_VISIBLE] });
  }
  throw error;
}

/** The extension as the audit trail shows it: GraphQL field names and values, the secret only as "[redacted]". */
export function extensionSnapshot(row: Pick<ExtensionRow, "extensionNumber" | "displayName" | "email" | "status" | "voicemailEnabled" | "hasSecret">): AuditSnapshot {
  return {
    extensionNumber: row.extensionNumber,
    displayName: row.displayName,
    email: row.email,
    status: row.status.toUpperCase(),
    voicemailEnabled: row.voicemailEnabled,
    secret: row.hasSecret ? REDACTED : null,
  };
}
const cursorOf = (row: ExtensionRow) => encodeCursor([row.id]);

function translateUnique(error: unknown): never {
  if (pgErrorCode(error) === PG_UNIQUE_VIOLATION && pgConstraint(error) === "uq_extension__tenant_id__extension_number") {
    throw badInput({ extensionNumber: ["The extension number has already been taken."] });
  }
  throw error;
}

export class ExtensionService {
  constructor(
    private readonly tenants: TenantService,
    private readonly credentials: ExtensionCredentials,
  ) {}

  async get(ctx: RequestContext, rawId: string | number): Promise<ExtensionRow> {
    this.authorize(ctx, "read");
    const id = parseId(rawId);
    const row = id === null ? null : await ctx.loaders.extension.load(id);
    if (!row || !canRead(ctx, row.tenantId)) throw notFound("Extension");
    return row;
  }

  /** Root `extensions(...)` and REST listing: one tenant, or every tenant for an ADMIN who names none. */
  async list(ctx: RequestContext, tenantId: string | number | null | undefined, args: ExtensionListArgs): Promise<ConnectionPage<ExtensionRow>> {
    const scope = readScope(ctx, tenantId);
    const limit = pageSize(args.first);
    const afterId = args.after ? (decodeCursor(args.after, ["number"])[0] as number) : null;
    const filter = (p: SqlParams) => {
      const where: string[] = [];
      if (scope !== null) where.push(`e.tenant_id = ${p.add(scope)}`);
      this.addFilters(p, where, args);
      return where;
    };
    const p = new SqlParams();
    const where = filter(p);
    if (afterId !== null) where.push(`e.id > ${p.add(afterId)}`);
    const sql = `SELECT ${EXTENSION_COLUMNS}${prefetchColumns(args.prefetch)} FROM extension e ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY e.id LIMIT ${p.add(limit + 1)}`;
    const rows = primeFromRows(ctx, await readRows<ExtensionRow>(ctx, sql, p.values));
    return new ConnectionPage(rows, limit, cursorOf, async () => {
      const cp = new SqlParams();
      const cw = filter(cp);
      const [{ count }] = await readRows<{ count: number }>(ctx,
        `SELECT count(*)::int AS count FROM extension e ${cw.length ? `WHERE ${cw.join(" AND ")}` : ""}`,
        cp.values,
      );
      return count;
    });
  }

  /**
   * `Tenant.extensions` for many tenants at once: one keyset query (LATERAL per tenant) for every
   * tenant in the batch that asked with the same arguments, and one grouped count when asked.
   */
  async listForTenants(ctx: RequestContext, tenantIds: readonly number[], args: ExtensionListArgs): Promise<Array<ConnectionPage<ExtensionRow>>> {
    const limit = pageSize(args.first);
    const afterId = args.after ? (decodeCursor(args.after, ["number"])[0] as number) : null;
    const p = new SqlParams();
    const where = [`e.tenant_id = t.id`];
    this.addFilters(p, where, args);
    if (afterId !== null) where.push(`e.id > ${p.add(afterId)}`);
    const rows = primeFromRows(
      ctx,
      await readRows<ExtensionRow>(
        ctx,
        `SELECT x.* FROM unnest(${p.add(tenantIds)}::int[]) AS t(id)
         CROSS JOIN LATERAL (SELECT ${EXTENSION_COLUMNS}${prefetchColumns(args.prefetch)} FROM extension e WHERE ${where.join(" AND ")}
                             ORDER BY e.id LIMIT ${p.add(limit + 1)}) x`,
        p.values,
      ),
    );
    const byTenant = new Map<number, ExtensionRow[]>();
    for (const row of rows) {
      const list = byTenant.get(row.tenantId);
      if (list) list.push(row);
      else byTenant.set(row.tenantId, [row]);
    }
    let counts: Promise<Map<number, number>> | undefined;
    const countAll = () =>
      (counts ??= (async () => {
        const cp = new SqlParams();
        const conditions = [`e.tenant_id = ANY(${cp.add(tenantIds)}::int[])`];
        this.addFilters(cp, conditions, args);
        const result: Array<{ tenantId: number; count: number }> = await readRows(ctx,
          `SELECT e.tenant_id AS "tenantId", count(*)::int AS count FROM extension e WHERE ${conditions.join(" AND ")} GROUP BY e.tenant_id`,
          cp.values,
        );
        return new Map(result.map((r) => [r.tenantId, r.count]));
      })());
    return tenantIds.map(
      (tenantId) => new ConnectionPage(byTenant.get(tenantId) ?? [], limit, cursorOf, async () => (await countAll()).get(tenantId) ?? 0),
    );
  }

  async create(ctx: RequestContext, input: CreateExtensionInput): Promise<ExtensionRow> {
    this.authorize(ctx, "write");
    await assertValid(input);
    const tenantId = writeScope(ctx, input.tenantId);
    return transactional(ctx, async (tx) => {
      // Invariant 1 under concurrency: creates for one tenant queue on its row lock, so the count
      // below already includes every extension committed before us.
      const tenant = await this.tenants.lockForWrite(tx, tenantId);
      const [{ count }] = await tx.manager.query(`SELECT count(*)::int AS count FROM extension WHERE tenant_id = $1`, [tenantId]);
      if (count >= tenant.maxExtensions) {
        throw new AppError(
          ErrorCode.EXTENSION_LIMIT_REACHED,
          `The tenant has reached its limit of ${tenant.maxExtensions} extensions.`,
          { tenantId: [`The tenant has reached its limit of ${tenant.maxExtensions} extensions.`] },
        );
      }
      const sealed = this.credentials.seal(tenantId, input.extensionNumber, tenant.sipDomain, input.secret);
      const [row]: ExtensionRow[] = await tx.manager
        .query(
          `INSERT INTO extension AS e (tenant_id, extension_number, display_name, email, secret_ciphertext, ha1, ha1b, ha1_sha256, status, voicemail_enabled)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${EXTENSION_COLUMNS}`,
          [
            tenantId,
            input.extensionNumber,
            input.displayName ?? null,
            input.email ?? null,
            sealed.secretCiphertext,
            sealed.ha1,
            sealed.ha1b,
            sealed.ha1Sha256,
            input.status ?? ExtensionStatus.ACTIVE,
            input.voicemailEnabled ?? false,
          ],
        )
        .catch(translateUnique);
      await recordAudit(tx, { tenantId, action: "extension.created", entityType: "extension", entityId: row.id, changes: createdChanges(extensionSnapshot(row)) });
      publishExtension(tx, { type: "CREATED", tenantId, extension: row, occurredAt: new Date().toISOString() });
      return row;
    });
  }

  async update(ctx: RequestContext, rawId: string | number, input: UpdateExtensionInput): Promise<ExtensionRow> {
    this.authorize(ctx, "write");
    await assertValid(input);
    return transactional(ctx, async (tx) => {
      const current = await this.lockForWrite(tx, rawId);
      const p = new SqlParams();
      const sets: string[] = [];
      const set = (column: string, value: unknown) => sets.push(`${column} = ${p.add(value)}`);
      if (input.extensionNumber !== undefined) set("extension_number", input.extensionNumber);
      if (input.displayName !== undefined) set("display_name", input.displayName);
      if (input.email !== undefined) set("email", input.email);
      if (input.status !== undefined) set("status", input.status);
      if (input.voicemailEnabled !== undefined) set("voicemail_enabled", input.voicemailEnabled);
      if (input.secret !== undefined || (input.extensionNumber !== undefined && input.extensionNumber !== current.extensionNumber)) {
        const credentials = await this.credentialsFor(tx, current, input.extensionNumber ?? current.extensionNumber, input.secret);
        if (credentials.secretCiphertext !== undefined) set("secret_ciphertext", credentials.secretCiphertext);
        set("ha1", credentials.ha1);
        set("ha1b", credentials.ha1b);
        set("ha1_sha256", credentials.ha1Sha256);
      }
      if (sets.length === 0) return current;
      sets.push("updated_at = now()");
      const [rows]: [ExtensionRow[]] = await tx.manager
        .query(`UPDATE extension AS e SET ${sets.join(", ")} WHERE e.id = ${p.add(current.id)} RETURNING ${EXTENSION_COLUMNS}`, p.values)
        .catch(translateUnique);
      const updated = rows[0];
      const changes = updatedChanges(extensionSnapshot(current), extensionSnapshot(updated), input.secret !== undefined ? ["secret"] : []);
      if (!isEmpty(changes)) {
        await recordAudit(tx, { tenantId: updated.tenantId, action: "extension.updated", entityType: "extension", entityId: updated.id, changes });
      }
      // Destinations that name the extension follow its new number (contract §11 leaves it open).
      await recordAudit(tx, await renameReferences(tx, updated.tenantId, typesNaming("extension"), current.extensionNumber, updated.extensionNumber));
      if (current.status === ExtensionStatus.ACTIVE && updated.status === ExtensionStatus.DISABLED) await this.unregisterDevices(tx, [updated]);
      publishExtension(tx, { type: "UPDATED", tenantId: updated.tenantId, extension: updated, occurredAt: new Date().toISOString() });
      return updated;
    });
  }

  /** Invariant 3: refused while the extension is a queue agent, unless `force` unenrols it in the same transaction. */
  async delete(ctx: RequestContext, rawId: string | number, force: boolean): Promise<number> {
    this.authorize(ctx, "write");
    return transactional(ctx, async (tx) => {
      const current = await this.lockForWrite(tx, rawId);
      const queues: BlockingQueue[] = await tx.manager.query(
        `SELECT q.id, q.name, q.number FROM queue_agent a JOIN queue q ON q.id = a.queue_id
         WHERE a.extension_id = $1 ORDER BY q.name, q.id`,
        [current.id],
      );
      if (queues.length > 0 && !force) {
        throw conflict(
          `The extension is an agent of ${queues.length === 1 ? "queue" : "queues"} ${queues.map((q) => q.name).join(", ")}; remove it from ${queues.length === 1 ? "that queue" : "them"} first or pass force.`,
          { queues },
        );
      }
      // Destinations naming it (contract §11): CONFLICT naming them, or HANGUP with force.
      const released = await releaseReferences(tx, current.tenantId, typesNaming("extension"), current.extensionNumber, force, `The extension ${current.extensionNumber}`);
      const [agents]: [QueueAgentRow[]] = await tx.manager.query(`DELETE FROM queue_agent AS a WHERE a.extension_id = $1 RETURNING ${QUEUE_AGENT_COLUMNS}`, [current.id]);
      await tx.manager.query(`DELETE FROM extension WHERE id = $1`, [current.id]);
      await recordAudit(tx, [
        ...released,
        ...agents.map((agent) => agentRemoved(agent)),
        { tenantId: current.tenantId, action: "extension.deleted", entityType: "extension", entityId: current.id, changes: deletedChanges(extensionSnapshot(current)) },
      ]);
      publishQueueChange(tx, queues.map((q) => q.id));
      publishExtension(tx, { type: "DELETED", tenantId: current.tenantId, extension: current, occurredAt: new Date().toISOString() });
      return current.id;
    });
  }

  /** Sets a new random secret and returns it; this is the only time it is ever shown. */
  async rotateSecret(ctx: RequestContext, rawId: string | number): Promise<string> {
    this.authorize(ctx, "write");
    return transactional(ctx, async (tx) => {
      const current = await this.lockForWrite(tx, rawId);
      const secret = randomBytes(18).toString("base64url");
      const sealed = await this.credentialsFor(tx, current, current.extensionNumber, secret);
      const [rows]: [ExtensionRow[]] = await tx.manager.query(
        `UPDATE extension AS e SET secret_ciphertext = $1, ha1 = $2, ha1b = $3, ha1_sha256 = $4, updated_at = now() WHERE e.id = $5 RETURNING ${EXTENSION_COLUMNS}`,
        [sealed.secretCiphertext, sealed.ha1, sealed.ha1b, sealed.ha1Sha256, current.id],
      );
      await recordAudit(tx, {
        tenantId: current.tenantId,
        action: "extension.secret_rotated",
        entityType: "extension",
        entityId: current.id,
        changes: { secret: [current.hasSecret ? REDACTED : null, REDACTED] },
      });
      publishExtension(tx, { type: "UPDATED", tenantId: current.tenantId, extension: rows[0], occurredAt: new Date().toISOString() });
      return secret;
    });
  }

  /**
   * The role gate, checked before anything is looked up or judged: a VIEWER's write or an INGEST
   * key's read is refused whatever it names, so a refusal never tells whether an id exists.
   */
  authorize(ctx: RequestContext, access: "read" | "write"): void {
    requireRole(ctx, ...(access === "read" ? READ_ROLES : WRITE_ROLES));
  }

  /** Page-numbered listing, ordered by id: one tenant, or every tenant for an ADMIN who names none. */
  async paginate(ctx: RequestContext, tenantId: string | number | null | undefined, query: ExtensionPageQuery): Promise<ExtensionPage> {
    const scope = await this.visibleTenant(ctx, tenantId);
    const page = query.page ?? 1;
    const perPage = query.perPage ?? DEFAULT_PER_PAGE;
    const extra = pageNumberErrors(page, perPage);
    if (query.search !== undefined && typeof query.search !== "string") extra.search = ["The search must be a string."];
    // The status filter is judged by the status field's own rule.
    await assertValid(Object.assign(new UpdateExtensionInput(), { status: query.status }), extra);
    const args: ExtensionListArgs = { search: query.search as string | undefined, status: query.status as ExtensionStatus | undefined };
    const p = new SqlParams();
    const where: string[] = [];
    if (scope !== null) where.push(`e.tenant_id = ${p.add(scope)}`);
    this.addFilters(p, where, args);
    const condition = where.length ? `WHERE ${where.join(" AND ")}` : "";
    const [rows, [{ total }]]: [ExtensionRow[], Array<{ total: number }>] = await Promise.all([
      readRows<ExtensionRow>(ctx,
        `SELECT ${EXTENSION_COLUMNS} FROM extension e ${condition} ORDER BY e.id LIMIT ${p.add(perPage)} OFFSET ${p.add((page - 1) * perPage)}`,
        p.values,
      ),
      readRows<{ total: number }>(ctx, `SELECT count(*)::int AS total FROM extension e ${condition}`, p.values.slice(0, p.values.length - 2)),
    ]);
    return { rows, total, page, perPage };
  }

  /** create, with a tenant the caller cannot see reported on tenantId like a missing one. */
  async createInTenant(ctx: RequestContext, input: CreateExtensionInput): Promise<ExtensionRow> {
    return this.create(ctx, input).catch(tenantAsField);
  }

  /**
   * Replaces the whole resource: judged by the create rules, except that an absent secret keeps the
   * current one; what the input leaves out takes the create defaults. The tenant may be repeated,
   * never changed.
   */
  async replace(ctx: RequestContext, rawId: string | number, input: CreateExtensionInput): Promise<ExtensionRow> {
    const current = await this.get(ctx, rawId);
    const keepSecret = input.secret === undefined;
    // A missing tenant id is the required-field rule's to report, not a change.
    await assertValid(input, this.tenantChange(current, input.tenantId ?? undefined)).catch((error: unknown) => {
      if (!keepSecret || !(error instanceof AppError) || !error.fields) throw error;
      const { secret: _absent, ...fields } = error.fields;
      if (Object.keys(fields).length > 0) throw badInput(fields, error.message);
    });
    const whole = Object.assign(new UpdateExtensionInput(), {
      extensionNumber: input.extensionNumber,
      displayName: input.displayName ?? null,
      email: input.email ?? null,
      status: input.status ?? ExtensionStatus.ACTIVE,
      voicemailEnabled: input.voicemailEnabled ?? false,
      ...(keepSecret ? {} : { secret: input.secret }),
    });
    return this.update(ctx, current.id, whole);
  }

  /** update, where the input may also repeat the extension's tenant (never change it); an unknown id is refused before the input is judged. */
  async updateInTenant(ctx: RequestContext, rawId: string | number, input: UpdateExtensionInput, tenantId?: unknown): Promise<ExtensionRow> {
    const current = await this.get(ctx, rawId);
    await assertValid(input, this.tenantChange(current, tenantId));
    return this.update(ctx, current.id, input);
  }

  /**
   * The credentials of a locked extension under its (new) number: sealed from a new secret, or the
   * stored secret opened to recompute the digests. The tenant's domain is read after the row lock,
   * so a domain change that committed first is seen, and one that commits later recomputes this row.
   */
  private async credentialsFor(
    tx: RequestContext,
    current: ExtensionRow,
    extensionNumber: string,
    secret: string | undefined,
  ): Promise<SipDigests & { secretCiphertext?: string }> {
    const [row]: Array<{ sipDomain: string; secretCiphertext: string }> = await tx.manager.query(
      `SELECT t.sip_domain AS "sipDomain", e.secret_ciphertext AS "secretCiphertext" FROM extension e JOIN tenant t ON t.id = e.tenant_id WHERE e.id = $1`,
      [current.id],
    );
    if (secret !== undefined) return this.credentials.seal(current.tenantId, extensionNumber, row.sipDomain, secret);
    return this.credentials.digestsOf(current.tenantId, extensionNumber, row.sipDomain, row.secretCiphertext);
  }

  /** A disabled extension keeps no registration: the live devices of these extensions are unregistered (one statement), each with its event. */
  async unregisterDevices(tx: RequestContext, extensions: readonly ExtensionRow[]): Promise<void> {
    if (extensions.length === 0) return;
    const byId = new Map(extensions.map((e) => [e.id, e]));
    const [devices]: [DeviceRow[]] = await tx.manager.query(
      `UPDATE device AS d SET unregistered_at = now(), updated_at = now()
       WHERE d.extension_id = ANY($1::int[]) AND d.unregistered_at IS NULL AND d.expires_at > now() RETURNING ${DEVICE_COLUMNS}`,
      [[...byId.keys()]],
    );
    const occurredAt = new Date().toISOString();
    for (const device of devices) {
      const extension = byId.get(device.extensionId)!;
      publishRegistration(tx, { type: "UNREGISTERED", tenantId: extension.tenantId, extension, device, occurredAt });
    }
  }

  /** Loads and row-locks an extension the caller may change; another tenant's answers as not found. */
  async lockForWrite(tx: RequestContext, rawId: string | number): Promise<ExtensionRow> {
    const id = parseId(rawId);
    const [row]: ExtensionRow[] = id === null ? [] : await tx.manager.query(`SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE e.id = $1 FOR UPDATE`, [id]);
    if (!row || !canWrite(tx, row.tenantId)) throw notFound("Extension");
    return row;
  }

  /** The tenant a listing names, checked to be one the caller can see (else a tenantId field error). */
  private async visibleTenant(ctx: RequestContext, tenantId: string | number | null | undefined): Promise<number | null> {
    let scope: number | null;
    try {
      scope = readScope(ctx, tenantId);
    } catch (error) {
      tenantAsField(error);
    }
    if (scope !== null && !(await ctx.loaders.tenant.load(scope))) throw notFound("Tenant", { tenantId: [TENANT_NOT_VISIBLE] });
    return scope;
  }

  private tenantChange(current: ExtensionRow, tenantId: unknown): FieldErrors {
    if (tenantId === undefined || parseId(tenantId as string | number | null) === current.tenantId) return {};
    return { tenantId: ["The tenant of an extension cannot be changed."] };
  }

  addFilters(p: SqlParams, where: string[], args: ExtensionListArgs): void {
    const search = args.search?.trim();
    if (search?.includes("\u0000")) throw badInput({ search: ["The search may not contain NUL characters."] });
    if (search) {
      const term = p.add(likeContains(search));
      where.push(`(e.extension_number ILIKE ${term} OR e.display_name ILIKE ${term} OR e.email ILIKE ${term})`);
    }
    if (args.status) where.push(`e.status = ${p.add(args.status)}`);
  }
}
