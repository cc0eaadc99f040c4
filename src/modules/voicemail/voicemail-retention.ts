import { Role } from "../../auth/role";
import type { Logger } from "../../common/logger";
import { Periodic } from "../../common/periodic";
import { buildContext, type ContextDeps } from "../../context/build-context";

/**
 * VOICEMAIL_RETENTION_DAYS: a periodic sweep deleting messages received longer ago, with the DELETED
 * event (and summary) a delete sends. Several instances may sweep at once: the due rows are taken
 * with FOR UPDATE SKIP LOCKED, so each message is deleted and announced exactly once. Null when
 * messages are kept (0 days).
 */
export function voicemailRetention(deps: ContextDeps, log: Logger, days: number, everyMs: number): Periodic | null {
  if (days <= 0) return null;
  return new Periodic("voicemail retention sweep", everyMs, async () => {
    const ctx = buildContext(deps, { role: Role.ADMIN, tenantId: null, apiKeyId: null }, "ingest");
    const deleted = await deps.services.voicemail.sweepRetention(ctx, days);
    if (deleted > 0) log.info({ deleted, days }, "voicemail past its retention deleted");
  }, log);
}
