import { randomBytes } from "node:crypto";
import { Role } from "../auth/role";
import type { Logger } from "../common/logger";
import { buildContext, type ContextDeps } from "../context/build-context";

/** What a phone needs to register to the one-box PBX's demo extension. */
export interface DemoPhone {
  tenantId: string;
  domain: string;
  extension: string;
  secret: string;
}

export const DEMO_SLUG = "demo";
export const DEMO_EXTENSION = "1001";

/**
 * `npm run pbx` (PBX_DEMO_DOMAIN set): a tenant "demo" with that SIP domain and extension 1001, made
 * through the services on the first start (audit and events as for any change) and only read after
 * that, so a phone configured once keeps working across restarts. The secret is generated once and
 * read back from its envelope to be printed again: it is a demo box's, meant to be typed into a phone.
 */
export async function ensureDemoPhone(deps: ContextDeps, domain: string, log: Logger): Promise<DemoPhone> {
  const ctx = buildContext(deps, { role: Role.ADMIN, tenantId: null, apiKeyId: null, name: "npm run pbx" }, "cli");
  const [tenant]: Array<{ id: number; sipDomain: string }> = await deps.dataSource.query(`SELECT id, sip_domain AS "sipDomain" FROM tenant WHERE slug = $1`, [DEMO_SLUG]);
  const tenantId = tenant?.id ?? Number((await deps.services.tenants.create(ctx, { name: "Demo", slug: DEMO_SLUG, sipDomain: domain, maxExtensions: 10 })).id);
  if (tenant && tenant.sipDomain !== domain) log.warn({ kept: tenant.sipDomain, asked: domain }, "the demo tenant exists with another SIP domain; keeping it");
  const [existing]: Array<{ id: number; secretCiphertext: string | null }> = await deps.dataSource.query(
    `SELECT id, secret_ciphertext AS "secretCiphertext" FROM extension WHERE tenant_id = $1 AND extension_number = $2`,
    [tenantId, DEMO_EXTENSION],
  );
  let secret: string;
  if (existing?.secretCiphertext) {
    secret = deps.services.credentials.openSecret(tenantId, existing.secretCiphertext);
  } else if (existing) {
    secret = await deps.services.extensions.rotateSecret(ctx, existing.id);
  } else {
    secret = randomBytes(9).toString("base64url");
    await deps.services.extensions.create(ctx, { tenantId: String(tenantId), extensionNumber: DEMO_EXTENSION, displayName: "Demo phone", secret });
  }
  return { tenantId: String(tenantId), domain: tenant?.sipDomain ?? domain, extension: DEMO_EXTENSION, secret };
}
