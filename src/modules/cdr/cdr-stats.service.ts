import { badInput } from "../../common/errors";
import type { RequestContext } from "../../context/request-context";
import { readRows } from "../../db/read";
import { CDR_STATS_MAX_DAYS, CdrStatsGroupBy, type CdrStatsArgs, type CdrStatsBucket } from "./cdr-stats.type";

/** A validated cdrStats request; plain JSON, so it is also the loader key that groups tenants asking the same. */
export interface CdrStatsQuery {
  from: string;
  to: string;
  groupBy: CdrStatsGroupBy;
}

const DAY_MS = 86_400_000;

/**
 * The day buckets of the tenant row `t` (day, calls, answered, avg), for calls in [from, to), days
 * in the tenant's time zone. The range scan reads only the covering index
 * ix_cdr__tenant_id__started_at__stats (tenant, start, disposition, duration): no heap fetch per call.
 */
export const cdrStatsOfTenantSql = (from: string, to: string) => `SELECT (c.started_at AT TIME ZONE t.timezone)::date AS day,
    count(*)::int AS calls,
    count(*) FILTER (WHERE c.disposition = 'answered')::int AS answered,
    round(avg(c.duration_seconds) FILTER (WHERE c.disposition = 'answered'), 1)::float8 AS avg
  FROM cdr c WHERE c.tenant_id = t.id AND c.started_at >= ${from}::timestamptz AND c.started_at < ${to}::timestamptz
  GROUP BY 1`;

const CDR_STATS_SQL = `SELECT t.id AS "tenantId", to_char(s.day, 'YYYY-MM-DD') AS day, (s.day::timestamp AT TIME ZONE t.timezone) AS "periodStart",
    s.calls, s.answered, s.avg AS "averageAnsweredSeconds"
  FROM tenant t CROSS JOIN LATERAL (${cdrStatsOfTenantSql("$2", "$3")}) s
  WHERE t.id = ANY($1::int[])
  ORDER BY t.id, s.day`;

export class CdrStatsService {
  /** Judges the arguments (BAD_USER_INPUT on from/to) into a CdrStatsQuery. */
  normalize(args: CdrStatsArgs): CdrStatsQuery {
    const from = args.from.getTime();
    const to = args.to.getTime();
    if (to < from) throw badInput({ to: ["The to date must not be before the from date."] });
    if (to - from > CDR_STATS_MAX_DAYS * DAY_MS) throw badInput({ to: [`The range must not exceed ${CDR_STATS_MAX_DAYS} days.`] });
    return { from: args.from.toISOString(), to: args.to.toISOString(), groupBy: args.groupBy ?? CdrStatsGroupBy.DAY };
  }

  /** The buckets of each tenant (days with at least one call, oldest first), in tenant order. */
  async forTenants(ctx: RequestContext, tenantIds: readonly number[], query: CdrStatsQuery): Promise<CdrStatsBucket[][]> {
    const rows = await readRows<CdrStatsBucket & { tenantId: number }>(ctx, CDR_STATS_SQL, [tenantIds, query.from, query.to]);
    const byTenant = new Map<number, CdrStatsBucket[]>(tenantIds.map((id) => [id, []]));
    for (const { tenantId, ...bucket } of rows) byTenant.get(tenantId)?.push(bucket);
    return tenantIds.map((id) => byTenant.get(id) ?? []);
  }
}
