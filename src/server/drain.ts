/**
 * The shutdown's clock, for work that can stop part-way. From SIGTERM the server has
 * SHUTDOWN_GRACE_MS to finish the requests in flight before it cuts their connections. Work made of
 * steps (an array of events, applied many per transaction) asks `mayContinue` before each step with
 * the time its longest step took so far, and stops when another one might not end, with time left
 * to answer, before the deadline.
 */
export class Drain {
  private deadline: number | undefined;
  /** Kept at the end of the grace for writing the answer. */
  private readonly answerMs: number;

  constructor(private readonly graceMs: number) {
    this.answerMs = Math.min(250, Math.floor(graceMs / 10));
  }

  /** The shutdown has begun; idempotent. */
  begin(): void {
    this.deadline ??= Date.now() + this.graceMs;
  }

  /** Whether a step like the longest so far (`stepMs`, with room for it to take twice as long) still fits. */
  mayContinue(stepMs: number): boolean {
    return this.deadline === undefined || Date.now() + 2 * stepMs + this.answerMs < this.deadline;
  }
}
