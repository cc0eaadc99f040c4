/**
 * The shutdown's clock, for work that can stop part-way. From SIGTERM the server has
 * SHUTDOWN_GRACE_MS to finish the requests in flight before it cuts their connections; work made of
 * steps (an array of events, applied many per transaction) asks `mayContinue()` before each step and
 * stops once the last part of the grace — kept for the step in hand and the answer — has begun.
 */
export class Drain {
  private deadline: number | undefined;
  /** The end of the grace kept for finishing the step in hand and answering. */
  private readonly reserveMs: number;

  constructor(private readonly graceMs: number) {
    this.reserveMs = Math.min(2_000, Math.floor(graceMs / 4));
  }

  /** The shutdown has begun; idempotent. */
  begin(): void {
    this.deadline ??= Date.now() + this.graceMs;
  }

  get draining(): boolean {
    return this.deadline !== undefined;
  }

  mayContinue(): boolean {
    return this.deadline === undefined || Date.now() < this.deadline - this.reserveMs;
  }
}
