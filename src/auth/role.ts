import { registerEnumType } from "type-graphql";

export enum Role {
  /** The platform operator: every tenant. */
  ADMIN = "ADMIN",
  /** One tenant, read and write. */
  TENANT_ADMIN = "TENANT_ADMIN",
  /** One tenant, read and subscribe. */
  VIEWER = "VIEWER",
  /** Posts telephony events; reads nothing. */
  INGEST = "INGEST",
}
registerEnumType(Role, { name: "Role" });

/** Roles bound to exactly one tenant. INGEST may be either platform-wide or bound to one tenant. */
export const TENANT_BOUND_ROLES: ReadonlySet<Role> = new Set([Role.TENANT_ADMIN, Role.VIEWER]);
