import { randomBytes } from "node:crypto";
import {
  CreateApiKeyDocument,
  CreateExtensionDocument,
  CreateTenantDocument,
  type CreateExtensionInput,
  type CreateTenantInput,
  type Role,
} from "../graphql/generated";
import type { TestServer } from "./server";

let seq = 0;
export const uniq = (): string => `${Date.now().toString(36)}${(++seq).toString(36)}${randomBytes(2).toString("hex")}`;

export async function createTenant(ts: TestServer, input: Partial<CreateTenantInput> = {}) {
  const u = uniq();
  const { createTenant } = await ts.ok(CreateTenantDocument, {
    input: { name: `Tenant ${u}`, slug: `t-${u}`, sipDomain: `${u}.pbx.test`, maxExtensions: 50, ...input },
  });
  return createTenant;
}

let number = 1000;
export const nextNumber = (): string => String(++number);

export async function createExtension(ts: TestServer, tenantId: string, input: Partial<CreateExtensionInput> = {}, key?: string) {
  const { createExtension } = await ts.ok(
    CreateExtensionDocument,
    { input: { tenantId, extensionNumber: nextNumber(), secret: "s3cur3p@ss-long", ...input } },
    key,
  );
  return createExtension;
}

export async function createKey(ts: TestServer, role: Role, tenantId: string | null): Promise<string> {
  const { createApiKey } = await ts.ok(CreateApiKeyDocument, { input: { name: `${role} ${uniq()}`, role, tenantId } });
  return createApiKey.key;
}

/** A tenant with a TENANT_ADMIN key and a VIEWER key of its own. */
export async function tenantWithKeys(ts: TestServer, input: Partial<CreateTenantInput> = {}) {
  const tenant = await createTenant(ts, input);
  const [adminKey, viewerKey] = await Promise.all([createKey(ts, "TENANT_ADMIN", tenant.id), createKey(ts, "VIEWER", tenant.id)]);
  return { tenant, adminKey, viewerKey };
}
