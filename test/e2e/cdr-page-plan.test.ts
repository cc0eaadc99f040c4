import "reflect-metadata";
import type { Logger } from "typeorm";
import { requireReal } from "../support/env";
import { createExtension, createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { QUIET } from "../support/sql-counter";

/**
 * The CDR page (the 50 newest CDRs of one extension since a date) is the busiest read of a PBX
 * portal, over the biggest table. Its plan must stay a newest-first walk of the extension's index,
 * partition by partition, that stops after the page: months before `from` pruned, nothing sorted
 * (a sort reads every CDR of the extension in the window first), and no other table read than the
 * one primary-key probe that proves the extension is the tenant's. The statement checked is the one
 * the server sends (recorded with its parameters), planned as the server's named statements are
 * after their fifth run: generically.
 */
const real = requireReal("postgres");
const suite = real ? describe : describe.skip;

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Rows"?: number;
  "Subplans Removed"?: number;
  Plans?: PlanNode[];
}

const DOCUMENT = `query CdrPage($tenantId: ID!, $extensionId: ID!, $since: DateTime!) {
  cdrs(tenantId: $tenantId, filter: { extensionId: $extensionId, from: $since }, first: 50) {
    nodes { id callId direction startedAt endedAt durationSeconds disposition }
  }
}`;

const DAY = 86_400_000;
let ts: TestServer;
let tenantId: string;
let extensionId: string;

function nodesOf(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodesOf)];
}

suite("the CDR page's statement plan (real PostgreSQL)", () => {
  beforeAll(async () => {
    ts = await startTestServer({ env: QUIET });
    tenantId = (await createTenant(ts)).id;
    const busy = await createExtension(ts, tenantId);
    const other = await createExtension(ts, tenantId);
    extensionId = busy.id;
    // 600 calls of the busy extension over the last 80 days (three or four monthly partitions),
    // as many of another extension of the tenant, then the statistics the planner works from.
    await ts.server.db.dataSource.query(
      `INSERT INTO cdr (tenant_id, call_id, extension_id, extension_number, direction, started_at, ended_at, duration_seconds, billable_seconds, disposition)
       SELECT $1, 'plan-' || x.id || '-' || g, x.id, x.n, 'inbound', now() - make_interval(secs => g * 11520), now() - make_interval(secs => g * 11520 - 30), 30, 0, 'no_answer'
         FROM generate_series(1, 600) AS g, (VALUES ($2::int, '1'), ($3::int, '2')) AS x(id, n)`,
      [Number(tenantId), Number(busy.id), Number(other.id)],
    );
    await ts.server.db.dataSource.query(`ANALYZE cdr`);
  });
  afterAll(() => ts?.stop());

  it("walks the extension's index newest first, prunes older months, sorts nothing, reads no other table", async () => {
    const since = new Date(Date.now() - 40 * DAY).toISOString();
    const dataSource = ts.server.db.dataSource;
    const original = dataSource.logger;
    const recorded: Array<{ sql: string; parameters: unknown[] }> = [];
    const recording: Logger = Object.create(original);
    recording.logQuery = (sql, parameters, queryRunner) => {
      recorded.push({ sql, parameters: (parameters as unknown[] | undefined) ?? [] });
      return original.logQuery(sql, parameters, queryRunner);
    };
    dataSource.logger = recording;
    let body: { data?: { cdrs: { nodes: Array<{ id: string; startedAt: string }> } }; errors?: unknown };
    try {
      const res = await ts.http("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: DOCUMENT, variables: { tenantId, extensionId, since } }),
      });
      body = (await res.json()) as typeof body;
    } finally {
      dataSource.logger = original;
    }
    expect(body.errors).toBeUndefined();
    const nodes = body.data!.cdrs.nodes;
    expect(nodes).toHaveLength(50);
    expect(nodes.map((n) => n.startedAt)).toEqual([...nodes.map((n) => n.startedAt)].sort().reverse());

    const statement = recorded.filter((r) => /\bFROM cdr c\b/.test(r.sql));
    expect(statement).toHaveLength(1);
    const { sql, parameters } = statement[0];
    const literal = (v: unknown) => `'${String(v).replace(/'/g, "''")}'`;
    const runner = dataSource.createQueryRunner();
    await runner.connect();
    let plan: PlanNode;
    try {
      await runner.query(`SET plan_cache_mode = force_generic_plan`);
      await runner.query(`PREPARE pbx_cdr_page_plan AS ${sql}`);
      const [row] = (await runner.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE pbx_cdr_page_plan(${parameters.map(literal).join(", ")})`)) as Array<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>;
      plan = row["QUERY PLAN"][0].Plan;
      await runner.query(`DEALLOCATE pbx_cdr_page_plan`);
      await runner.query(`RESET plan_cache_mode`);
    } finally {
      await runner.release();
    }
    const all = nodesOf(plan);
    const shown = JSON.stringify(plan, null, 1);
    // Nothing sorted: the index gives the order, so only the page's rows are read.
    expect(all.filter((n) => n["Node Type"].includes("Sort")).map((n) => n["Node Type"])).toEqual([]);
    // Every partition read is a walk of the extension's (extension_id, started_at DESC, id DESC) index.
    const cdrScans = all.filter((n) => n["Relation Name"]?.startsWith("cdr_p"));
    expect(cdrScans.length).toBeGreaterThan(0);
    for (const scan of cdrScans) {
      expect({ type: scan["Node Type"], index: scan["Index Name"] }).toEqual({ type: "Index Scan", index: expect.stringMatching(/extension_id_started_at_id/) });
    }
    // The months before `from` are pruned when the statement starts.
    const removed = all.reduce((n, node) => n + (node["Subplans Removed"] ?? 0), 0);
    if (removed === 0) throw new Error(`no partition pruned:\n${shown}`);
    // The walk stops after the page: about 50 rows of the ~300 the window holds (plus at most one
    // look-ahead row per partition it enters).
    const read = cdrScans.reduce((n, scan) => n + (scan["Actual Rows"] ?? 0), 0);
    expect(read).toBeLessThanOrEqual(50 + cdrScans.length);
    // The only other table is the extension, probed by its key to prove the tenant owns it.
    const others = [...new Set(all.map((n) => n["Relation Name"]).filter((r): r is string => !!r && !r.startsWith("cdr_p")))];
    expect(others).toEqual(["extension"]);
  });
});
