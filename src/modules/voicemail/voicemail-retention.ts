import { Role } from "../../auth/role";
import type { Logger } from "../../common/logger";
import { buildContext, type ContextDeps } from "../../context/build-context";

/**
 * VOICEMAIL_RETENTION_DAYS: a periodic sweep deleting messages received longer ago, with the DELETED
 * event (and summary) a delete sends. Several instances may sweep at once: the due rows are taken
 * with FOR UPDATE SKIP LOCKED, so each message is deleted and announced exactly once.
 */
export class VoicemailRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly deps: ContextDeps,
    private readonly log: Logger,
    private readonly days: number,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.days <= 0) return;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private tick(): void {
    const ctx = buildContext(this.deps, { role: Role.ADMIN, tenantId: null, apiKeyId: null });
    this.running ??= this.deps.services.voicemail
      .sweepRetention(ctx, this.days)
      .then(
        (deleted) => void (deleted > 0 && this.log.info({ deleted, days: this.days }, "voicemail past its retention deleted")),
        (error: unknown) => this.log.error({ err: error }, "voicemail retention sweep failed"),
      )
      .finally(() => (this.running = undefined));
  }
}
