import "reflect-metadata";
import { print } from "graphql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import {
  AddQueueAgentDocument,
  CompiledCountsOnlyDocument,
  CompiledRootReadsDocument,
  CompiledTenantReadDocument,
  CreateQueueDocument,
  NestedReadDocument,
  TenantCdrStatsDocument,
  UpdateTenantDocument,
} from "../graphql/generated";
import { createExtension, createKey, createTenant, tenantWithKeys, uniq } from "../support/factories";
import { startTestServer, type GraphQLResponse, type TestServer } from "../support/server";
import { QUIET, recordStatements } from "../support/sql-counter";

/**
 * Compiled reads (src/graphql/compiled-reads.ts) answer a plannable document with one statement
 * that builds the JSON in PostgreSQL. They must answer exactly what the resolvers answer: every
 * document here is sent twice, once as plain JSON (compiled) and once with
 * `Accept: application/graphql-response+json`, which the compiled path leaves to Apollo and its
 * resolvers; the parsed bodies must be equal, errors included.
 */
let ts: TestServer;
let tenantId: string;
let otherTenantId: string;
let extensionIds: string[];

const DAY = 86_400_000;
const from = new Date(Date.now() - 10 * DAY).toISOString();
const to = new Date(Date.now() + DAY).toISOString();

async function post<TData, TVars>(doc: TypedDocumentNode<TData, TVars>, variables: TVars, accept: string, key = ts.adminKey): Promise<{ status: number; body: GraphQLResponse<TData> }> {
  const res = await ts.http("/graphql", {
    method: "POST",
    key,
    headers: { "content-type": "application/json", accept },
    body: JSON.stringify({ query: print(doc), variables }),
  });
  return { status: res.status, body: (await res.json()) as GraphQLResponse<TData> };
}

/** The compiled answer, after checking it equals the resolvers' answer. */
async function bothPaths<TData, TVars>(doc: TypedDocumentNode<TData, TVars>, variables: TVars, key?: string): Promise<GraphQLResponse<TData>> {
  const compiled = await post(doc, variables, "application/json", key);
  const resolved = await post(doc, variables, "application/graphql-response+json", key);
  expect(compiled.body).toEqual(resolved.body);
  return compiled.body;
}

beforeAll(async () => {
  // Background passes (expiry, event relay, webhook dispatch) would add their statements to the counts.
  ts = await startTestServer({ env: QUIET });
  const tenant = await createTenant(ts, { maxExtensions: 10, timezone: "Asia/Kolkata" });
  tenantId = tenant.id;
  otherTenantId = (await createTenant(ts)).id;
  const { createQueue } = await ts.ok(CreateQueueDocument, { input: { tenantId, name: `Sales ${uniq()}`, number: "800" } });
  const extensions = [];
  for (let i = 0; i < 4; i++) {
    extensions.push(await createExtension(ts, tenantId, { displayName: i % 2 ? `Desk "${i}" ünïcode` : null, email: i === 0 ? `e${i}@x.test` : null }));
  }
  extensionIds = extensions.map((e) => e.id);
  await ts.ok(AddQueueAgentDocument, { queueId: createQueue.id, extensionId: extensionIds[1], penalty: 3 });
  const db = ts.server.db.dataSource;
  await db.query(
    `INSERT INTO device (tenant_id, extension_id, contact_uri, user_agent, source_address, transport, registered_at, expires_at, unregistered_at)
     SELECT e.tenant_id, e.id, 'sip:' || e.extension_number || '@10.0.0.' || n, CASE WHEN n = 1 THEN 'Phone/1.0' END, '10.0.0.1:5060',
            CASE WHEN n = 1 THEN 'udp' END, now() - make_interval(secs => n * 3600 + 0.123456),
            now() + interval '1 hour', CASE WHEN n = 2 THEN now() END
       FROM extension e CROSS JOIN generate_series(1, 2) AS n WHERE e.tenant_id = $1 AND e.id <> $2`,
    [Number(tenantId), Number(extensionIds[3])],
  );
  // Three days of calls, around local midnight in Kolkata (18:30 UTC), with microsecond starts.
  await db.query(
    `INSERT INTO cdr (tenant_id, call_id, extension_id, extension_number, direction, started_at, answered_at, ended_at, duration_seconds, billable_seconds, disposition)
     SELECT $1, 'c-' || g, $2, '1', 'inbound', s, CASE WHEN g % 3 <> 0 THEN s END, s + make_interval(secs => 10 + g), 10 + g, CASE WHEN g % 3 <> 0 THEN 5 ELSE 0 END,
            CASE WHEN g % 3 <> 0 THEN 'answered' ELSE 'no_answer' END
       FROM generate_series(1, 9) AS g, LATERAL (SELECT date_trunc('day', now() - make_interval(days => g % 3 + 1)) + interval '18 hours 29 minutes' + make_interval(secs => g * 30 + 0.000321) AS s) x`,
    [Number(tenantId), Number(extensionIds[0])],
  );
});
afterAll(() => ts?.stop());

describe("compiled reads answer exactly what the resolvers answer", () => {
  it("plans the nested read into one statement", async () => {
    const { result, statements } = await recordStatements(ts.server.db.dataSource, () => ts.ok(NestedReadDocument, { id: tenantId }));
    expect(statements).toHaveLength(1);
    expect(result.tenant.extensions.nodes).toHaveLength(4);
    await bothPaths(NestedReadDocument, { id: tenantId });
  });

  it("every plannable field, alias and __typename, pages and search", async () => {
    const planned = await recordStatements(ts.server.db.dataSource, () => ts.ok(CompiledRootReadsDocument, { tenantId, first: 5 }));
    expect(planned.statements).toHaveLength(1);
    const all = await bothPaths(CompiledTenantReadDocument, { id: tenantId, first: 10, from, to });
    const tenant = all.data!.tenant;
    expect(tenant.extensions.totalCount).toBe(4);
    expect(tenant.stats.reduce((n, b) => n + b.calls, 0)).toBe(9);
    expect(tenant.extensions.nodes[1].memberships[0].penalty).toBe(3);
    const page = await bothPaths(CompiledTenantReadDocument, { id: tenantId, first: 2, search: "ünï", from, to });
    expect(page.data!.tenant.extensions.nodes.map((n) => n.id)).toEqual([extensionIds[1], extensionIds[3]]);
    await bothPaths(CompiledRootReadsDocument, { tenantId, first: 5, filter: { extensionId: extensionIds[0], from } });
    await bothPaths(CompiledRootReadsDocument, { tenantId, status: "DISABLED", first: 0 });
  });

  it("a connection asked only for its count or its __typename (no page bound, nothing unused)", async () => {
    const counts = await bothPaths(CompiledCountsOnlyDocument, { tenantId, search: "ünï", first: 1 });
    expect(counts.data).toEqual({ extensions: { totalCount: 2 }, cdrs: { totalCount: 9 }, kinds: { __typename: "CdrConnection" } });
    // The connection is still usable afterwards (on the embedded default an unused parameter used to drop it).
    expect((await ts.ok(CompiledRootReadsDocument, { tenantId, first: 1 })).extensions.totalCount).toBe(4);
  });

  it("refusals keep their codes: other tenant, bad arguments, no key, bad variables", async () => {
    const { adminKey } = await tenantWithKeys(ts);
    const foreign = await bothPaths(NestedReadDocument, { id: tenantId }, adminKey);
    expect(foreign.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    const rootForeign = await bothPaths(CompiledRootReadsDocument, { tenantId, first: 5 }, adminKey);
    expect(rootForeign.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    const missing = await bothPaths(NestedReadDocument, { id: "2147483000" });
    expect(missing.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    const tooMany = await bothPaths(CompiledTenantReadDocument, { id: tenantId, first: 101, from, to });
    expect(tooMany.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
    const badCursor = await bothPaths(CompiledTenantReadDocument, { id: tenantId, after: "nope", from, to });
    expect(badCursor.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
    const foreignExtension = await bothPaths(CompiledRootReadsDocument, { tenantId: otherTenantId, filter: { extensionId: extensionIds[0] } });
    expect(foreignExtension.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    const anonymous = await post(NestedReadDocument, { id: tenantId }, "application/json", "");
    expect(anonymous.body.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
    const badVariable = await post(NestedReadDocument, { id: null as unknown as string }, "application/json");
    expect(badVariable.status).toBe(400);
    expect(badVariable.body.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("the same document and variables from callers of other scopes: each judged for its own caller", async () => {
    // The route keeps a request's statement per caller scope and variables (compiled-reads.route.ts):
    // an ADMIN's statement must never answer another caller of the same variables.
    const variables = { tenantId, first: 3, filter: { extensionId: extensionIds[0] } };
    const admin = await bothPaths(CompiledRootReadsDocument, variables);
    expect(admin.data?.cdrs.nodes).toHaveLength(3);
    const viewer = await bothPaths(CompiledRootReadsDocument, variables, await createKey(ts, "VIEWER", tenantId));
    expect(viewer).toEqual(admin);
    const foreign = await bothPaths(CompiledRootReadsDocument, variables, (await tenantWithKeys(ts)).viewerKey);
    expect(foreign.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    const anonymous = await post(CompiledRootReadsDocument, variables, "application/json", "");
    expect(anonymous.body.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
    const ingest = await bothPaths(CompiledRootReadsDocument, variables, await createKey(ts, "INGEST", null));
    expect(ingest.errors?.[0].extensions?.code).toBe("FORBIDDEN");
    // And the ADMIN, asking again, still gets the rows.
    expect(await bothPaths(CompiledRootReadsDocument, variables)).toEqual(admin);
  });

  it("answers concurrent reads of several tenants each with its own rows", async () => {
    const viewer = await createKey(ts, "VIEWER", tenantId);
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => post(NestedReadDocument, { id: i % 2 ? tenantId : otherTenantId }, "application/json", i % 3 ? ts.adminKey : viewer)));
    answers.forEach((answer, i) => {
      if (i % 3 === 0 && i % 2 === 0) expect(answer.body.errors?.[0].extensions?.code).toBe("NOT_FOUND");
      else expect(answer.body.data?.tenant.id).toBe(i % 2 ? tenantId : otherTenantId);
    });
  });
});

describe("Tenant.cdrStats", () => {
  it("counts per day in the tenant's time zone, and follows a time zone change", async () => {
    const { data } = await bothPaths(TenantCdrStatsDocument, { id: tenantId, from, to });
    const stats = data!.tenant.cdrStats;
    // The calls start from 18:29:30 UTC (23:59:30 in Kolkata): some fall on the next local day.
    expect(stats.reduce((n, b) => n + b.calls, 0)).toBe(9);
    expect(stats.every((b) => /^\d{4}-\d{2}-\d{2}$/.test(b.day) && b.periodStart.endsWith("T18:30:00.000Z"))).toBe(true);
    expect(stats.map((b) => b.day)).toEqual([...stats.map((b) => b.day)].sort());
    for (const b of stats) expect(b.answered).toBeLessThanOrEqual(b.calls);
    const answered = stats.filter((b) => b.answered > 0);
    expect(answered.every((b) => typeof b.averageAnsweredSeconds === "number")).toBe(true);
    expect(stats.filter((b) => b.answered === 0).every((b) => b.averageAnsweredSeconds === null)).toBe(true);

    await ts.ok(UpdateTenantDocument, { id: tenantId, input: { timezone: "UTC" } });
    const utc = (await bothPaths(TenantCdrStatsDocument, { id: tenantId, from, to })).data!.tenant.cdrStats;
    expect(utc.every((b) => b.periodStart.endsWith("T00:00:00.000Z"))).toBe(true);
    expect(utc.reduce((n, b) => n + b.calls, 0)).toBe(9);
    expect(utc.map((b) => b.day)).not.toEqual(stats.map((b) => b.day));
    await ts.ok(UpdateTenantDocument, { id: tenantId, input: { timezone: "Asia/Kolkata" } });
  });

  it("is empty outside the calls, refuses a reversed or too long range, and another tenant's", async () => {
    const empty = await bothPaths(TenantCdrStatsDocument, { id: tenantId, from: to, to: new Date(Date.parse(to) + DAY).toISOString() });
    expect(empty.data!.tenant.cdrStats).toEqual([]);
    const reversed = await bothPaths(TenantCdrStatsDocument, { id: tenantId, from: to, to: from });
    expect(reversed.errors?.[0].extensions).toMatchObject({ code: "BAD_USER_INPUT", fields: { to: ["The to date must not be before the from date."] } });
    const long = await bothPaths(TenantCdrStatsDocument, { id: tenantId, from: "2020-01-01T00:00:00Z", to: "2021-01-02T00:00:00Z" });
    expect(long.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
    const { adminKey } = await tenantWithKeys(ts);
    const foreign = await bothPaths(TenantCdrStatsDocument, { id: tenantId, from, to }, adminKey);
    expect(foreign.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    const other = await bothPaths(TenantCdrStatsDocument, { id: otherTenantId, from, to });
    expect(other.data!.tenant.cdrStats).toEqual([]);
  });
});
