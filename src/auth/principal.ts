import { Role } from "./role";

/** Who is calling: the role and, for tenant-bound keys, the one tenant it may see. */
export interface Principal {
  role: Role;
  tenantId: number | null;
  /** The api_key row, or null for the ADMIN_API_KEY given in the environment. */
  apiKeyId: number | null;
  /** The key's name as the audit trail shows it (ADMIN_API_KEY for the environment's key). */
  name?: string | null;
}
