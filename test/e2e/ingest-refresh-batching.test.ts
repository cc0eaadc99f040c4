import "reflect-metadata";
import { CreateWebhookDocument, RegistrationEventsDocument } from "../graphql/generated";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { postEvents, registrationEvent, subscribe } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { recordStatements } from "../support/sql-counter";
import { startReceiver, type WebhookReceiver } from "../support/webhook-receiver";

/**
 * A batch of registrations writes its devices set-based: however many refreshes (or new contacts)
 * it holds, the device table gets one UPDATE (one INSERT) per transaction, never a statement per
 * event, and every event still gives its REFRESHED (REGISTERED) event and webhook. A contact that is
 * new, refreshed and unregistered within one batch is inserted once, and its three events carry the
 * device's id.
 */
const COUNT = 60;
/** The ingest handler splits a batch into at most this many lanes, one transaction each (ingest.service.ts). */
const MAX_TRANSACTIONS = 4;

let ts: TestServer;
let ingestKey: string;
let hook: WebhookReceiver;

beforeAll(async () => {
  ts = await startTestServer({ env: { WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_POLL_MS: "100", EVENT_RELAY_POLL_MS: "100", EXPIRY_SWEEP_MS: "3600000" } });
  ingestKey = await createKey(ts, "INGEST", null);
  hook = await startReceiver();
});
afterAll(async () => {
  await hook?.close();
  await ts?.stop();
});

/** The statements that wrote the device table while `work` ran (background passes read other tables). */
async function deviceWrites(work: () => Promise<unknown>) {
  const { statements } = await recordStatements(ts.server.db.dataSource, work);
  return {
    inserts: statements.filter((sql) => /^INSERT INTO device\b/i.test(sql)).length,
    updates: statements.filter((sql) => /^UPDATE device\b/i.test(sql)).length,
    perRow: statements.filter((sql) => /\bdevice\b/i.test(sql) && /\$1\b/.test(sql) && !/unnest|ANY\(/i.test(sql)).length,
  };
}

describe("a batch of registrations", () => {
  it(`registers ${COUNT} new contacts in one INSERT per transaction, and refreshes them in one UPDATE per transaction, with every event and webhook`, async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts, { maxExtensions: COUNT });
    await ts.ok(CreateWebhookDocument, { input: { url: hook.url, events: ["registration.registered", "registration.refreshed"] } }, adminKey);
    const numbers: string[] = [];
    for (let i = 0; i < COUNT; i += 15) {
      const made = await Promise.all(Array.from({ length: Math.min(15, COUNT - i) }, (_, j) => createExtension(ts, tenant.id, { extensionNumber: String(5000 + i + j) })));
      numbers.push(...made.map((e) => e.extensionNumber));
    }
    const t0 = Date.now();
    const at = (s: number) => new Date(t0 + s * 1000).toISOString();
    const events = await subscribe(ts, RegistrationEventsDocument, { tenantId: tenant.id }, ts.adminKey);
    try {
      const first = await deviceWrites(async () => {
        const posted = await postEvents(ts, ingestKey, numbers.map((n) => registrationEvent(tenant.sipDomain, n, { contact: `sip:${n}@10.1.0.9:5060`, occurred_at: at(0) })));
        expect(posted.status).toBe(200);
        expect(posted.body.data.every((o: { status: string }) => o.status === "applied")).toBe(true);
      });
      expect(first.inserts).toBeGreaterThanOrEqual(1);
      expect(first.inserts).toBeLessThanOrEqual(MAX_TRANSACTIONS);
      expect(first.perRow).toBe(0);

      // a refresh that changes nothing but the expiry
      const refresh = await deviceWrites(async () => {
        const posted = await postEvents(ts, ingestKey, numbers.map((n) => registrationEvent(tenant.sipDomain, n, { contact: `sip:${n}@10.1.0.9:5060`, occurred_at: at(30), expires: 600 })));
        expect(posted.status).toBe(200);
        expect(posted.body.data.every((o: { status: string }) => o.status === "applied")).toBe(true);
      });
      expect(refresh).toEqual({ inserts: 0, updates: expect.any(Number), perRow: 0 });
      expect(refresh.updates).toBeGreaterThanOrEqual(1);
      expect(refresh.updates).toBeLessThanOrEqual(MAX_TRANSACTIONS);

      await events.next(() => events.received.length >= 2 * COUNT, 30_000);
      const got = events.received.map((m) => m.data!.registrationEvents);
      expect(got.filter((e) => e.type === "REGISTERED")).toHaveLength(COUNT);
      const refreshed = got.filter((e) => e.type === "REFRESHED");
      expect(refreshed).toHaveLength(COUNT);
      expect(refreshed.every((e) => e.device.expiresAt === at(630))).toBe(true);
      const deliveries = await hook.until((r) => r.filter((d) => d.body.tenant_id === Number(tenant.id)).length >= 2 * COUNT, 30_000);
      const mine = deliveries.filter((d) => d.body.tenant_id === Number(tenant.id)).map((d) => d.body.type);
      expect(mine.filter((t) => t === "registration.registered")).toHaveLength(COUNT);
      expect(mine.filter((t) => t === "registration.refreshed")).toHaveLength(COUNT);
    } finally {
      await events.close();
    }
  }, 90_000);

  it("inserts a contact registered, refreshed and unregistered in one batch once, with its last state; its three events carry the device's id", async () => {
    const { tenant } = await tenantWithKeys(ts);
    const ext = await createExtension(ts, tenant.id, { extensionNumber: "5901" });
    const t0 = Date.now();
    const at = (s: number) => new Date(t0 + s * 1000).toISOString();
    const contact = "sip:5901@10.1.0.10:5060";
    const events = await subscribe(ts, RegistrationEventsDocument, { tenantId: tenant.id }, ts.adminKey);
    try {
      const writes = await deviceWrites(async () => {
        const posted = await postEvents(ts, ingestKey, [
          registrationEvent(tenant.sipDomain, "5901", { contact, occurred_at: at(0), expires: 60 }),
          registrationEvent(tenant.sipDomain, "5901", { contact, occurred_at: at(10), expires: 120 }),
          registrationEvent(tenant.sipDomain, "5901", { contact, occurred_at: at(20), action: "unregister", expires: 0 }),
        ]);
        expect(posted.body.data.map((o: { status: string }) => o.status)).toEqual(["applied", "applied", "applied"]);
      });
      expect(writes).toEqual({ inserts: 1, updates: 0, perRow: 0 });
      await events.next((e) => e.registrationEvents.type === "UNREGISTERED", 20_000);
      const got = events.received.map((m) => m.data!.registrationEvents);
      expect(got.map((e) => e.type)).toEqual(["REGISTERED", "REFRESHED", "UNREGISTERED"]);
      const [row] = await ts.server.db.dataSource.query(`SELECT id::text AS id, expires_at AS "expiresAt", unregistered_at AS "unregisteredAt" FROM device WHERE extension_id = $1`, [
        Number(ext.id),
      ]);
      expect(got.map((e) => e.device.id)).toEqual([row.id, row.id, row.id]);
      expect(got.map((e) => e.device.expiresAt)).toEqual([at(60), at(130), at(130)]);
      expect(row.unregisteredAt.toISOString()).toBe(at(20));
      expect(row.expiresAt.toISOString()).toBe(at(130));
    } finally {
      await events.close();
    }
  });
});
