import {
  ActiveCallEventsDocument,
  ExtensionLiveDocument,
  LiveTenantCdrsDocument,
  RegistrationEventsDocument,
  RevokeApiKeyDocument,
  UpdateExtensionDocument,
  ApiKeysDocument,
  CreateApiKeyDocument,
} from "../graphql/generated";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { callEvent, postEvents, registrationEvent, subscribe } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { scrapeMetric, waitFor } from "../support/wait";

const SECRET = "Liv3-Ev3nts-S3cret-4411";
let ts: TestServer;
let ingestKey: string;
const logs: string[] = [];

beforeAll(async () => {
  ts = await startTestServer({ env: { EXPIRY_SWEEP_MS: "200" }, logSink: (line) => logs.push(line) });
  ingestKey = await createKey(ts, "INGEST", null);
});
afterAll(() => ts?.stop());

async function tenantWithExtension(number = "1001") {
  const t = await tenantWithKeys(ts);
  const extension = await createExtension(ts, t.tenant.id, { extensionNumber: number, secret: SECRET });
  return { ...t, extension };
}

const register = registrationEvent;
const call = callEvent;

describe("registrations", () => {
  it("a REGISTER is persisted, then published; a query on receipt already sees it", async () => {
    const { tenant, viewerKey, extension } = await tenantWithExtension();
    const sub = await subscribe(ts, RegistrationEventsDocument, {}, viewerKey);
    try {
      const posted = await postEvents(ts, ingestKey, register(tenant.sipDomain, "1001"));
      expect(posted).toMatchObject({ status: 200, body: { data: { status: "applied", type: "registration", action: "register" } } });
      const event = (await sub.next()).registrationEvents;
      expect(event).toMatchObject({
        type: "REGISTERED",
        tenantId: tenant.id,
        extension: { id: extension.id, extensionNumber: "1001", hasSecret: true },
        device: { contactUri: "sip:1001@10.0.0.5:5060", userAgent: "Yealink T54W", transport: "UDP", registered: true },
      });
      const seen = await ts.ok(ExtensionLiveDocument, { id: extension.id }, viewerKey);
      expect(seen.extension).toMatchObject({ registered: true, devices: [{ id: event.device.id, registered: true }] });

      await postEvents(ts, ingestKey, register(tenant.sipDomain, "1001", { expires: 1800 }));
      expect((await sub.next()).registrationEvents.type).toBe("REFRESHED");
      await postEvents(ts, ingestKey, { ...register(tenant.sipDomain, "1001"), action: "unregister" });
      expect((await sub.next()).registrationEvents).toMatchObject({ type: "UNREGISTERED", device: { registered: false } });
      expect((await ts.ok(ExtensionLiveDocument, { id: extension.id }, viewerKey)).extension.registered).toBe(false);
    } finally {
      await sub.close();
    }
  });

  it("an event pub/sub did not take is published again by the relay: the subscriber gets every event once, the missing one late", async () => {
    const { tenant, viewerKey } = await tenantWithExtension();
    const sub = await subscribe(ts, RegistrationEventsDocument, {}, viewerKey);
    // Fault injection: the second event's publication on the tenant's topic is dropped, as a Redis
    // command that fails on a loaded shard would be (RedisPubSub.publish answers false).
    const pubsub = ts.server.pubsub;
    const original = pubsub.publish.bind(pubsub);
    let dropped: unknown;
    pubsub.publish = async (topic, payload) => {
      const contact = (payload as { device?: { contactUri?: string } }).device?.contactUri;
      if (dropped === undefined && topic === `tenant.${tenant.id}.registrations` && contact?.startsWith("sip:1001-2@")) {
        dropped = payload;
        return false;
      }
      return original(topic, payload);
    };
    try {
      const contacts = [1, 2, 3].map((i) => `sip:1001-${i}@10.0.0.5:5060`);
      const posted = await postEvents(ts, ingestKey, contacts.map((contact) => register(tenant.sipDomain, "1001", { contact })));
      expect(posted.status).toBe(200);
      const seen = () => sub.received.map((m) => m.data?.registrationEvents.device?.contactUri);
      await waitFor("the three registrations, the dropped one from the relay's next pass", () => contacts.every((c) => seen().includes(c)) || undefined, 15_000);
      expect(dropped).toBeDefined();
      // each once: what the repeated pass published again is not delivered twice
      await postEvents(ts, ingestKey, register(tenant.sipDomain, "1001", { contact: "sip:1001-4@10.0.0.5:5060" }));
      await sub.next((d) => d.registrationEvents.device?.contactUri === "sip:1001-4@10.0.0.5:5060");
      expect(seen().sort()).toEqual([...contacts, "sip:1001-4@10.0.0.5:5060"].sort());
    } finally {
      pubsub.publish = original;
      await sub.close();
    }
  });

  it("refuses a registration for an unknown or disabled extension, or an unknown domain, changing nothing", async () => {
    const { tenant, extension } = await tenantWithExtension();
    const unknown = await postEvents(ts, ingestKey, register(tenant.sipDomain, "4040"));
    expect(unknown).toMatchObject({ status: 422, body: { errors: { extension: ["The tenant has no extension 4040."] } } });
    const domain = await postEvents(ts, ingestKey, register("nowhere.example", "1001"));
    expect(domain).toMatchObject({ status: 422, body: { errors: { domain: ["No tenant has this SIP domain."] } } });
    await ts.ok(UpdateExtensionDocument, { id: extension.id, input: { status: "DISABLED" } });
    const disabled = await postEvents(ts, ingestKey, register(tenant.sipDomain, "1001"));
    expect(disabled).toMatchObject({ status: 422, body: { errors: { extension: ["The extension is disabled."] } } });
    const invalid = await postEvents(ts, ingestKey, { ...register(tenant.sipDomain, "1001"), transport: "UDP", expires: -5 });
    expect(invalid.status).toBe(422);
    expect(Object.keys(invalid.body.errors).sort()).toEqual(["expires", "transport"]);
    expect((await ts.ok(ExtensionLiveDocument, { id: extension.id })).extension.devices).toEqual([]);
  });

  it("disabling an extension unregisters its devices, with events", async () => {
    const { tenant, viewerKey, extension } = await tenantWithExtension();
    await postEvents(ts, ingestKey, [register(tenant.sipDomain, "1001"), register(tenant.sipDomain, "1001", { contact: "sip:1001@10.0.0.6:5060" })]);
    const sub = await subscribe(ts, RegistrationEventsDocument, {}, viewerKey);
    try {
      await ts.ok(UpdateExtensionDocument, { id: extension.id, input: { status: "DISABLED" } });
      // The relay publishes after the commit, so the two REGISTERED may still arrive: skip them.
      const notRegistered = (d: { registrationEvents: { type: string } }) => d.registrationEvents.type !== "REGISTERED";
      const a = (await sub.next(notRegistered)).registrationEvents;
      const b = (await sub.next(notRegistered)).registrationEvents;
      expect([a.type, b.type]).toEqual(["UNREGISTERED", "UNREGISTERED"]);
      expect(new Set([a.device.contactUri, b.device.contactUri]).size).toBe(2);
      expect((await ts.ok(ExtensionLiveDocument, { id: extension.id })).extension.registered).toBe(false);
    } finally {
      await sub.close();
    }
  });

  it("the server expires a registration past expiresAt, once, with an EXPIRED event", async () => {
    const { tenant, viewerKey, extension } = await tenantWithExtension();
    const sub = await subscribe(ts, RegistrationEventsDocument, {}, viewerKey);
    try {
      await postEvents(ts, ingestKey, register(tenant.sipDomain, "1001", { expires: 1 }));
      expect((await sub.next()).registrationEvents.type).toBe("REGISTERED");
      const expired = (await sub.next((e) => e.registrationEvents.type === "EXPIRED", 20_000)).registrationEvents;
      expect(expired.device.registered).toBe(false);
      expect((await ts.ok(ExtensionLiveDocument, { id: extension.id })).extension.registered).toBe(false);
      // Once: two more sweeps finish after the EXPIRED arrived, then a later event of the tenant
      // (published in sequence after anything those sweeps could have published) arrives.
      const sweeps = () => scrapeMetric(ts.server.metricsUrl, "pbx_registration_expiry_sweeps_total", { outcome: "ok" });
      const seen = await sweeps();
      await waitFor("two more expiry sweeps", async () => (await sweeps()) >= seen + 2);
      const later = "sip:1001@10.0.0.99:5060";
      await postEvents(ts, ingestKey, register(tenant.sipDomain, "1001", { contact: later }));
      await sub.next((e) => e.registrationEvents.type === "REGISTERED" && e.registrationEvents.device.contactUri === later);
      expect(sub.received.filter((m) => m.data?.registrationEvents.type === "EXPIRED")).toHaveLength(1);
    } finally {
      await sub.close();
    }
  });

  it("ignores a registration older than the device's current state", async () => {
    const { tenant, extension } = await tenantWithExtension();
    await postEvents(ts, ingestKey, register(tenant.sipDomain, "1001", { occurred_at: "2030-01-01T10:00:00Z" }));
    const stale = await postEvents(ts, ingestKey, { ...register(tenant.sipDomain, "1001", { occurred_at: "2030-01-01T09:00:00Z" }), action: "unregister" });
    expect(stale.body.data.status).toBe("duplicate");
    const old = await postEvents(ts, ingestKey, register(tenant.sipDomain, "1001", { occurred_at: "2029-12-31T09:00:00Z" }));
    expect(old.body.data.status).toBe("ignored");
    expect((await ts.ok(ExtensionLiveDocument, { id: extension.id })).extension.devices).toHaveLength(1);
  });
});

describe("calls", () => {
  it("moves a leg RINGING → ANSWERED ⇄ HELD → ended, with events, and writes one CDR", async () => {
    const { tenant, viewerKey, extension } = await tenantWithExtension();
    const sub = await subscribe(ts, ActiveCallEventsDocument, { extensionId: extension.id }, viewerKey);
    const d = tenant.sipDomain;
    try {
      for (const action of ["start", "answer", "hold", "resume"]) {
        expect((await postEvents(ts, ingestKey, call(d, "1001", action, "c-1"))).body.data.status).toBe("applied");
      }
      const live = await ts.ok(ExtensionLiveDocument, { id: extension.id });
      expect(live.extension.activeCalls).toEqual([{ callId: "c-1", state: "ANSWERED" }]);
      await postEvents(ts, ingestKey, call(d, "1001", "end", "c-1", { disposition: "answered", hangup_cause: "NORMAL_CLEARING" }));
      const types = [];
      for (let i = 0; i < 5; i++) types.push((await sub.next()).activeCallEvents);
      expect(types.map((e) => e.type)).toEqual(["STARTED", "ANSWERED", "HELD", "RESUMED", "ENDED"]);
      expect(types[1].call.state).toBe("ANSWERED");
      expect(types[2].call.state).toBe("HELD");
      expect(types[4].cdr).toMatchObject({ callId: "c-1", extensionNumber: "1001", direction: "INBOUND", disposition: "ANSWERED", hangupCause: "NORMAL_CLEARING" });
      expect((await ts.ok(ExtensionLiveDocument, { id: extension.id })).extension.activeCalls).toEqual([]);
      // Duplicates and stale events after the end change nothing.
      expect((await postEvents(ts, ingestKey, call(d, "1001", "end", "c-1"))).body.data.status).toBe("duplicate");
      expect((await postEvents(ts, ingestKey, call(d, "1001", "answer", "c-1"))).body.data.status).toBe("ignored");
      expect((await postEvents(ts, ingestKey, call(d, "1001", "start", "c-1"))).body.data.status).toBe("ignored");
      const cdrs = await ts.ok(LiveTenantCdrsDocument, { tenantId: tenant.id });
      expect(cdrs.cdrs.totalCount).toBe(1);
      expect((await ts.ok(ExtensionLiveDocument, { id: extension.id })).extension.activeCalls).toEqual([]);
    } finally {
      await sub.close();
    }
  });

  it("an end without a start still writes one CDR (no answer), and a repeat writes none", async () => {
    const { tenant } = await tenantWithExtension();
    const end = call(tenant.sipDomain, "1001", "end", "orphan-1", { occurred_at: new Date().toISOString() });
    expect((await postEvents(ts, ingestKey, end)).body.data.status).toBe("applied");
    expect((await postEvents(ts, ingestKey, end)).body.data.status).toBe("duplicate");
    const cdrs = await ts.ok(LiveTenantCdrsDocument, { tenantId: tenant.id });
    expect(cdrs.cdrs.nodes).toEqual([
      expect.objectContaining({ callId: "orphan-1", disposition: "NO_ANSWER", durationSeconds: 0, billableSeconds: 0 }),
    ]);
  });

  it("parallel duplicate ends write exactly one CDR", async () => {
    const { tenant } = await tenantWithExtension();
    await postEvents(ts, ingestKey, [call(tenant.sipDomain, "1001", "start", "race-1"), call(tenant.sipDomain, "1001", "answer", "race-1")]);
    const results = await Promise.all(Array.from({ length: 6 }, () => postEvents(ts, ingestKey, call(tenant.sipDomain, "1001", "end", "race-1"))));
    expect(results.filter((r) => r.body.data.status === "applied")).toHaveLength(1);
    expect((await ts.ok(LiveTenantCdrsDocument, { tenantId: tenant.id })).cdrs.totalCount).toBe(1);
  });

  it("applies the good events of a batch, refuses the bad ones, and says which (207)", async () => {
    const { tenant } = await tenantWithExtension();
    const res = await postEvents(ts, ingestKey, [
      call(tenant.sipDomain, "1001", "start", "b-1"),
      { type: "call", action: "explode", call_id: "b-2", domain: tenant.sipDomain, extension: "1001" },
      call(tenant.sipDomain, "9999", "start", "b-3"),
      { type: "fax" },
      call(tenant.sipDomain, "1001", "end", "b-1"),
    ]);
    expect(res.status).toBe(207);
    expect(res.body.data.map((r: { status: string }) => r.status)).toEqual(["applied", "rejected", "rejected", "rejected", "applied"]);
    expect(res.body.data[1].errors).toEqual({ action: ["The action must be start, answer, hold, resume or end."] });
    expect(res.body.data[2].errors).toEqual({ extension: ["The tenant has no extension 9999."] });
    expect((await ts.ok(LiveTenantCdrsDocument, { tenantId: tenant.id })).cdrs.totalCount).toBe(1);
    const none = await postEvents(ts, ingestKey, []);
    expect(none.status).toBe(422);
  });
});

describe("access", () => {
  it("only INGEST and ADMIN keys post events", async () => {
    const { tenant, adminKey, viewerKey } = await tenantWithExtension();
    expect((await postEvents(ts, viewerKey, register(tenant.sipDomain, "1001"))).status).toBe(403);
    expect((await postEvents(ts, adminKey, register(tenant.sipDomain, "1001"))).status).toBe(403);
    const res = await ts.http("/api/events", { key: null, method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(res.status).toBe(401);
  });

  it("a tenant-bound INGEST key reaches only its tenant", async () => {
    const a = await tenantWithExtension();
    const b = await tenantWithExtension();
    const bound = await createKey(ts, "INGEST", b.tenant.id);
    const res = await postEvents(ts, bound, register(a.tenant.sipDomain, "1001"));
    expect(res).toMatchObject({ status: 422, body: { errors: { domain: ["No tenant has this SIP domain."] } } });
    expect((await postEvents(ts, bound, register(b.tenant.sipDomain, "1001"))).status).toBe(200);
  });

  it("a tenant principal receives only its tenant's events and is refused another tenant's id", async () => {
    const a = await tenantWithExtension();
    const b = await tenantWithExtension();
    const subB = await subscribe(ts, RegistrationEventsDocument, {}, b.viewerKey);
    const refused = await subscribe(ts, RegistrationEventsDocument, { tenantId: a.tenant.id }, b.viewerKey, { expectError: true });
    const adminAll = await subscribe(ts, RegistrationEventsDocument, {}, ts.adminKey);
    try {
      expect(await refused.error()).toMatchObject({ message: "Tenant not found.", extensions: { code: "NOT_FOUND" } });
      await postEvents(ts, ingestKey, register(a.tenant.sipDomain, "1001"));
      await postEvents(ts, ingestKey, register(b.tenant.sipDomain, "1001"));
      const forB = (await subB.next()).registrationEvents;
      expect(forB.tenantId).toBe(b.tenant.id);
      // Each tenant's events are relayed on their own (in order within the tenant): across tenants
      // an admin may see them in either order.
      const seenByAdmin = [(await adminAll.next()).registrationEvents.tenantId, (await adminAll.next()).registrationEvents.tenantId];
      expect(seenByAdmin.sort()).toEqual([a.tenant.id, b.tenant.id].sort());
      // A's event has been published (the admin has it); B's next one is published after it, and
      // pub/sub delivers in publication order: had A's leaked to B's subscriber, it would be there
      // before B's second event.
      await postEvents(ts, ingestKey, register(b.tenant.sipDomain, "1001", { contact: "sip:1001@10.0.0.6:5060" }));
      await subB.next((d) => d.registrationEvents.device?.contactUri === "sip:1001@10.0.0.6:5060");
      expect(subB.received.map((m) => m.data?.registrationEvents.tenantId)).toEqual([b.tenant.id, b.tenant.id]);
    } finally {
      await Promise.all([subB.close(), refused.close(), adminAll.close()]);
    }
  });

  it("a revoked key stops receiving: its socket is closed", async () => {
    const { tenant } = await tenantWithExtension();
    const { createApiKey } = await ts.ok(CreateApiKeyDocument, { input: { name: "wallboard", role: "VIEWER", tenantId: tenant.id } });
    const sub = await subscribe(ts, RegistrationEventsDocument, {}, createApiKey.key);
    const closed = new Promise<number>((resolve) => sub.client.on("closed", (e) => resolve((e as { code: number }).code)));
    await ts.ok(RevokeApiKeyDocument, { id: createApiKey.apiKey.id });
    expect(await closed).toBe(4403);
    const keys = await ts.ok(ApiKeysDocument, { tenantId: tenant.id });
    expect(keys.apiKeys.find((k) => k.id === createApiKey.apiKey.id)?.revokedAt).not.toBeNull();
    await sub.close();
  });
});

describe("fan-out", () => {
  it("subscribers of the same subscription share one execution and receive identical payloads", async () => {
    const { tenant, viewerKey } = await tenantWithExtension();
    const subs = [];
    for (let i = 0; i < 5; i++) subs.push(await subscribe(ts, RegistrationEventsDocument, {}, viewerKey));
    try {
      const groupsBefore = (await ts.server.metrics.subscriptionGroups.get()).values[0].value;
      await postEvents(ts, ingestKey, register(tenant.sipDomain, "1001"));
      const payloads = await Promise.all(subs.map((s) => s.next()));
      expect(new Set(payloads.map((p) => JSON.stringify(p))).size).toBe(1);
      expect(groupsBefore).toBeGreaterThanOrEqual(1);
    } finally {
      await Promise.all(subs.map((s) => s.close()));
    }
  });

  it("no event or log line carries a secret", () => {
    expect(logs.join("\n")).not.toContain(SECRET);
  });
});
