import type { DataSource, EntityManager } from "typeorm";
import type { Logger } from "../../common/logger";
import { Periodic } from "../../common/periodic";

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

/** Runs partition maintenance at server start (start() resolves after it) and then daily, for as long as the server runs. */
export class CdrPartitionMaintainer {
  private readonly periodic: Periodic;

  constructor(dataSource: DataSource, retentionMonths: number, log: Logger) {
    this.periodic = new Periodic("cdr partition maintenance", DAY_MS, async () => {
      const result = await maintainCdrPartitions(dataSource, { now: new Date(), retentionMonths });
      if (result.created || result.dropped.length) log.info({ ...result, retentionMonths }, "cdr partitions maintained");
    }, log);
  }

  start(): Promise<void> {
    return this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
