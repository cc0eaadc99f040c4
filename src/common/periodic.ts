import type { Logger } from "./logger";

/**
 * Background work on a timer: one run at a time, failures logged (never thrown, so the API keeps
 * serving and the next run tries again), a timer that never keeps the process alive, and a stop
 * that waits for the run in progress.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly what: string,
    private readonly everyMs: number,
    private readonly work: () => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** Starts the timer, and runs once at once (the returned promise settles after that run). */
  start(): Promise<void> {
    this.timer = setInterval(() => void this.runOnce(), this.everyMs);
    this.timer.unref();
    return this.runOnce();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  runOnce(): Promise<void> {
    this.running ??= this.work()
      .catch((error: unknown) => this.log.error({ err: error }, `${this.what} failed`))
      .finally(() => (this.running = undefined));
    return this.running;
  }
}
