import type { DataSource, EntityManager } from "typeorm";
import type { Logger } from "../../common/logger";

/** Months kept ready before the current one (late, replayed events) and after it (the clock moving on). */
export const PARTITION_MONTHS_BACK = 3;
export const PARTITION_MONTHS_AHEAD = 3;
const DAY_MS = 24 * 60 * 60 * 1000;
const PARTITION_NAME = /^cdr_p(\d{4})(\d{2})$/;

export interface PartitionPlan {
  now: Date;
  /** Drop months that ended more than this many whole months before the current one; 0 keeps everything. */
  retentionMonths: number;
  monthsBack?: number;
  monthsAhead?: number;
}

export interface PartitionResult {
  created: number;
  dropped: string[];
}

/** The first instant of the month `offset` months from the month of `date`, in UTC (partition bounds are UTC). */
function monthStart(date: Date, offset: number): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + offset, 1));
}

const isoDate = (date: Date) => date.toISOString().slice(0, 10);

/**
 * Creates the month partitions of `cdr` from monthsBack before `now` through monthsAhead after it,
 * then, with a retention, drops whole partitions that lie entirely before the cut-off: deleting a
 * month of CDRs is a DROP TABLE, not millions of row deletions. Months inside the retention are
 * never created only to be dropped again.
 */
export async function maintainCdrPartitions(db: DataSource | EntityManager, plan: PartitionPlan): Promise<PartitionResult> {
  const back = plan.retentionMonths > 0 ? Math.min(plan.monthsBack ?? PARTITION_MONTHS_BACK, plan.retentionMonths) : (plan.monthsBack ?? PARTITION_MONTHS_BACK);
  const [{ created }] = await db.query(`SELECT pbx_ensure_cdr_partitions($1::date, $2::date) AS created`, [
    isoDate(monthStart(plan.now, -back)),
    isoDate(monthStart(plan.now, plan.monthsAhead ?? PARTITION_MONTHS_AHEAD)),
  ]);
  const dropped: string[] = [];
  if (plan.retentionMonths > 0) {
    const cutoff = monthStart(plan.now, -plan.retentionMonths).getTime();
    const partitions: Array<{ name: string }> = await db.query(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'cdr'::regclass ORDER BY c.relname`,
    );
    for (const { name } of partitions) {
      const match = PARTITION_NAME.exec(name);
      if (!match) continue;
      const end = Date.UTC(Number(match[1]), Number(match[2]), 1);
      if (end > cutoff) continue;
      await db.query(`DROP TABLE IF EXISTS "${name}"`);
      dropped.push(name);
    }
  }
  return { created: Number(created), dropped };
}

/** Runs partition maintenance at server start and then daily, for as long as the server runs. */
export class CdrPartitionMaintainer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly retentionMonths: number,
    private readonly log: Logger,
  ) {}

  /** Runs once now (waiting for it), then every day; the timer never keeps the process alive. */
  async start(): Promise<void> {
    await this.runOnce();
    this.timer = setInterval(() => void this.runOnce(), DAY_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Failures are logged, never thrown: the API keeps serving, and the next run tries again. */
  runOnce(now: Date = new Date()): Promise<void> {
    this.running ??= (async () => {
      try {
        const result = await maintainCdrPartitions(this.dataSource, { now, retentionMonths: this.retentionMonths });
        if (result.created || result.dropped.length) this.log.info({ ...result, retentionMonths: this.retentionMonths }, "cdr partitions maintained");
      } catch (error) {
        this.log.error({ err: error }, "cdr partition maintenance failed");
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
