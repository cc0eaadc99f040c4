/**
 * Pub/sub topics. Tenant data travels on per-tenant topics, so an instance only listens where it
 * has subscribers and a tenant principal can only ever be attached to its own tenant's topics;
 * the `all` variants carry every tenant's events for ADMIN subscribers who name no tenant.
 */
export type LiveKind = "registrations" | "calls" | "queues" | "voicemail";

export const tenantTopic = (kind: LiveKind, tenantId: number): string => `tenant.${tenantId}.${kind}`;
export const allTenantsTopic = (kind: LiveKind): string => `all.${kind}`;
export const queueStatsTopic = (queueId: number): string => `queue.${queueId}.stats`;

/** Revocations reach every instance, which closes the sockets of that key at once. */
export const API_KEY_REVOKED_TOPIC = "system.api-key-revoked";
