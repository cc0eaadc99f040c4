import { AppError, ErrorCode, forbidden, notFound, unauthenticated } from "../common/errors";
import type { RequestContext } from "../context/request-context";
import type { Principal } from "./principal";
import { Role } from "./role";

const READ_ROLES: ReadonlySet<Role> = new Set([Role.ADMIN, Role.TENANT_ADMIN, Role.VIEWER]);
const WRITE_ROLES: ReadonlySet<Role> = new Set([Role.ADMIN, Role.TENANT_ADMIN]);

export function requirePrincipal(ctx: RequestContext): Principal {
  if (!ctx.principal) throw unauthenticated();
  return ctx.principal;
}

export function requireRole(ctx: RequestContext, ...roles: Role[]): Principal {
  const principal = requirePrincipal(ctx);
  if (!roles.includes(principal.role)) throw forbidden();
  return principal;
}

/** Positive integer ids only; anything else identifies nothing. */
export function parseId(raw: string | number | null | undefined): number | null {
  if (raw === null || raw === undefined) return null;
  const text = String(raw).trim();
  if (!/^[1-9][0-9]{0,9}$/.test(text)) return null;
  const id = Number(text);
  return id <= 2_147_483_647 ? id : null;
}

/**
 * Refuses a principal that may read nothing (INGEST) before anything is looked up, so that its
 * answer is the same for an id that exists and one that does not (no existence oracle).
 */
export function requireReader(ctx: RequestContext): Principal {
  return requireRole(ctx, ...READ_ROLES);
}

function scoped(ctx: RequestContext, roles: ReadonlySet<Role>, tenantId: string | number | null | undefined, what: string): number | null {
  const principal = requirePrincipal(ctx);
  if (!roles.has(principal.role)) throw forbidden();
  if (tenantId === undefined || tenantId === null) return principal.role === Role.ADMIN ? null : principal.tenantId;
  const id = parseId(tenantId);
  // Another tenant's id answers exactly like an id that does not exist.
  if (id === null || (principal.role !== Role.ADMIN && principal.tenantId !== id)) throw notFound(what);
  return id;
}

/**
 * The tenant a read is about: the requested one (checked), the caller's own when omitted,
 * or null (= every tenant) for an ADMIN who names none.
 */
export function readScope(ctx: RequestContext, tenantId?: string | number | null): number | null {
  return scoped(ctx, READ_ROLES, tenantId, "Tenant");
}

/** The one tenant a write targets. Tenant principals may omit it; an ADMIN must name it. */
export function writeScope(ctx: RequestContext, tenantId: string | number | null | undefined, field = "tenantId"): number {
  const refuse = () => notFound("Tenant", { [field]: ["The selected tenant does not exist."] });
  let id: number | null;
  try {
    id = scoped(ctx, WRITE_ROLES, tenantId, "Tenant");
  } catch (error) {
    if (error instanceof AppError && error.code === ErrorCode.NOT_FOUND) throw refuse();
    throw error;
  }
  if (id === null) throw refuse();
  return id;
}

/** Whether the caller may read rows of this tenant (used after loading a row by id). */
export function canRead(ctx: RequestContext, tenantId: number): boolean {
  const principal = requirePrincipal(ctx);
  if (!READ_ROLES.has(principal.role)) throw forbidden();
  return principal.role === Role.ADMIN || principal.tenantId === tenantId;
}

/** Whether the caller may change rows of this tenant; VIEWER and INGEST are refused outright. */
export function canWrite(ctx: RequestContext, tenantId: number): boolean {
  const principal = requirePrincipal(ctx);
  if (!WRITE_ROLES.has(principal.role)) throw forbidden();
  return principal.role === Role.ADMIN || principal.tenantId === tenantId;
}
