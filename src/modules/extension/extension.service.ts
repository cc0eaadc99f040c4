import { randomBytes } from "node:crypto";
import { canRead, canWrite, parseId, readScope, requirePrincipal, writeScope } from "../../auth/access";
import {
  AppError,
  badInput,
  conflict,
  ErrorCode,
  notFound,
  pgConstraint,
  pgErrorCode,
  PG_UNIQUE_VIOLATION,
} from "../../common/errors";
import type { SecretBox } from "../../common/secret-box";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { likeContains, SqlParams } from "../../db/sql";
import { transactional } from "../../db/transaction";
import { ConnectionPage, decodeCursor, encodeCursor, pageSize } from "../../graphql/connection";
import type { TenantService } from "../tenant/tenant.service";
import { ExtensionStatus, type Extension } from "./extension.entity";
import { CreateExtensionInput, UpdateExtensionInput } from "./extension.inputs";

/** What every read of an extension returns; the secret never leaves the table. */
export type ExtensionRow = Omit<Extension, "secretCiphertext" | "tenantRow" | "hasSecret"> & { hasSecret: boolean };

export const EXTENSION_COLUMNS = `e.id, e.tenant_id AS "tenantId", e.extension_number AS "extensionNumber",
  e.display_name AS "displayName", e.email, e.status, e.voicemail_enabled AS "voicemailEnabled",
  e.created_at AS "createdAt", e.updated_at AS "updatedAt", (e.secret_ciphertext IS NOT NULL) AS "hasSecret"`;

export interface ExtensionListArgs {
  search?: string | null;
  status?: ExtensionStatus | null;
  first?: number | null;
  after?: string | null;
}

/** Queues that block deleting an extension (invariant 3). */
export interface BlockingQueue {
  id: number;
  name: string;
  number: string;
}

const secretAad = (tenantId: number) => `extension-secret:${tenantId}`;
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
    private readonly secretBox: SecretBox,
  ) {}

  async get(ctx: RequestContext, rawId: string | number): Promise<ExtensionRow> {
    requirePrincipal(ctx);
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
    const sql = `SELECT ${EXTENSION_COLUMNS} FROM extension e ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY e.id LIMIT ${p.add(limit + 1)}`;
    const rows: ExtensionRow[] = await ctx.manager.query(sql, p.values);
    return new ConnectionPage(rows, limit, cursorOf, async () => {
      const cp = new SqlParams();
      const cw = filter(cp);
      const [{ count }] = await ctx.manager.query(
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
    const rows: ExtensionRow[] = await ctx.manager.query(
      `SELECT x.* FROM unnest(${p.add(tenantIds)}::int[]) AS t(id)
       CROSS JOIN LATERAL (SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE ${where.join(" AND ")}
                           ORDER BY e.id LIMIT ${p.add(limit + 1)}) x`,
      p.values,
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
        const result: Array<{ tenantId: number; count: number }> = await ctx.manager.query(
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
    requirePrincipal(ctx);
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
      const [row]: ExtensionRow[] = await tx.manager
        .query(
          `INSERT INTO extension AS e (tenant_id, extension_number, display_name, email, secret_ciphertext, status, voicemail_enabled)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${EXTENSION_COLUMNS}`,
          [
            tenantId,
            input.extensionNumber,
            input.displayName ?? null,
            input.email ?? null,
            this.secretBox.seal(input.secret, secretAad(tenantId)),
            input.status ?? ExtensionStatus.ACTIVE,
            input.voicemailEnabled ?? false,
          ],
        )
        .catch(translateUnique);
      return row;
    });
  }

  async update(ctx: RequestContext, rawId: string | number, input: UpdateExtensionInput): Promise<ExtensionRow> {
    requirePrincipal(ctx);
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
      if (input.secret !== undefined) set("secret_ciphertext", this.secretBox.seal(input.secret, secretAad(current.tenantId)));
      if (sets.length === 0) return current;
      sets.push("updated_at = now()");
      const [rows]: [ExtensionRow[]] = await tx.manager
        .query(`UPDATE extension AS e SET ${sets.join(", ")} WHERE e.id = ${p.add(current.id)} RETURNING ${EXTENSION_COLUMNS}`, p.values)
        .catch(translateUnique);
      return rows[0];
    });
  }

  /** Invariant 3: refused while the extension is a queue agent, unless `force` unenrols it in the same transaction. */
  async delete(ctx: RequestContext, rawId: string | number, force: boolean): Promise<number> {
    requirePrincipal(ctx);
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
      await tx.manager.query(`DELETE FROM queue_agent WHERE extension_id = $1`, [current.id]);
      await tx.manager.query(`DELETE FROM extension WHERE id = $1`, [current.id]);
      return current.id;
    });
  }

  /** Sets a new random secret and returns it; this is the only time it is ever shown. */
  async rotateSecret(ctx: RequestContext, rawId: string | number): Promise<string> {
    requirePrincipal(ctx);
    return transactional(ctx, async (tx) => {
      const current = await this.lockForWrite(tx, rawId);
      const secret = randomBytes(18).toString("base64url");
      await tx.manager.query(`UPDATE extension SET secret_ciphertext = $1, updated_at = now() WHERE id = $2`, [
        this.secretBox.seal(secret, secretAad(current.tenantId)),
        current.id,
      ]);
      return secret;
    });
  }

  /** Loads and row-locks an extension the caller may change; another tenant's answers as not found. */
  async lockForWrite(tx: RequestContext, rawId: string | number): Promise<ExtensionRow> {
    const id = parseId(rawId);
    const [row]: ExtensionRow[] = id === null ? [] : await tx.manager.query(`SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE e.id = $1 FOR UPDATE`, [id]);
    if (!row || !canWrite(tx, row.tenantId)) throw notFound("Extension");
    return row;
  }

  private addFilters(p: SqlParams, where: string[], args: ExtensionListArgs): void {
    const search = args.search?.trim();
    if (search) {
      const term = p.add(likeContains(search));
      where.push(`(e.extension_number ILIKE ${term} OR e.display_name ILIKE ${term} OR e.email ILIKE ${term})`);
    }
    if (args.status) where.push(`e.status = ${p.add(args.status)}`);
  }
}
