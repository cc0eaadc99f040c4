import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { DataSource } from "typeorm";
import { IsNull } from "typeorm";
import { parseId, readScope, requireRole } from "../../auth/access";
import type { Principal } from "../../auth/principal";
import { Role, TENANT_BOUND_ROLES } from "../../auth/role";
import { badInput, forbidden, notFound } from "../../common/errors";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { API_KEY_REVOKED_TOPIC } from "../../subscriptions/topics";
import { Tenant } from "../tenant/tenant.entity";
import { transactional } from "../../db/transaction";
import { createdChanges, recordAudit, type AuditSnapshot } from "../audit/audit";
import { ApiKey } from "./api-key.entity";
import { CreateApiKeyInput, type CreatedApiKey } from "./api-key.inputs";

const KEY_PREFIX = "pbx_";
/** How long a verified key is trusted without a database look-up; revocation on this instance clears it at once. */
const CACHE_TTL_MS = 5_000;
const CACHE_MAX = 10_000;

export function hashKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

export function generateKey(): string {
  return KEY_PREFIX + randomBytes(32).toString("base64url");
}

/** Extracts the key from `Bearer <key>`; anything else is no key. */
export function bearerKey(header: unknown): string | null {
  if (typeof header !== "string") return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : null;
}

/** An API key as the audit trail shows it; never the key or its hash. */
function apiKeySnapshot(key: Pick<ApiKey, "name" | "role" | "tenantId" | "prefix">): AuditSnapshot {
  return { name: key.name, role: key.role, tenantId: key.tenantId === null ? null : String(key.tenantId), prefix: key.prefix };
}

export class ApiKeyService {
  private readonly cache = new Map<string, { principal: Principal | null; expires: number }>();
  private readonly envAdminHash: Buffer | null;
  private readonly envEngineHash: Buffer | null;

  constructor(
    private readonly dataSource: DataSource,
    envAdminKey: string | undefined,
    envEngineKey?: string,
  ) {
    this.envAdminHash = envAdminKey ? Buffer.from(hashKey(envAdminKey), "hex") : null;
    this.envEngineHash = envEngineKey ? Buffer.from(hashKey(envEngineKey), "hex") : null;
  }

  /** Resolves a presented key to its principal; null for unknown or revoked keys. */
  async authenticate(key: string | null): Promise<Principal | null> {
    if (!key || key.length > 512) return null;
    const hash = hashKey(key);
    if (this.envAdminHash && timingSafeEqual(this.envAdminHash, Buffer.from(hash, "hex"))) {
      return { role: Role.ADMIN, tenantId: null, apiKeyId: null, name: "ADMIN_API_KEY" };
    }
    if (this.envEngineHash && timingSafeEqual(this.envEngineHash, Buffer.from(hash, "hex"))) {
      return { role: Role.INGEST, tenantId: null, apiKeyId: null, name: "ENGINE_API_KEY" };
    }
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.expires > now) return cached.principal;
    const [row]: Array<{ id: number; name: string; role: Role; tenantId: number | null }> = await this.dataSource.query(
      `SELECT id, name, role, tenant_id AS "tenantId" FROM api_key WHERE key_hash = $1 AND revoked_at IS NULL`,
      [hash],
    );
    const principal = row ? { role: row.role, tenantId: row.tenantId, apiKeyId: row.id, name: row.name } : null;
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(hash, { principal, expires: now + CACHE_TTL_MS });
    return principal;
  }

  /** Drops cached look-ups, so a key revoked on another instance stops working here at once. */
  invalidateCache(): void {
    this.cache.clear();
  }

  /** Whether the key behind a principal is still valid (long-lived WebSockets re-check with this). */
  async isStillValid(principal: Principal): Promise<boolean> {
    if (principal.apiKeyId === null) return true;
    const [row] = await this.dataSource.query(`SELECT 1 FROM api_key WHERE id = $1 AND revoked_at IS NULL`, [principal.apiKeyId]);
    return row !== undefined;
  }

  async list(ctx: RequestContext, tenantId?: string | null): Promise<ApiKey[]> {
    requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    const scope = readScope(ctx, tenantId);
    return ctx.manager.find(ApiKey, { where: scope === null ? {} : { tenantId: scope }, order: { id: "ASC" } });
  }

  /** ADMIN creates any key; a TENANT_ADMIN creates keys of its own tenant only. */
  async create(ctx: RequestContext, input: CreateApiKeyInput): Promise<CreatedApiKey> {
    const principal = requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    await assertValid(input);
    let tenantId: number | null = null;
    if (principal.role === Role.TENANT_ADMIN) {
      if (input.role === Role.ADMIN) throw forbidden("A tenant key cannot create platform keys.");
      if (input.tenantId !== undefined && input.tenantId !== null && parseId(input.tenantId) !== principal.tenantId) {
        throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
      }
      tenantId = principal.tenantId;
    } else if (input.role === Role.ADMIN) {
      if (input.tenantId) throw badInput({ tenantId: ["An ADMIN key belongs to no tenant."] });
    } else if (input.tenantId !== undefined && input.tenantId !== null) {
      tenantId = parseId(input.tenantId);
      const exists = tenantId !== null && (await ctx.manager.exists(Tenant, { where: { id: tenantId } }));
      if (!exists) throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
    } else if (TENANT_BOUND_ROLES.has(input.role)) {
      throw badInput({ tenantId: [`A ${input.role} key needs a tenant.`] });
    }
    const key = generateKey();
    return transactional(ctx, async (tx) => {
      const repo = tx.manager.getRepository(ApiKey);
      const saved = await repo.save(
        repo.create({ name: input.name, role: input.role, tenantId, prefix: key.slice(0, 12), keyHash: hashKey(key) }),
      );
      const { keyHash: _hidden, ...apiKey } = saved;
      await recordAudit(tx, { tenantId, action: "api_key.created", entityType: "api_key", entityId: saved.id, changes: createdChanges(apiKeySnapshot(saved)) });
      return { key, apiKey: apiKey as ApiKey };
    });
  }

  async revoke(ctx: RequestContext, rawId: string): Promise<number> {
    const principal = requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    const id = parseId(rawId);
    const key = await transactional(ctx, async (tx) => {
      const found = id === null ? null : await tx.manager.findOne(ApiKey, { where: { id }, lock: { mode: "pessimistic_write" } });
      if (!found || (principal.role !== Role.ADMIN && found.tenantId !== principal.tenantId)) throw notFound("API key");
      if (!found.revokedAt) {
        const revokedAt = new Date();
        await tx.manager.update(ApiKey, { id: found.id }, { revokedAt });
        await recordAudit(tx, {
          tenantId: found.tenantId,
          action: "api_key.revoked",
          entityType: "api_key",
          entityId: found.id,
          changes: { revokedAt: [null, revokedAt.toISOString()] },
        });
      }
      return found;
    });
    this.cache.clear();
    // Every instance closes the WebSockets this key opened.
    await ctx.pubsub.publish(API_KEY_REVOKED_TOPIC, { apiKeyId: key.id });
    return key.id;
  }

  /**
   * First start without ADMIN_API_KEY: creates one ADMIN key and returns it so it can be printed once.
   * Serialized by an advisory lock so that instances starting together create only one.
   */
  async ensureBootstrapAdmin(): Promise<string | null> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query(`SELECT pg_advisory_xact_lock(hashtext('pbx-bootstrap-admin'))`);
      const existing = await manager.exists(ApiKey, { where: { role: Role.ADMIN, revokedAt: IsNull() } });
      if (existing) return null;
      const key = generateKey();
      await manager.insert(ApiKey, { name: "bootstrap admin", role: Role.ADMIN, tenantId: null, prefix: key.slice(0, 12), keyHash: hashKey(key) });
      return key;
    });
  }
}

