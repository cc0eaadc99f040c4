import "reflect-metadata";
import { createKey, tenantWithKeys, createExtension, uniq } from "../support/factories";
import { callEvent, postEvents, registrationEvent } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";

/**
 * A field that only describes a call or a registration never costs the event: a From display name
 * over 255 characters (a phone chooses it) used to refuse every event of the call, which then
 * connected with no active call and no CDR. Such fields are stored cut, on code points.
 */
let ts: TestServer;
let ingestKey: string;

beforeAll(async () => {
  ts = await startTestServer();
  ingestKey = await createKey(ts, "INGEST", null);
});
afterAll(() => ts?.stop());

const query = <T>(sql: string, params: unknown[] = []): Promise<T[]> => ts.server.db.dataSource.query(sql, params);

async function tenantWith(number: string) {
  const t = await tenantWithKeys(ts);
  const extension = await createExtension(ts, t.tenant.id, { extensionNumber: number });
  return { domain: t.tenant.sipDomain, tenantId: Number(t.tenant.id), extension };
}

describe("descriptive fields of telephony events", () => {
  it("stores a caller_name over 255 characters cut to 255 (active call and CDR), without splitting a character", async () => {
    const { domain, tenantId } = await tenantWith("2401");
    const callId = `long-${uniq()}`;
    // 254 ASCII characters, then an emoji (two UTF-16 units, one code point), then more: the cut keeps the emoji whole.
    const name = `${"N".repeat(254)}\u{1F600}${"tail".repeat(20)}`;
    const started = await postEvents(ts, ingestKey, callEvent(domain, "2401", "start", callId, { caller_name: name }));
    expect([started.status, started.body.data.status]).toEqual([200, "applied"]);
    const [active] = await query<{ callerName: string }>(`SELECT caller_name AS "callerName" FROM active_call WHERE tenant_id = $1 AND call_id = $2`, [tenantId, callId]);
    expect(active.callerName).toBe(`${"N".repeat(254)}\u{1F600}`);

    const ended = await postEvents(ts, ingestKey, callEvent(domain, "2401", "end", callId, { caller_name: name, disposition: "answered" }));
    expect([ended.status, ended.body.data.status]).toEqual([200, "applied"]);
    const cdrs = await query<{ callerName: string }>(`SELECT caller_name AS "callerName" FROM cdr WHERE tenant_id = $1 AND call_id = $2`, [tenantId, callId]);
    expect(cdrs).toEqual([{ callerName: `${"N".repeat(254)}\u{1F600}` }]);
    expect([...cdrs[0].callerName]).toHaveLength(255);
  });

  it("cuts the other descriptive fields (numbers as seen, hangup cause, user agent, source address) and drops NUL", async () => {
    const { domain, tenantId, extension } = await tenantWith("2402");
    const callId = `desc-${uniq()}`;
    const posted = await postEvents(ts, ingestKey, [
      callEvent(domain, "2402", "start", callId, { caller_number: "5".repeat(100), callee_number: "6".repeat(100), caller_name: "Nul\u0000Name" }),
      callEvent(domain, "2402", "end", callId, { hangup_cause: "c".repeat(100) }),
      registrationEvent(domain, "2402", { user_agent: "U".repeat(300), source_address: "1".repeat(100) }),
    ]);
    expect(posted.status).toBe(200);
    expect(posted.body.data.map((o: { status: string }) => o.status)).toEqual(["applied", "applied", "applied"]);
    const [cdr] = await query<Record<string, string>>(
      `SELECT caller_number AS "callerNumber", callee_number AS "calleeNumber", caller_name AS "callerName", hangup_cause AS "hangupCause" FROM cdr WHERE tenant_id = $1 AND call_id = $2`,
      [tenantId, callId],
    );
    expect(cdr).toEqual({ callerNumber: "5".repeat(64), calleeNumber: "6".repeat(64), callerName: "NulName", hangupCause: "c".repeat(64) });
    const [device] = await query<Record<string, string>>(`SELECT user_agent AS "userAgent", source_address AS "sourceAddress" FROM device WHERE extension_id = $1`, [extension.id]);
    expect(device).toEqual({ userAgent: "U".repeat(255), sourceAddress: "1".repeat(64) });
  });

  it("still refuses a descriptive field of the wrong type, and the key fields' bounds, changing nothing", async () => {
    const { domain, tenantId } = await tenantWith("2403");
    const refused = await postEvents(ts, ingestKey, [
      callEvent(domain, "2403", "start", `typed-${uniq()}`, { caller_name: 42 }),
      callEvent(domain, "2403", "start", "x".repeat(256)),
    ]);
    expect(refused.status).toBe(422);
    expect(refused.body.data[0]).toMatchObject({ status: "rejected", code: "BAD_USER_INPUT", errors: { caller_name: ["The caller_name must be a string."] } });
    expect(refused.body.data[1]).toMatchObject({ status: "rejected", code: "BAD_USER_INPUT", errors: { call_id: ["The call_id must be 1 to 255 characters without spaces."] } });
    expect(await query(`SELECT count(*)::int AS n FROM active_call WHERE tenant_id = $1`, [tenantId])).toEqual([{ n: 0 }]);
  });
});
