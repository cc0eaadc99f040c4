import { canRead, parseId, readScope, requireReader, requireRole } from "../../auth/access";
import { Role } from "../../auth/role";
import { AppError, badInput, conflict, ErrorCode, notFound, pgConstraint, pgErrorCode, PG_UNIQUE_VIOLATION } from "../../common/errors";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { transactional } from "../../db/transaction";
import { createdChanges, deletedChanges, isEmpty, recordAudit, updatedChanges, type AuditSnapshot } from "../audit/audit";
import type { ExtensionCredentials } from "../extension/extension-credentials";
import { API_KEY_REVOKED_TOPIC } from "../../subscriptions/topics";
import { Tenant } from "./tenant.entity";
import { CreateTenantInput, UpdateTenantInput } from "./tenant.inputs";

const UNIQUE_FIELDS: Record<string, [string, string]> = {
  uq_tenant__slug: ["slug", "The slug has already been taken."],
  uq_tenant__sip_domain: ["sipDomain", "The SIP domain has already been taken."],
};

function translateUnique(error: unknown): never {
  const field = pgErrorCode(error) === PG_UNIQUE_VIOLATION ? UNIQUE_FIELDS[pgConstraint(error) ?? ""] : undefined;
  if (field) throw badInput({ [field[0]]: [field[1]] });
  throw error;
}

/** A tenant as the audit trail shows it (GraphQL field names). */
export function tenantSnapshot(tenant: Tenant): AuditSnapshot {
  return {
    name: tenant.name,
    slug: tenant.slug,
    sipDomain: tenant.sipDomain,
    maxExtensions: tenant.maxExtensions,
    timezone: tenant.timezone,
    maxOutboundCalls: tenant.maxOutboundCalls,
    defaultCallerIdNumber: tenant.defaultCallerIdNumber ?? null,
  };
}

/** A caller ID must be one of the tenant's own numbers (locked, so releasing it waits for us and then sees the use). */
export async function assertOwnNumber(tx: RequestContext, tenantId: number, number: string, field: string): Promise<void> {
  const rows: unknown[] = await tx.manager.query(`SELECT 1 FROM phone_number WHERE tenant_id = $1 AND number = $2 FOR SHARE`, [tenantId, number]);
  if (rows.length === 0) throw badInput({ [field]: [`The number ${number} is not one of the tenant's phone numbers.`] });
}

export class TenantService {
  constructor(private readonly credentials: ExtensionCredentials) {}

  /** Tenants the caller may see: all for ADMIN, its own for tenant keys. */
  async list(ctx: RequestContext): Promise<Tenant[]> {
    const scope = readScope(ctx);
    return ctx.manager.find(Tenant, { where: scope === null ? {} : { id: scope }, order: { id: "ASC" } });
  }

  async get(ctx: RequestContext, rawId: string | number): Promise<Tenant> {
    requireReader(ctx);
    const id = parseId(rawId);
    const tenant = id === null ? null : await ctx.loaders.tenant.load(id);
    if (!tenant || !canRead(ctx, tenant.id)) throw notFound("Tenant");
    return tenant;
  }

  async create(ctx: RequestContext, input: CreateTenantInput): Promise<Tenant> {
    requireRole(ctx, Role.ADMIN);
    input.sipDomain = typeof input.sipDomain === "string" ? input.sipDomain.toLowerCase() : input.sipDomain;
    await assertValid(input);
    return transactional(ctx, async (tx) => {
      const repo = tx.manager.getRepository(Tenant);
      const tenant = await repo.save(repo.create({ ...input })).catch(translateUnique);
      await recordAudit(tx, { tenantId: tenant.id, action: "tenant.created", entityType: "tenant", entityId: tenant.id, changes: createdChanges(tenantSnapshot(tenant)) });
      return tenant;
    });
  }

  async update(ctx: RequestContext, rawId: string | number, input: UpdateTenantInput): Promise<Tenant> {
    requireRole(ctx, Role.ADMIN);
    if (typeof input.sipDomain === "string") input.sipDomain = input.sipDomain.toLowerCase();
    await assertValid(input);
    const id = parseId(rawId);
    if (id === null) throw notFound("Tenant");
    return transactional(ctx, async (tx) => {
      // The row lock orders this against concurrent extension creation (which takes the same lock).
      const tenant = await tx.manager.findOne(Tenant, { where: { id }, lock: { mode: "pessimistic_write" } });
      if (!tenant) throw notFound("Tenant");
      if (input.maxExtensions !== undefined && input.maxExtensions < tenant.maxExtensions) {
        const [{ count }] = await tx.manager.query(`SELECT count(*)::int AS count FROM extension WHERE tenant_id = $1`, [id]);
        if (input.maxExtensions < count) {
          throw badInput({
            maxExtensions: [`The max extensions may not be lower than the ${count} extensions the tenant has.`],
          });
        }
      }
      if (input.defaultCallerIdNumber !== undefined && input.defaultCallerIdNumber !== null) {
        await assertOwnNumber(tx, id, input.defaultCallerIdNumber, "defaultCallerIdNumber");
      }
      const before = tenantSnapshot(tenant);
      const domainChanged = input.sipDomain !== undefined && input.sipDomain !== tenant.sipDomain;
      tx.manager.merge(Tenant, tenant, Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)));
      const saved = await tx.manager.save(tenant).catch(translateUnique);
      // Every digest names the realm: the tenant's extensions change with it, in this transaction.
      if (domainChanged) await this.credentials.recomputeTenant(tx, saved.id, saved.sipDomain);
      const changes = updatedChanges(before, tenantSnapshot(saved));
      if (!isEmpty(changes)) await recordAudit(tx, { tenantId: id, action: "tenant.updated", entityType: "tenant", entityId: id, changes });
      return saved;
    });
  }

  /** Refused while the tenant has extensions, unless `force`, which removes everything it owns. */
  async delete(ctx: RequestContext, rawId: string | number, force: boolean): Promise<number> {
    requireRole(ctx, Role.ADMIN);
    const id = parseId(rawId);
    if (id === null) throw notFound("Tenant");
    const keyIds = await transactional(ctx, async (tx) => {
      const tenant = await tx.manager.findOne(Tenant, { where: { id }, lock: { mode: "pessimistic_write" } });
      if (!tenant) throw notFound("Tenant");
      if (!force) {
        const [{ count }] = await tx.manager.query(`SELECT count(*)::int AS count FROM extension WHERE tenant_id = $1`, [id]);
        if (count > 0) {
          throw conflict(`The tenant still has ${count} extensions; delete them first or pass force.`, { extensions: count });
        }
      }
      // Its keys go with it: every instance must stop accepting them at once, not when its cache expires.
      const keys: Array<{ id: number }> = await tx.manager.query(`SELECT id FROM api_key WHERE tenant_id = $1`, [id]);
      await tx.manager.delete(Tenant, { id });
      await recordAudit(tx, { tenantId: id, action: "tenant.deleted", entityType: "tenant", entityId: id, changes: deletedChanges(tenantSnapshot(tenant)) });
      return keys.map((key) => key.id);
    });
    ctx.services.apiKeys.invalidateCache();
    // As a revocation: every instance drops its cached look-ups and closes these keys' WebSockets.
    for (const apiKeyId of keyIds) await ctx.pubsub.publish(API_KEY_REVOKED_TOPIC, { apiKeyId });
    return id;
  }

  /** Loads one tenant, locked for the rest of the caller's transaction. */
  async lockForWrite(tx: RequestContext, id: number): Promise<Tenant> {
    const tenant = await tx.manager.findOne(Tenant, { where: { id }, lock: { mode: "pessimistic_write" } });
    if (!tenant) throw new AppError(ErrorCode.NOT_FOUND, "Tenant not found.", { tenantId: ["The selected tenant does not exist."] });
    return tenant;
  }
}
