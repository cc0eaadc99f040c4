import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { postEvents } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";

/** /metrics: the PBX's platform totals (never per tenant), behind METRICS_TOKEN or on METRICS_PORT. */
let ts: TestServer;
const TOKEN = "metrics-token-0123456789";
beforeAll(async () => void (ts = await startTestServer({ env: { METRICS_TOKEN: TOKEN } })));
afterAll(async () => ts?.stop());

const scrape = async (url: string, token: string | null = TOKEN) => fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

it("METRICS_TOKEN: no token or a wrong one is 401, changing nothing; the right one gets the figures", async () => {
  expect((await scrape(ts.server.metricsUrl, null)).status).toBe(401);
  expect((await scrape(ts.server.metricsUrl, "wrong-token-0123456789")).status).toBe(401);
  // An API key is not the metrics token, not even the admin's.
  expect((await scrape(ts.server.metricsUrl, ts.adminKey)).status).toBe(401);
  const ok = await scrape(ts.server.metricsUrl);
  expect(ok.status).toBe(200);
  expect(await ok.text()).toContain("# TYPE pbx_devices_registered gauge");
});

it("devices registered, calls in progress, callers waiting, events by kind and outcome: platform totals without a tenant label", async () => {
  const ingestKey = await createKey(ts, "INGEST", null);
  const tenants = await Promise.all([tenantWithKeys(ts), tenantWithKeys(ts)]);
  const before = await (await scrape(ts.server.metricsUrl)).text();
  for (const [i, { tenant }] of tenants.entries()) {
    await createExtension(ts, tenant.id, { extensionNumber: "1001" });
    const domain = tenant.sipDomain;
    const res = await postEvents(ts, ingestKey, [
      { type: "registration", action: "register", domain, extension: "1001", contact: `sip:1001@192.0.2.${i + 1}:5060`, transport: "udp", expires: 3600 },
      { type: "call", action: "start", domain, extension: "1001", call_id: `m-${i}`, direction: "inbound", caller_number: "+15550001111" },
      { type: "registration", action: "register", domain, extension: "4040", contact: "sip:4040@192.0.2.9", transport: "udp", expires: 60 },
    ]);
    expect(res.status).toBe(207);
  }
  const text = await (await scrape(ts.server.metricsUrl)).text();
  expect(value(text, "pbx_devices_registered")).toBe(2);
  expect(value(text, "pbx_active_calls")).toBe(2);
  expect(value(text, "pbx_queue_callers_waiting")).toBe(0);
  const counted = (t: string, series: string) => value(t, series) ?? 0;
  const applied = 'ingest_events_total{source="http",type="registration",outcome="applied"}';
  const rejected = 'ingest_events_total{source="http",type="registration",outcome="rejected"}';
  expect(counted(text, applied) - counted(before, applied)).toBe(2);
  expect(counted(text, rejected) - counted(before, rejected)).toBe(2);
  expect(counted(text, 'ingest_events_total{source="http",type="call",outcome="applied"}')).toBeGreaterThanOrEqual(2);
  expect(text).toMatch(/^subscription_groups \d+$/m);
  // Counted by the SIP engine in Redis (none here): present, and 0, on every setup.
  expect(text).toMatch(/^# TYPE pbx_engine_calls_unrouted_total counter$/m);
  expect(value(text, "pbx_engine_calls_unrouted_total")).toBe(0);
  expect(text).toMatch(/^websocket_connections_open \d+$/m);
  // Platform totals only: no series has a tenant label.
  const series = text.split("\n").filter((l) => l && !l.startsWith("#"));
  expect(series.filter((l) => /[{,]tenant\w*=/i.test(l))).toEqual([]);
});

it("METRICS_PORT serves /metrics on its own port and not on the API's", async () => {
  const other = await startTestServer({ env: { METRICS_PORT: "0" } });
  try {
    expect(other.server.metricsUrl).not.toBe(`${other.url}/metrics`);
    expect((await scrape(other.server.metricsUrl, null)).status).toBe(200);
    expect((await other.http("/metrics", { key: null })).status).toBe(404);
  } finally {
    await other.stop();
  }
});
