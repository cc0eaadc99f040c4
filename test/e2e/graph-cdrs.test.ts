import "reflect-metadata";
import { ConfigError, loadConfig } from "../../src/config/config";
import { createLogger } from "../../src/common/logger";
import { CdrPartitionMaintainer, maintainCdrPartitions } from "../../src/modules/cdr/cdr-partitions";
import {
  ActiveCallsDocument,
  CdrPageDocument,
  CdrsDocument,
  DeleteExtensionDocument,
  ExtensionActiveCallsDocument,
  ExtensionCdrsDocument,
  ExtensionsDocument,
  TenantActiveCallsDocument,
  TenantCdrsDocument,
  TenantsCallGraphDocument,
  WholeTenantGraphDocument,
  type CdrFilter,
  type ExtensionCdrsQuery,
} from "../graphql/generated";
import { createExtension, createKey, createTenant, tenantWithKeys, uniq } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { QUIET, recordStatements } from "../support/sql-counter";

let ts: TestServer;
beforeAll(async () => {
  // Background passes (expiry, event relay, webhook dispatch) would add their statements to the counts.
  ts = await startTestServer({ env: QUIET });
});
afterAll(() => ts?.stop());

const db = () => ts.server.db.dataSource;
const DAY = 24 * 60 * 60 * 1000;

/** An ISO instant `daysAgo` days back, with microseconds (which a JS Date cannot hold) appended. */
function instant(daysAgo: number, micros = 0): string {
  const iso = new Date(Math.floor((Date.now() - daysAgo * DAY) / 1000) * 1000).toISOString();
  return iso.replace(".000Z", `.${String(micros).padStart(6, "0")}Z`);
}

interface CdrSeed {
  tenantId: string | number;
  extensionId?: string | number | null;
  extensionNumber: string;
  startedAt: string;
  direction?: "inbound" | "outbound" | "internal";
  disposition?: "answered" | "no_answer" | "busy" | "failed" | "voicemail";
  callerNumber?: string | null;
  calleeNumber?: string | null;
  queueId?: number | null;
  callId?: string;
}

/** CDRs are written by the telephony event path (a later issue); here they go in directly. */
async function insertCdrs(rows: CdrSeed[]): Promise<string[]> {
  const records = rows.map((r) => ({
    tenant_id: Number(r.tenantId),
    extension_id: r.extensionId === undefined || r.extensionId === null ? null : Number(r.extensionId),
    extension_number: r.extensionNumber,
    call_id: r.callId ?? `call-${uniq()}`,
    direction: r.direction ?? "inbound",
    disposition: r.disposition ?? "answered",
    caller_number: r.callerNumber ?? null,
    callee_number: r.calleeNumber ?? null,
    queue_id: r.queueId ?? null,
    started_at: r.startedAt,
  }));
  const inserted: Array<{ id: string }> = await db().query(
    `INSERT INTO cdr (tenant_id, call_id, extension_id, extension_number, direction, caller_number, callee_number, queue_id,
                      started_at, answered_at, ended_at, duration_seconds, billable_seconds, disposition)
     SELECT r.tenant_id, r.call_id, r.extension_id, r.extension_number, r.direction, r.caller_number, r.callee_number, r.queue_id,
            r.started_at, CASE WHEN r.disposition = 'answered' THEN r.started_at + interval '5 seconds' END,
            r.started_at + interval '65 seconds', 65, CASE WHEN r.disposition = 'answered' THEN 60 ELSE 0 END, r.disposition
       FROM jsonb_to_recordset($1::jsonb) AS r(tenant_id int, extension_id int, extension_number text, call_id text, direction text,
                                               disposition text, caller_number text, callee_number text, queue_id int, started_at timestamptz)
     RETURNING id`,
    [JSON.stringify(records)],
  );
  return inserted.map((r) => String(r.id));
}

async function insertActiveCall(r: { tenantId: string; extensionId: string; state?: string; queueId?: number | null; minutesAgo?: number }): Promise<string> {
  const [row]: Array<{ id: string }> = await db().query(
    `INSERT INTO active_call (tenant_id, extension_id, call_id, direction, caller_number, state, queue_id, started_at, answered_at)
     VALUES ($1, $2, $3, 'inbound', '+15550100', $4::text, $5, now() - make_interval(mins => $6), CASE WHEN $4::text <> 'ringing' THEN now() END)
     RETURNING id`,
    [Number(r.tenantId), Number(r.extensionId), `live-${uniq()}`, r.state ?? "ringing", r.queueId ?? null, r.minutesAgo ?? 1],
  );
  return String(row.id);
}

async function insertQueue(tenantId: string, name: string): Promise<number> {
  const [row]: Array<{ id: number }> = await db().query(`INSERT INTO queue (tenant_id, name, number) VALUES ($1, $2, $3) RETURNING id`, [
    Number(tenantId),
    name,
    String(7000 + Math.floor(Math.random() * 1000)),
  ]);
  return row.id;
}

/** Every page of a root `cdrs` listing, following endCursor. */
async function allPages(tenantId: string, filter: CdrFilter, first: number, key?: string): Promise<string[][]> {
  const pages: string[][] = [];
  let after: string | null = null;
  for (let i = 0; i < 100; i++) {
    const { cdrs }: { cdrs: { pageInfo: { hasNextPage: boolean; endCursor?: string | null }; nodes: Array<{ id: string }> } } = await ts.ok(
      CdrPageDocument,
      { tenantId, filter, first, after },
      key,
    );
    pages.push(cdrs.nodes.map((n) => n.id));
    if (!cdrs.pageInfo.hasNextPage) return pages;
    after = cdrs.pageInfo.endCursor ?? null;
  }
  throw new Error("paging did not end");
}

const expectBadInput = (result: { errors?: Array<{ extensions?: Record<string, unknown> }> }, field: string) => {
  expect(result.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", fields: { [field]: [expect.any(String)] } });
};

describe("CDR paging", () => {
  it("pages newest first by keyset with no duplicates and no gaps, across equal start times and microseconds", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id);
    const rows: CdrSeed[] = [];
    // Five start instants shared by five legs each, plus legs a microsecond apart.
    for (let group = 0; group < 5; group++) {
      for (let i = 0; i < 5; i++) rows.push({ tenantId: tenant.id, extensionId: ext.id, extensionNumber: ext.extensionNumber, startedAt: instant(group + 1, 500_000) });
    }
    for (let micro = 1; micro <= 3; micro++) {
      rows.push({ tenantId: tenant.id, extensionId: ext.id, extensionNumber: ext.extensionNumber, startedAt: instant(1, 500_000 + micro) });
    }
    await insertCdrs(rows);
    const expected: string[] = (
      await db().query(`SELECT id FROM cdr WHERE extension_id = $1 ORDER BY started_at DESC, id DESC`, [Number(ext.id)])
    ).map((r: { id: string }) => String(r.id));
    expect(expected).toHaveLength(28);

    for (const first of [1, 4, 7, 28, 100]) {
      const pages = await allPages(tenant.id, { extensionId: ext.id }, first);
      expect(pages.flat()).toEqual(expected);
      expect(pages.slice(0, -1).every((p) => p.length === first)).toBe(true);
    }

    // The same rows through Tenant.cdrs and Extension.cdrs, page by page.
    let after: string | null = null;
    const viaExtension: string[] = [];
    do {
      const { extension }: ExtensionCdrsQuery = await ts.ok(ExtensionCdrsDocument, { id: ext.id, first: 6, after });
      viaExtension.push(...extension!.cdrs.nodes.map((n) => n.id));
      after = extension!.cdrs.pageInfo.hasNextPage ? (extension!.cdrs.pageInfo.endCursor ?? null) : null;
      expect(extension!.cdrs.totalCount).toBe(28);
    } while (after);
    expect(viaExtension).toEqual(expected);

    const { tenant: viaTenant } = await ts.ok(TenantCdrsDocument, { id: tenant.id, first: 10 });
    expect(viaTenant.cdrs.nodes.map((n) => n.id)).toEqual(expected.slice(0, 10));
    expect(viaTenant.cdrs.pageInfo.hasNextPage).toBe(true);
    expect(viaTenant.cdrs.totalCount).toBe(28);
  });

  it("returns every field of the contract, in its enum and date form", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id);
    const queueId = await insertQueue(tenant.id, "Support");
    const startedAt = instant(2, 250_000);
    await insertCdrs([
      { tenantId: tenant.id, extensionId: ext.id, extensionNumber: ext.extensionNumber, startedAt, direction: "outbound", disposition: "no_answer", callerNumber: ext.extensionNumber, calleeNumber: "+4930123", queueId, callId: "abc-1" },
    ]);
    const { cdrs } = await ts.ok(CdrsDocument, { tenantId: tenant.id });
    expect(cdrs.totalCount).toBe(1);
    expect(cdrs.nodes[0]).toMatchObject({
      tenantId: tenant.id,
      callId: "abc-1",
      linkedId: null,
      extensionNumber: ext.extensionNumber,
      direction: "OUTBOUND",
      disposition: "NO_ANSWER",
      callerNumber: ext.extensionNumber,
      calleeNumber: "+4930123",
      startedAt: startedAt.slice(0, 23) + "Z",
      answeredAt: null,
      durationSeconds: 65,
      billableSeconds: 0,
      extension: { id: ext.id, extensionNumber: ext.extensionNumber },
      queue: { id: String(queueId), name: "Support" },
    });
    expect(cdrs.edges[0].node.id).toBe(cdrs.nodes[0].id);
  });

  it("computes totalCount only when it is asked for", async () => {
    const tenant = await createTenant(ts);
    await insertCdrs([{ tenantId: tenant.id, extensionNumber: "100", startedAt: instant(1) }]);
    const without = await recordStatements(db(), () => ts.ok(CdrPageDocument, { tenantId: tenant.id, first: 5 }));
    expect(without.statements.some((s) => /count\(\*\)/i.test(s))).toBe(false);
    const withCount = await recordStatements(db(), () => ts.ok(CdrsDocument, { tenantId: tenant.id, first: 5 }));
    expect(withCount.statements.some((s) => /count\(\*\)/i.test(s))).toBe(true);
    expect(withCount.result.cdrs.totalCount).toBe(1);
  });
});

describe("CDR filters", () => {
  /** Start instants 1 to 5 days back, fixed once so that filters compare against the stored values. */
  const day = [0, 1, 2, 3, 4, 5].map((d) => instant(d));
  const ms = (d: number) => day[d].slice(0, 23) + "Z";
  let tenantId: string;
  let alice: { id: string; extensionNumber: string };
  let bob: { id: string; extensionNumber: string };

  beforeAll(async () => {
    const tenant = await createTenant(ts);
    tenantId = tenant.id;
    alice = await createExtension(ts, tenantId);
    bob = await createExtension(ts, tenantId);
    const a = { tenantId, extensionId: alice.id, extensionNumber: alice.extensionNumber };
    const b = { tenantId, extensionId: bob.id, extensionNumber: bob.extensionNumber };
    await insertCdrs([
      { ...a, startedAt: day[1], direction: "inbound", disposition: "answered", callerNumber: "+15551111", calleeNumber: alice.extensionNumber },
      { ...a, startedAt: day[2], direction: "outbound", disposition: "busy", callerNumber: alice.extensionNumber, calleeNumber: "+15552222" },
      { ...a, startedAt: day[3], direction: "internal", disposition: "no_answer", callerNumber: alice.extensionNumber, calleeNumber: bob.extensionNumber },
      { ...b, startedAt: day[3], direction: "internal", disposition: "voicemail", callerNumber: alice.extensionNumber, calleeNumber: bob.extensionNumber },
      { ...b, startedAt: day[4], direction: "inbound", disposition: "failed", callerNumber: "+15551111", calleeNumber: "+15551111" },
      { ...b, startedAt: day[5], direction: "outbound", disposition: "answered", callerNumber: bob.extensionNumber, calleeNumber: "+15553333" },
    ]);
  });

  async function list(filter: CdrFilter) {
    const { cdrs } = await ts.ok(CdrsDocument, { tenantId, filter, first: 100 });
    expect(cdrs.totalCount).toBe(cdrs.nodes.length);
    return cdrs.nodes;
  }

  it("by start time: from inclusive, to exclusive", async () => {
    const from = new Date(Date.now() - 3.5 * DAY).toISOString();
    const to = new Date(Date.now() - 1.5 * DAY).toISOString();
    const nodes = await list({ from, to });
    expect(nodes).toHaveLength(3);
    expect(nodes.every((n) => n.startedAt >= from && n.startedAt < to)).toBe(true);
    expect(await list({ from: ms(2), to: ms(2) })).toHaveLength(0);
    expect(await list({ from: ms(2) })).toHaveLength(2);
    expect(await list({ to: ms(2) })).toHaveLength(4);
  });

  it("by extension", async () => {
    const nodes = await list({ extensionId: bob.id });
    expect(nodes).toHaveLength(3);
    expect(nodes.every((n) => n.extension?.id === bob.id)).toBe(true);
  });

  it("by direction", async () => {
    expect((await list({ direction: "INBOUND" })).map((n) => n.direction)).toEqual(["INBOUND", "INBOUND"]);
    expect(await list({ direction: "INTERNAL" })).toHaveLength(2);
    expect(await list({ direction: "OUTBOUND" })).toHaveLength(2);
  });

  it("by disposition", async () => {
    expect((await list({ disposition: "ANSWERED" })).map((n) => n.disposition)).toEqual(["ANSWERED", "ANSWERED"]);
    expect(await list({ disposition: "VOICEMAIL" })).toHaveLength(1);
    expect(await list({ disposition: "BUSY" })).toHaveLength(1);
  });

  it("by number, matching either party once, blank meaning no condition", async () => {
    const byCaller = await list({ number: "+15551111" });
    // One leg has the number on both sides and must appear once.
    expect(byCaller).toHaveLength(2);
    expect(new Set(byCaller.map((n) => n.id)).size).toBe(2);
    expect(await list({ number: "+15553333" })).toHaveLength(1);
    expect(await list({ number: alice.extensionNumber })).toHaveLength(4);
    expect(await list({ number: "+19999999" })).toHaveLength(0);
    expect(await list({ number: "  " })).toHaveLength(6);
  });

  it("combined, and paged with the filter", async () => {
    const nodes = await list({ extensionId: alice.id, number: alice.extensionNumber, direction: "OUTBOUND" });
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ disposition: "BUSY", calleeNumber: "+15552222" });
    const pages = await allPages(tenantId, { number: alice.extensionNumber }, 1);
    expect(pages.flat()).toEqual((await list({ number: alice.extensionNumber })).map((n) => n.id));
  });

  it("on Tenant.cdrs and Extension.cdrs", async () => {
    const { tenant } = await ts.ok(TenantCdrsDocument, { id: tenantId, filter: { disposition: "ANSWERED", extensionId: bob.id } });
    expect(tenant.cdrs.nodes).toHaveLength(1);
    const { extension } = await ts.ok(ExtensionCdrsDocument, { id: alice.id, filter: { direction: "INTERNAL" } });
    expect(extension.cdrs.nodes.map((n) => n.disposition)).toEqual(["NO_ANSWER"]);
    // Another extension's id on Extension.cdrs is simply one more condition.
    const other = await ts.ok(ExtensionCdrsDocument, { id: alice.id, filter: { extensionId: bob.id } });
    expect(other.extension.cdrs.nodes).toHaveLength(0);
  });
});

describe("refusals", () => {
  let tenantId: string;
  beforeAll(async () => {
    tenantId = (await createTenant(ts)).id;
    await insertCdrs([{ tenantId, extensionNumber: "100", startedAt: instant(1) }]);
  });

  it("first above 100 or below 0 is BAD_USER_INPUT", async () => {
    expectBadInput(await ts.gql(CdrsDocument, { tenantId, first: 101 }), "first");
    expectBadInput(await ts.gql(CdrsDocument, { tenantId, first: -1 }), "first");
    expectBadInput(await ts.gql(TenantCdrsDocument, { id: tenantId, first: 101 }), "first");
    const ext = await createExtension(ts, tenantId);
    expectBadInput(await ts.gql(ExtensionCdrsDocument, { id: ext.id, first: 1000 }), "first");
  });

  it("a bad cursor is BAD_USER_INPUT", async () => {
    await createExtension(ts, tenantId);
    const { extensions } = await ts.ok(ExtensionsDocument, { tenantId, first: 1 });
    const otherKindOfCursor = extensions.pageInfo.endCursor!;
    const forged = (values: unknown[]) => Buffer.from(JSON.stringify(values)).toString("base64url");
    for (const after of [
      "not-a-cursor",
      otherKindOfCursor,
      forged(["v1", "2025-02-30T10:00:00.000000Z", "1"]),
      forged(["v1", "2025-01-01T10:00:00.000000Z", "-1"]),
      forged(["v1", "2025-01-01T10:00:00.000000Z", "99999999999999999999"]),
      forged(["v2", "2025-01-01T10:00:00.000000Z", "1"]),
    ]) {
      expectBadInput(await ts.gql(CdrsDocument, { tenantId, after }), "after");
    }
    expectBadInput(await ts.gql(TenantCdrsDocument, { id: tenantId, after: "garbage" }), "after");
  });

  it("a filter with from after to, a malformed extension id or an overlong number is BAD_USER_INPUT", async () => {
    expectBadInput(await ts.gql(CdrsDocument, { tenantId, filter: { from: instant(1).slice(0, 23) + "Z", to: instant(2).slice(0, 23) + "Z" } }), "to");
    expectBadInput(await ts.gql(CdrsDocument, { tenantId, filter: { extensionId: "abc" } }), "extensionId");
    expectBadInput(await ts.gql(CdrsDocument, { tenantId, filter: { number: "1".repeat(65) } }), "number");
    const bad = await ts.gql(CdrsDocument, { tenantId, filter: { from: "yesterday" } });
    expect(bad.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("an ADMIN names the tenant (or an extension), and an unknown tenant or extension is NOT_FOUND", async () => {
    expectBadInput(await ts.gql(CdrsDocument, {}), "tenantId");
    expect((await ts.gql(CdrsDocument, { tenantId: "999999" })).errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    expect((await ts.gql(CdrsDocument, { tenantId, filter: { extensionId: "999999" } })).errors?.[0]?.extensions).toMatchObject({
      code: "NOT_FOUND",
      fields: { extensionId: [expect.any(String)] },
    });
    expect((await ts.gql(ActiveCallsDocument, { tenantId: "999999" })).errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    const ext = await createExtension(ts, tenantId);
    await insertCdrs([{ tenantId, extensionId: ext.id, extensionNumber: ext.extensionNumber, startedAt: instant(1) }]);
    const { cdrs } = await ts.ok(CdrsDocument, { filter: { extensionId: ext.id } });
    expect(cdrs.nodes.map((n) => n.extension?.id)).toEqual([ext.id]);
  });

  it("an INGEST key reads nothing and no key is UNAUTHENTICATED", async () => {
    const ingest = await createKey(ts, "INGEST", null);
    expect((await ts.gql(CdrsDocument, { tenantId }, ingest)).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect((await ts.gql(ActiveCallsDocument, { tenantId }, ingest)).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect((await ts.gql(CdrsDocument, { tenantId }, null)).errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    expect((await ts.gql(ActiveCallsDocument, { tenantId }, null)).errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("CDR_RETENTION_MONTHS must be a whole number of months", () => {
    expect(() => loadConfig({ CDR_RETENTION_MONTHS: "-1" })).toThrow(ConfigError);
    expect(() => loadConfig({ CDR_RETENTION_MONTHS: "1.5" })).toThrow(ConfigError);
    expect(loadConfig({}).cdrRetentionMonths).toBe(0);
    expect(loadConfig({ CDR_RETENTION_MONTHS: "24" }).cdrRetentionMonths).toBe(24);
  });
});

describe("deleting an extension", () => {
  it("keeps its CDRs with extension null and the number it had; its active calls go with it", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id);
    const keep = await createExtension(ts, tenant.id);
    await insertCdrs([
      { tenantId: tenant.id, extensionId: ext.id, extensionNumber: ext.extensionNumber, startedAt: instant(1) },
      { tenantId: tenant.id, extensionId: ext.id, extensionNumber: ext.extensionNumber, startedAt: instant(2) },
      { tenantId: tenant.id, extensionId: keep.id, extensionNumber: keep.extensionNumber, startedAt: instant(3) },
    ]);
    await insertActiveCall({ tenantId: tenant.id, extensionId: ext.id });
    await insertActiveCall({ tenantId: tenant.id, extensionId: keep.id });

    await ts.ok(DeleteExtensionDocument, { id: ext.id });

    const { tenant: after } = await ts.ok(TenantCdrsDocument, { id: tenant.id });
    expect(after.cdrs.totalCount).toBe(3);
    expect(after.cdrs.nodes.map((n) => [n.extensionNumber, n.extension?.id ?? null])).toEqual([
      [ext.extensionNumber, null],
      [ext.extensionNumber, null],
      [keep.extensionNumber, keep.id],
    ]);
    const { tenant: calls } = await ts.ok(TenantActiveCallsDocument, { id: tenant.id });
    expect(calls.activeCalls.map((c) => c.extension.id)).toEqual([keep.id]);
    // The deleted extension can no longer be named, but its calls stay findable by number.
    expect((await ts.gql(CdrsDocument, { tenantId: tenant.id, filter: { extensionId: ext.id } })).errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
  });

  it("keeps CDRs of a deleted queue, with queue null; an active call in it stays, with queue null", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id);
    const queueId = await insertQueue(tenant.id, "Sales");
    await insertCdrs([{ tenantId: tenant.id, extensionId: ext.id, extensionNumber: ext.extensionNumber, startedAt: instant(1), queueId }]);
    await insertActiveCall({ tenantId: tenant.id, extensionId: ext.id, queueId });
    const before = await ts.ok(ExtensionActiveCallsDocument, { id: ext.id });
    expect(before.extension.activeCalls[0].queue).toEqual({ id: String(queueId), name: "Sales" });
    await db().query(`DELETE FROM queue WHERE id = $1`, [queueId]);
    const cdrs = await ts.ok(CdrsDocument, { tenantId: tenant.id });
    expect(cdrs.cdrs.nodes[0].queue).toBeNull();
    const calls = await ts.ok(ExtensionActiveCallsDocument, { id: ext.id });
    expect(calls.extension.activeCalls).toHaveLength(1);
    expect(calls.extension.activeCalls[0].queue).toBeNull();
  });
});

describe("active calls", () => {
  it("are listed per tenant, per extension and at the root, oldest first, with extension and queue", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id);
    const other = await createExtension(ts, tenant.id);
    const queueId = await insertQueue(tenant.id, "Front desk");
    const older = await insertActiveCall({ tenantId: tenant.id, extensionId: ext.id, state: "answered", queueId, minutesAgo: 10 });
    const newer = await insertActiveCall({ tenantId: tenant.id, extensionId: other.id, state: "held", minutesAgo: 2 });

    const { activeCalls } = await ts.ok(ActiveCallsDocument, { tenantId: tenant.id });
    expect(activeCalls.map((c) => c.id)).toEqual([older, newer]);
    expect(activeCalls[0]).toMatchObject({
      tenantId: tenant.id,
      direction: "INBOUND",
      state: "ANSWERED",
      callerNumber: "+15550100",
      extension: { id: ext.id },
      queue: { id: String(queueId), name: "Front desk" },
    });
    expect(activeCalls[0].answeredAt).not.toBeNull();
    expect(activeCalls[1]).toMatchObject({ state: "HELD", queue: null, extension: { id: other.id } });

    const { tenant: viaTenant } = await ts.ok(TenantActiveCallsDocument, { id: tenant.id });
    expect(viaTenant.activeCalls.map((c) => c.id)).toEqual([older, newer]);
    const { extension } = await ts.ok(ExtensionActiveCallsDocument, { id: other.id });
    expect(extension.activeCalls.map((c) => c.id)).toEqual([newer]);

    // An ADMIN who names no tenant sees every tenant's calls.
    const all = await ts.ok(ActiveCallsDocument, {});
    expect(all.activeCalls.map((c) => c.id)).toEqual(expect.arrayContaining([older, newer]));
  });

  it("one leg per (tenant, call id, extension)", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id);
    const insert = () =>
      db().query(`INSERT INTO active_call (tenant_id, extension_id, call_id, direction, started_at) VALUES ($1, $2, 'same-leg', 'inbound', now())`, [
        Number(tenant.id),
        Number(ext.id),
      ]);
    await insert();
    await expect(insert()).rejects.toThrow(/uq_active_call__tenant_id__call_id__extension_id/);
  });

  it("cannot reference an extension of another tenant", async () => {
    const a = await createTenant(ts);
    const b = await createTenant(ts);
    const extA = await createExtension(ts, a.id);
    await expect(insertActiveCall({ tenantId: b.id, extensionId: extA.id })).rejects.toThrow(/fk_active_call__extension/);
  });
});

describe("tenant isolation", () => {
  it("another tenant's ids answer NOT_FOUND and its rows never show", async () => {
    const a = await tenantWithKeys(ts);
    const b = await tenantWithKeys(ts);
    const extA = await createExtension(ts, a.tenant.id);
    const extB = await createExtension(ts, b.tenant.id);
    await insertCdrs([
      { tenantId: a.tenant.id, extensionId: extA.id, extensionNumber: extA.extensionNumber, startedAt: instant(1), callerNumber: "+15557777" },
      { tenantId: b.tenant.id, extensionId: extB.id, extensionNumber: extB.extensionNumber, startedAt: instant(1), callerNumber: "+15557777" },
    ]);
    const callA = await insertActiveCall({ tenantId: a.tenant.id, extensionId: extA.id });
    const callB = await insertActiveCall({ tenantId: b.tenant.id, extensionId: extB.id });

    for (const key of [b.viewerKey, b.adminKey]) {
      const code = async (p: Promise<{ errors?: Array<{ extensions?: Record<string, unknown> }> }>) => (await p).errors?.[0]?.extensions?.code;
      expect(await code(ts.gql(CdrsDocument, { tenantId: a.tenant.id }, key))).toBe("NOT_FOUND");
      expect(await code(ts.gql(CdrsDocument, { filter: { extensionId: extA.id } }, key))).toBe("NOT_FOUND");
      expect(await code(ts.gql(CdrsDocument, { tenantId: b.tenant.id, filter: { extensionId: extA.id } }, key))).toBe("NOT_FOUND");
      expect(await code(ts.gql(ActiveCallsDocument, { tenantId: a.tenant.id }, key))).toBe("NOT_FOUND");
      expect(await code(ts.gql(TenantCdrsDocument, { id: a.tenant.id }, key))).toBe("NOT_FOUND");
      expect(await code(ts.gql(ExtensionCdrsDocument, { id: extA.id }, key))).toBe("NOT_FOUND");
      expect(await code(ts.gql(ExtensionActiveCallsDocument, { id: extA.id }, key))).toBe("NOT_FOUND");
      // A missing id answers exactly the same.
      expect(await ts.gql(CdrsDocument, { tenantId: a.tenant.id }, key)).toEqual(await ts.gql(CdrsDocument, { tenantId: "999999" }, key));

      const own = await ts.ok(CdrsDocument, { filter: { number: "+15557777" } }, key);
      expect(own.cdrs.nodes.map((n) => n.tenantId)).toEqual([b.tenant.id]);
      const ownCalls = await ts.ok(ActiveCallsDocument, {}, key);
      expect(ownCalls.activeCalls.map((c) => c.id)).toEqual([callB]);
      const { tenant } = await ts.ok(TenantActiveCallsDocument, { id: b.tenant.id }, key);
      expect(tenant.activeCalls.map((c) => c.id)).not.toContain(callA);
    }
  });

  it("a CDR never resolves an extension or queue of another tenant", async () => {
    const a = await createTenant(ts);
    const b = await createTenant(ts);
    const extA = await createExtension(ts, a.id);
    const queueA = await insertQueue(a.id, "A's queue");
    // A row that points across tenants (only a broken writer could make one) still shows nothing of A.
    await insertCdrs([{ tenantId: b.id, extensionId: extA.id, extensionNumber: "555", startedAt: instant(1), queueId: queueA }]);
    const { cdrs } = await ts.ok(CdrsDocument, { tenantId: b.id });
    expect(cdrs.nodes[0]).toMatchObject({ extensionNumber: "555", extension: null, queue: null });
    const { extension } = await ts.ok(ExtensionCdrsDocument, { id: extA.id });
    expect(extension.cdrs.nodes).toHaveLength(0);
  });
});

describe("the graph", () => {
  it("walks a whole tenant in one query", async () => {
    const tenant = await createTenant(ts);
    const ext = await createExtension(ts, tenant.id);
    const queueId = await insertQueue(tenant.id, "Walk");
    await insertCdrs([{ tenantId: tenant.id, extensionId: ext.id, extensionNumber: ext.extensionNumber, startedAt: instant(1), queueId }]);
    await insertActiveCall({ tenantId: tenant.id, extensionId: ext.id, queueId });
    const { tenant: graph } = await ts.ok(WholeTenantGraphDocument, { id: tenant.id, first: 10 });
    expect(graph.queues.map((q) => q.name)).toEqual(["Walk"]);
    expect(graph.activeCalls[0]).toMatchObject({ extension: { id: ext.id }, queue: { name: "Walk" } });
    expect(graph.cdrs.nodes[0]).toMatchObject({ extension: { id: ext.id }, queue: { name: "Walk" } });
    expect(graph.extensions.nodes[0]).toMatchObject({ id: ext.id, tenant: { id: tenant.id } });
    expect(graph.extensions.nodes[0].cdrs.totalCount).toBe(1);
    expect(graph.extensions.nodes[0].activeCalls).toHaveLength(1);
  });

  it("reads CDRs and active calls of every tenant and extension in a bounded number of statements", async () => {
    const populate = async () => {
      const tenant = await createTenant(ts);
      const queueId = await insertQueue(tenant.id, "Q");
      for (let i = 0; i < 3; i++) {
        const ext = await createExtension(ts, tenant.id);
        await insertCdrs([
          { tenantId: tenant.id, extensionId: ext.id, extensionNumber: ext.extensionNumber, startedAt: instant(1), queueId },
          { tenantId: tenant.id, extensionId: ext.id, extensionNumber: ext.extensionNumber, startedAt: instant(2), queueId },
        ]);
        await insertActiveCall({ tenantId: tenant.id, extensionId: ext.id, queueId });
      }
    };
    // One statement per batch point of the query: tenants; per tenant active calls, CDR page and
    // count, extensions; per extension active calls, CDR page and count; and the extension and queue
    // loaders, each reached from up to three places that resolve at different moments. On PostgreSQL
    // parallel statements may finish together and share a batch, so the count can only be lower.
    const BATCH_POINTS = 1 + 4 + 3 + 3 + 3;
    await populate();
    // The relay pass a setup commit started would otherwise add its statements to the count.
    await ts.server.services.events.settled();
    const few = await recordStatements(db(), () => ts.ok(TenantsCallGraphDocument, { first: 5 }));
    for (let i = 0; i < 10; i++) await populate();
    await ts.server.services.events.settled();
    const many = await recordStatements(db(), () => ts.ok(TenantsCallGraphDocument, { first: 5 }));
    expect(many.result.tenants.length).toBeGreaterThanOrEqual(few.result.tenants.length + 10);
    const extensionsRead = many.result.tenants.reduce((n, t) => n + t.extensions.nodes.length, 0);
    expect(extensionsRead).toBeGreaterThan(2 * BATCH_POINTS);
    expect(few.statements.length).toBeLessThanOrEqual(BATCH_POINTS);
    expect(many.statements.length).toBeLessThanOrEqual(BATCH_POINTS);
    expect(many.statements.filter((s) => /FROM cdr c/.test(s)).length).toBe(4);
    expect(many.statements.filter((s) => /FROM active_call a/.test(s)).length).toBe(2);
  });
});

describe("partitions", () => {
  it("the same leg ending twice writes one CDR (the event path relies on it)", async () => {
    const tenant = await createTenant(ts);
    const leg = { tenantId: tenant.id, extensionNumber: "200", startedAt: instant(1, 42), callId: "twice" };
    await insertCdrs([leg]);
    // PostgreSQL names the partition's index in the violation, so writers use ON CONFLICT, not the constraint name.
    await expect(insertCdrs([leg])).rejects.toThrow(/duplicate key value violates unique constraint "cdr_p\d{6}_tenant_id_call_id_extension_number_started_at_key"/);
    await db().query(
      `INSERT INTO cdr (tenant_id, call_id, extension_number, direction, started_at, ended_at, duration_seconds, billable_seconds, disposition)
       VALUES ($1, 'twice', '200', 'inbound', $2, $2, 0, 0, 'failed') ON CONFLICT DO NOTHING`,
      [Number(tenant.id), leg.startedAt],
    );
    const [{ count }] = await db().query(`SELECT count(*)::int AS count FROM cdr WHERE tenant_id = $1`, [Number(tenant.id)]);
    expect(count).toBe(1);
  });

  it("creates month partitions ahead (idempotently), and there is no catch-all partition", async () => {
    const year = new Date().getUTCFullYear() + 5;
    const now = new Date(Date.UTC(year, 0, 15));
    const first = await maintainCdrPartitions(db(), { now, retentionMonths: 0 });
    expect(first).toEqual({ created: 7, dropped: [] });
    const names: string[] = (
      await db().query(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'cdr'::regclass`)
    ).map((r: { name: string }) => r.name);
    expect(names).toEqual(expect.arrayContaining([`cdr_p${year - 1}10`, `cdr_p${year}01`, `cdr_p${year}04`]));
    expect(names).not.toContain(`cdr_p${year}05`);
    expect(await maintainCdrPartitions(db(), { now, retentionMonths: 0 })).toEqual({ created: 0, dropped: [] });

    const tenant = await createTenant(ts);
    await insertCdrs([{ tenantId: tenant.id, extensionNumber: "1", startedAt: `${year}-04-30T23:59:59.999999Z` }]);
    await expect(insertCdrs([{ tenantId: tenant.id, extensionNumber: "1", startedAt: `${year}-05-01T00:00:00.000000Z` }])).rejects.toThrow(/no partition/);
  });

  it("drops whole months older than the retention, and nothing younger", async () => {
    const tenant = await createTenant(ts);
    await db().query(`SELECT pbx_ensure_cdr_partitions('2020-01-01', '2020-02-01')`);
    await insertCdrs([
      { tenantId: tenant.id, extensionNumber: "1", startedAt: "2020-01-15T10:00:00.000000Z" },
      { tenantId: tenant.id, extensionNumber: "1", startedAt: instant(1) },
    ]);
    const now = new Date();
    const result = await maintainCdrPartitions(db(), { now, retentionMonths: 12 });
    expect(result.dropped).toEqual(expect.arrayContaining(["cdr_p202001", "cdr_p202002"]));
    const cutoff = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 12, 1);
    for (const name of result.dropped) {
      const [, y, m] = /^cdr_p(\d{4})(\d{2})$/.exec(name)!;
      expect(Date.UTC(Number(y), Number(m), 1)).toBeLessThanOrEqual(cutoff);
    }
    const { cdrs } = await ts.ok(CdrsDocument, { tenantId: tenant.id });
    expect(cdrs.nodes).toHaveLength(1);
    expect(cdrs.totalCount).toBe(1);
    // With a retention, months inside it are still created ahead; nothing is dropped twice.
    expect(await maintainCdrPartitions(db(), { now, retentionMonths: 12 })).toEqual({ created: 0, dropped: [] });
  });

  it("the maintainer runs at once when started, and stops cleanly", async () => {
    const next = new Date();
    next.setUTCDate(1);
    next.setUTCMonth(next.getUTCMonth() + 3);
    const name = `cdr_p${next.getUTCFullYear()}${String(next.getUTCMonth() + 1).padStart(2, "0")}`;
    const exists = async (): Promise<boolean> => (await db().query(`SELECT to_regclass($1) IS NOT NULL AS present`, [name]))[0].present;
    await db().query(`DROP TABLE "${name}"`);
    expect(await exists()).toBe(false);
    const maintainer = new CdrPartitionMaintainer(db(), 0, createLogger("silent"));
    await maintainer.start();
    await maintainer.stop();
    expect(await exists()).toBe(true);
  });
});
