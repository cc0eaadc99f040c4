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
 * under the walk's Limit (a sort reads every CDR of the extension in the window first), and no other
 * table read than the one key probe of the parent or the extension. Both ways to the page are
 * checked: the compiled read, and the resolvers' statement (CdrService.fetchPages) that answers a
 * document the planner does not compile. The statement checked is the one the server sends
 * (recorded with its parameters), planned as the server's named statements are after their fifth
 * run: generically.
 */
const real = requireReal("postgres");
const suite = real ? describe : describe.skip;

interface Connection {
  nodes: Array<{ id: string; startedAt: string }>;
}

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Rows"?: number;
  "Subplans Removed"?: number;
  Plans?: PlanNode[];
}

const NODES = `nodes { id callId direction startedAt endedAt durationSeconds disposition }`;
/** The compiled read (one statement building the JSON, served ahead of Express). */
const COMPILED = `query CdrPage($tenantId: ID!, $extensionId: ID!, $since: DateTime!) {
  cdrs(tenantId: $tenantId, filter: { extensionId: $extensionId, from: $since }, first: 50) { ${NODES} }
}`;
/** The same page through the resolvers (CdrService.fetchPages): pageInfo is not compiled. */
const RESOLVED = `query CdrPage($tenantId: ID!, $extensionId: ID!, $since: DateTime!) {
  cdrs(tenantId: $tenantId, filter: { extensionId: $extensionId, from: $since }, first: 50) { ${NODES} pageInfo { hasNextPage endCursor } }
}`;
/** Extension.cdrs: the resolvers' other way to one extension's page. */
const NESTED = `query CdrPage($extensionId: ID!, $since: DateTime!) {
  extension(id: $extensionId) { cdrs(filter: { from: $since }, first: 50) { ${NODES} pageInfo { hasNextPage endCursor } } }
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

  /** Sends a document; returns the page's nodes and the one statement that read cdr, with its parameters. */
  async function pageStatement(document: string, variables: Record<string, string>) {
    const dataSource = ts.server.db.dataSource;
    const original = dataSource.logger;
    const recorded: Array<{ sql: string; parameters: unknown[] }> = [];
    const recording: Logger = Object.create(original);
    recording.logQuery = (sql, parameters, queryRunner) => {
      recorded.push({ sql, parameters: (parameters as unknown[] | undefined) ?? [] });
      return original.logQuery(sql, parameters, queryRunner);
    };
    dataSource.logger = recording;
    let body: { data?: Record<string, unknown>; errors?: unknown };
    try {
      const res = await ts.http("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: document, variables }),
      });
      body = (await res.json()) as typeof body;
    } finally {
      dataSource.logger = original;
    }
    expect(body.errors).toBeUndefined();
    const data = body.data as { cdrs?: Connection; extension?: { cdrs: Connection } };
    const nodes = (data.cdrs ?? data.extension!.cdrs).nodes;
    expect(nodes).toHaveLength(50);
    expect(nodes.map((n) => n.startedAt)).toEqual([...nodes.map((n) => n.startedAt)].sort().reverse());
    const statement = recorded.filter((r) => /\bFROM cdr c\b/.test(r.sql));
    expect(statement).toHaveLength(1);
    return statement[0];
  }

  /** EXPLAIN (ANALYZE) of a statement the server sent, as a named statement after its fifth run: generic. */
  async function genericPlan({ sql, parameters }: { sql: string; parameters: unknown[] }): Promise<PlanNode> {
    const literal = (v: unknown) => (Array.isArray(v) ? `'{${v.join(",")}}'` : `'${String(v).replace(/'/g, "''")}'`);
    const runner = ts.server.db.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.query(`SET plan_cache_mode = force_generic_plan`);
      await runner.query(`PREPARE pbx_cdr_page_plan AS ${sql}`);
      const [row] = (await runner.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE pbx_cdr_page_plan(${parameters.map(literal).join(", ")})`)) as Array<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>;
      await runner.query(`DEALLOCATE pbx_cdr_page_plan`);
      await runner.query(`RESET plan_cache_mode`);
      return row["QUERY PLAN"][0].Plan;
    } finally {
      await runner.release();
    }
  }

  /**
   * The page's walk: under the Limit that ends it, nothing sorted (a sort reads every CDR of the
   * extension in the window first) and every partition read by the extension's index; the months
   * before `from` pruned at start; about 50 rows read of the ~300 the window holds (plus at most one
   * look-ahead row per partition entered); no table read but cdr and `others`.
   */
  function expectExtensionWalk(plan: PlanNode, others: string[]): void {
    const all = nodesOf(plan);
    const shown = JSON.stringify(plan, null, 1);
    const limits = all.filter((n) => n["Node Type"] === "Limit" && nodesOf(n).some((m) => m["Relation Name"]?.startsWith("cdr_p")));
    expect(limits).toHaveLength(1);
    expect(nodesOf(limits[0]).filter((n) => n["Node Type"].includes("Sort")).map((n) => n["Node Type"])).toEqual([]);
    const cdrScans = all.filter((n) => n["Relation Name"]?.startsWith("cdr_p"));
    expect(cdrScans.length).toBeGreaterThan(0);
    for (const scan of cdrScans) {
      expect({ type: scan["Node Type"], index: scan["Index Name"] }).toEqual({ type: "Index Scan", index: expect.stringMatching(/extension_id_started_at_id/) });
    }
    const removed = all.reduce((n, node) => n + (node["Subplans Removed"] ?? 0), 0);
    if (removed === 0) throw new Error(`no partition pruned:\n${shown}`);
    const read = cdrScans.reduce((n, scan) => n + (scan["Actual Rows"] ?? 0), 0);
    expect(read).toBeLessThanOrEqual(51 + cdrScans.length);
    expect([...new Set(all.map((n) => n["Relation Name"]).filter((r): r is string => !!r && !r.startsWith("cdr_p")))]).toEqual(others);
  }

  const since = () => new Date(Date.now() - 40 * DAY).toISOString();

  it("compiled: walks the extension's index newest first, prunes older months, sorts nothing, reads no other table", async () => {
    const plan = await genericPlan(await pageStatement(COMPILED, { tenantId, extensionId, since: since() }));
    // Not even the page's 50 rows: json_agg takes them in the walk's order.
    expect(nodesOf(plan).filter((n) => n["Node Type"].includes("Sort")).map((n) => n["Node Type"])).toEqual([]);
    // The only other table is the extension, probed by its key to prove the tenant owns it.
    expectExtensionWalk(plan, ["extension"]);
  });

  it("resolvers, Query.cdrs with an extension: the same walk, the tenant checked on the page's rows", async () => {
    const statement = await pageStatement(RESOLVED, { tenantId, extensionId, since: since() });
    expect(statement.sql).toMatch(/LEFT JOIN LATERAL/);
    expectExtensionWalk(await genericPlan(statement), ["tenant"]);
  });

  it("resolvers, Extension.cdrs: the same walk", async () => {
    const statement = await pageStatement(NESTED, { extensionId, since: since() });
    expect(statement.sql).toMatch(/LEFT JOIN LATERAL/);
    expectExtensionWalk(await genericPlan(statement), ["extension"]);
  });
});
