import { createHmac } from "node:crypto";
import {
  AuditLogDocument,
  CreateWebhookDocument,
  DeleteVoicemailMessageDocument,
  DeleteWebhookDocument,
  MarkVoicemailHeardDocument,
  RedeliverWebhookDeliveryDocument,
  ResumeCallsDocument,
  ResumeRegistrationsDocument,
  RotateWebhookSecretDocument,
  TenantWebhooksDocument,
  UpdateExtensionDocument,
  UpdateWebhookDocument,
  WebhookDeliveriesDocument,
  type ResumeRegistrationsSubscription,
} from "../graphql/generated";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { callEvent, postEvents, registrationEvent, subscribe } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { startReceiver, type ReceivedDelivery, type WebhookReceiver } from "../support/webhook-receiver";
import { toneWav } from "../../src/modules/voicemail/wav";
import { postVoicemail } from "./voicemail-support";

const SECRET = "Hist0ry-S3cret-Never-Sent";
let ts: TestServer;
let ingestKey: string;
const receivers: WebhookReceiver[] = [];

beforeAll(async () => {
  ts = await startTestServer({
    env: { WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_MAX_ATTEMPTS: "3", WEBHOOK_RETRY_BASE_MS: "100", WEBHOOK_POLL_MS: "100", EVENT_RELAY_POLL_MS: "100" },
  });
  ingestKey = await createKey(ts, "INGEST", null);
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await ts?.stop();
});

async function receiver(answer?: Parameters<typeof startReceiver>[0]) {
  const r = await startReceiver(answer);
  receivers.push(r);
  return r;
}

async function tenantWithExtension() {
  const t = await tenantWithKeys(ts);
  const extension = await createExtension(ts, t.tenant.id, { secret: SECRET });
  return { ...t, extension };
}

const register = (domain: string, extension: string, contact: string) => registrationEvent(domain, extension, { contact });
const call = callEvent;

async function ingest(events: unknown) {
  const res = await postEvents(ts, ingestKey, events);
  expect(res.status).toBe(200);
}

/** Every key of a JSON value, nested ones too. */
const keysOf = (value: unknown): string[] =>
  value && typeof value === "object" ? Object.entries(value).flatMap(([k, v]) => (Array.isArray(value) ? keysOf(v) : [k, ...keysOf(v)])) : [];

const sequences = (events: Array<{ sequence: string }>) => events.map((e) => BigInt(e.sequence));
const increasing = (list: bigint[]) => list.every((s, i) => i === 0 || s > list[i - 1]);

describe("sequence and resume", () => {
  it("every event carries a sequence increasing in commit order; after replays the log, then live, none twice", async () => {
    const { tenant, viewerKey, extension } = await tenantWithExtension();
    const live = await subscribe(ts, ResumeRegistrationsDocument, {}, viewerKey);
    await ingest([1, 2, 3].map((n) => register(tenant.sipDomain, extension.extensionNumber, `sip:a${n}@10.0.0.1`)));
    const first = [await live.next(), await live.next(), await live.next()].map((d) => d.registrationEvents);
    expect(first.map((e) => e.device.contactUri)).toEqual(["sip:a1@10.0.0.1", "sip:a2@10.0.0.1", "sip:a3@10.0.0.1"]);
    expect(increasing(sequences(first))).toBe(true);
    await live.close();

    // Missed while away: two more. A resume after the first event gets the 2nd, 3rd and the missed ones, then live.
    await ingest([4, 5].map((n) => register(tenant.sipDomain, extension.extensionNumber, `sip:a${n}@10.0.0.1`)));
    const resumed = await subscribe(ts, ResumeRegistrationsDocument, { after: first[0].sequence }, viewerKey);
    await ingest(register(tenant.sipDomain, extension.extensionNumber, "sip:a6@10.0.0.1"));
    const got: ResumeRegistrationsSubscription["registrationEvents"][] = [];
    for (let i = 0; i < 5; i++) got.push((await resumed.next()).registrationEvents);
    expect(got.map((e) => e.device.contactUri)).toEqual(["a2", "a3", "a4", "a5", "a6"].map((c) => `sip:${c}@10.0.0.1`));
    expect(increasing(sequences(got))).toBe(true);
    expect(got[0].sequence).toBe(first[1].sequence);
    // Nothing else arrives: no repeat at the seam.
    await ingest(register(tenant.sipDomain, extension.extensionNumber, "sip:a7@10.0.0.1"));
    expect((await resumed.next()).registrationEvents.device.contactUri).toBe("sip:a7@10.0.0.1");
    expect(resumed.received).toHaveLength(6);
    await resumed.close();
  });

  it("concurrent commits of one tenant are replayed in sequence order with nothing skipped, also across a busy seam", async () => {
    const { tenant, viewerKey, extension } = await tenantWithExtension();
    const live = await subscribe(ts, ResumeRegistrationsDocument, {}, viewerKey);
    const contacts = Array.from({ length: 24 }, (_, i) => `sip:p${i}@10.0.0.2`);
    // Half committed before the resume starts, half in parallel with it.
    await Promise.all(contacts.slice(0, 12).map((c) => ingest(register(tenant.sipDomain, extension.extensionNumber, c))));
    const [resumed] = await Promise.all([
      subscribe(ts, ResumeRegistrationsDocument, { after: "0" }, viewerKey),
      Promise.all(contacts.slice(12).map((c) => ingest(register(tenant.sipDomain, extension.extensionNumber, c)))),
    ]);
    const fromLive: bigint[] = [];
    for (let i = 0; i < 24; i++) fromLive.push(BigInt((await live.next()).registrationEvents.sequence));
    const fromResume: Array<{ sequence: string; device: { contactUri: string } }> = [];
    for (let i = 0; i < 24; i++) fromResume.push((await resumed.next()).registrationEvents);
    expect(increasing(fromLive)).toBe(true);
    expect(sequences(fromResume)).toEqual(fromLive);
    expect(new Set(fromResume.map((e) => e.device.contactUri))).toEqual(new Set(contacts));
    // A fresh replay of the whole log sees the same, in the same order.
    const replay = await subscribe(ts, ResumeRegistrationsDocument, { after: "0" }, viewerKey);
    const replayed: bigint[] = [];
    for (let i = 0; i < 24; i++) replayed.push(BigInt((await replay.next()).registrationEvents.sequence));
    expect(replayed).toEqual(fromLive);
    for (const s of [live, resumed, replay]) await s.close();
  });

  it("activeCallEvents resumes too, for one extension", async () => {
    const { tenant, viewerKey, extension } = await tenantWithExtension();
    const other = await createExtension(ts, tenant.id, { secret: SECRET });
    await ingest([
      call(tenant.sipDomain, extension.extensionNumber, "start", "c-1"),
      call(tenant.sipDomain, other.extensionNumber, "start", "c-2"),
      call(tenant.sipDomain, extension.extensionNumber, "answer", "c-1"),
    ]);
    const sub = await subscribe(ts, ResumeCallsDocument, { extensionId: extension.id, after: "0" }, viewerKey);
    const a = (await sub.next()).activeCallEvents;
    const b = (await sub.next()).activeCallEvents;
    expect([a.type, b.type]).toEqual(["STARTED", "ANSWERED"]);
    expect([a.call.callId, b.call.callId]).toEqual(["c-1", "c-1"]);
    expect(BigInt(b.sequence)).toBeGreaterThan(BigInt(a.sequence));
    await ingest(call(tenant.sipDomain, extension.extensionNumber, "end", "c-1"));
    expect((await sub.next()).activeCallEvents.type).toBe("ENDED");
    expect(sub.received).toHaveLength(3);
    await sub.close();
  });

  it("refuses an after without one tenant, a malformed after, an after older than the log keeps, and another tenant", async () => {
    const { tenant, viewerKey, extension } = await tenantWithExtension();
    const stranger = await tenantWithKeys(ts);
    const refused = async (variables: { tenantId?: string; after?: string }, key: string) => {
      const sub = await subscribe(ts, ResumeRegistrationsDocument, variables, key, { expectError: true });
      const error = await sub.error();
      await sub.close();
      return error;
    };
    const noTenant = await refused({ after: "0" }, ts.adminKey);
    expect(noTenant.extensions?.code).toBe("BAD_USER_INPUT");
    expect(Object.keys(noTenant.extensions?.fields as object)).toEqual(["after"]);
    for (const after of ["abc", "-1", "1.5", "01"]) {
      const e = await refused({ after }, viewerKey);
      expect(e.extensions?.code).toBe("BAD_USER_INPUT");
      expect(Object.keys(e.extensions?.fields as object)).toEqual(["after"]);
    }
    expect((await refused({ tenantId: tenant.id, after: "0" }, stranger.viewerKey)).extensions?.code).toBe("NOT_FOUND");

    // Age the tenant's log past the retention and prune: the old part is gone, resuming inside it is refused.
    await ingest([1, 2, 3].map((n) => register(tenant.sipDomain, extension.extensionNumber, `sip:old${n}@10.0.0.3`)));
    const all = await subscribe(ts, ResumeRegistrationsDocument, { after: "0" }, viewerKey);
    const old = [await all.next(), await all.next(), await all.next()].map((d) => d.registrationEvents.sequence);
    await all.close();
    await ts.server.db.dataSource.query(`UPDATE event_log SET committed_at = now() - interval '100 hours' WHERE tenant_id = $1`, [tenant.id]);
    expect(await ts.server.services.events.prune()).toBeGreaterThanOrEqual(3);
    const tooOld = await refused({ after: old[0] }, viewerKey);
    expect(tooOld.extensions?.code).toBe("BAD_USER_INPUT");
    expect(tooOld.extensions?.fields).toEqual({ after: [expect.stringContaining("72 hours")] });
    // Right after the last pruned event nothing is missing: allowed.
    await ingest(register(tenant.sipDomain, extension.extensionNumber, "sip:new@10.0.0.3"));
    const fine = await subscribe(ts, ResumeRegistrationsDocument, { after: old[2] }, viewerKey);
    expect((await fine.next()).registrationEvents.device.contactUri).toBe("sip:new@10.0.0.3");
    await fine.close();
  });
});

function verify(delivery: ReceivedDelivery, secret: string): boolean {
  const [t, v1] = String(delivery.headers["x-pbx-signature"]).split(",").map((part) => part.split("=")[1]);
  return v1 === createHmac("sha256", secret).update(`${t}.${delivery.raw}`).digest("hex") && Math.abs(Date.now() / 1000 - Number(t)) < 300;
}

async function deliveries(id: string, key = ts.adminKey) {
  return (await ts.ok(WebhookDeliveriesDocument, { id, first: 100 }, key)).webhook.deliveries;
}

async function waitFor<T>(read: () => Promise<T>, ok: (value: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("webhooks", () => {
  it("delivers signed events in sequence order with §9's body and headers, never a secret", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const hook = await receiver();
    const { createWebhook } = await ts.ok(CreateWebhookDocument, { input: { url: hook.url, events: ["extension.created", "extension.updated", "registration.registered"], description: "CRM" } }, adminKey);
    expect(createWebhook.secret).toMatch(/^whsec_/);
    expect(createWebhook.webhook).toMatchObject({ tenantId: tenant.id, url: hook.url, enabled: true, description: "CRM" });
    const extension = await createExtension(ts, tenant.id, { secret: SECRET }, adminKey);
    await ts.ok(UpdateExtensionDocument, { id: extension.id, input: { displayName: "Reception" } }, adminKey);
    await ingest(register(tenant.sipDomain, extension.extensionNumber, "sip:w@10.0.0.4"));
    // Not subscribed: not sent.
    await ingest(call(tenant.sipDomain, extension.extensionNumber, "start", "w-1"));
    const got = await hook.until((r) => r.length >= 3);
    expect(got.map((d) => d.body.type)).toEqual(["extension.created", "extension.updated", "registration.registered"]);
    expect(increasing(got.map((d) => BigInt(d.body.sequence)))).toBe(true);
    for (const d of got) {
      expect(verify(d, createWebhook.secret)).toBe(true);
      expect(d.headers["content-type"]).toBe("application/json");
      expect(d.headers["x-pbx-event"]).toBe(d.body.type);
      expect(d.headers["x-pbx-delivery"]).toBe(d.body.id);
      expect(Object.keys(d.body).sort()).toEqual(["data", "id", "occurred_at", "sequence", "tenant_id", "type"]);
      expect(d.body.tenant_id).toBe(Number(tenant.id));
      expect(d.raw).not.toContain(SECRET);
      expect(d.raw).not.toMatch(/secret|ha1/i);
    }
    expect(got[1].body.data.extension).toMatchObject({ id: Number(extension.id), display_name: "Reception", status: "active", voicemail_enabled: false });
    expect(got[2].body.data.device).toMatchObject({ contact_uri: "sip:w@10.0.0.4", transport: "udp", registered: true });
    // A wrong secret does not verify.
    expect(verify(got[0], "whsec_wrong")).toBe(false);
    const list = await waitFor(() => deliveries(createWebhook.webhook.id, adminKey), (l) => l.nodes.every((n) => n.status === "DELIVERED"));
    expect(list.totalCount).toBe(3);
    expect(list.nodes[0]).toMatchObject({ eventType: "registration.registered", attempts: 1, responseStatus: 200, error: null, nextAttemptAt: null });
  });

  it("delivers voicemail.new signed, with the message and summary in REST field names, and only the events subscribed", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const extension = await createExtension(ts, tenant.id, { secret: SECRET, voicemailEnabled: true }, adminKey);
    const hook = await receiver();
    const { createWebhook } = await ts.ok(CreateWebhookDocument, { input: { url: hook.url, events: ["voicemail.new", "voicemail.deleted"] } }, adminKey);
    const deposit = (messageId: string) =>
      postVoicemail(ts, ingestKey, { domain: tenant.sipDomain, extension: extension.extensionNumber, message_id: messageId, caller_number: "+15550002222", duration_seconds: "1" }, { bytes: toneWav({ seconds: 1 }) });
    const posted = await deposit("vm-hook-1");
    expect(posted.status).toBe(201);
    const id = String(posted.body.data.id);
    // Heard is not subscribed: not sent; the delete is.
    await ts.ok(MarkVoicemailHeardDocument, { id }, adminKey);
    await ts.ok(DeleteVoicemailMessageDocument, { id }, adminKey);
    const got = await hook.until((r) => r.length >= 2);
    expect(got.map((d) => d.body.type)).toEqual(["voicemail.new", "voicemail.deleted"]);
    expect(increasing(got.map((d) => BigInt(d.body.sequence)))).toBe(true);
    const [created] = got;
    expect(verify(created, createWebhook.secret)).toBe(true);
    expect(created.headers["x-pbx-event"]).toBe("voicemail.new");
    expect(created.body.tenant_id).toBe(Number(tenant.id));
    expect(created.body.data.message).toMatchObject({
      id: Number(id),
      extension_id: Number(extension.id),
      message_id: "vm-hook-1",
      caller_number: "+15550002222",
      duration_seconds: 1,
      heard: false,
      content_type: "audio/wav",
      audio_url: `/api/voicemail/${id}/audio`,
    });
    expect(created.body.data.extension).toMatchObject({ id: Number(extension.id), extension_number: extension.extensionNumber, voicemail_enabled: true });
    expect(created.body.data.summary).toEqual({ unheard: 1, total: 1 });
    expect(got[1].body.data.summary).toEqual({ unheard: 0, total: 0 });
    for (const d of got) {
      expect(d.raw).not.toContain(SECRET);
      expect(d.raw).not.toMatch(/secret|ha1/i);
      expect(keysOf(d.body.data).filter((k) => !/^[a-z0-9_]+$/.test(k))).toEqual([]);
    }
    const list = await waitFor(() => deliveries(createWebhook.webhook.id, adminKey), (l) => l.nodes.length === 2 && l.nodes.every((n) => n.status === "DELIVERED"));
    expect(list.nodes.map((n) => n.eventType)).toEqual(["voicemail.deleted", "voicemail.new"]);
  });

  it("retries with growing delays, ends FAILED after WEBHOOK_MAX_ATTEMPTS, and redelivers on request", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    let healthy = false;
    const hook = await receiver((d) => (healthy || d.body.type === "extension.updated" ? 200 : 503));
    const { createWebhook } = await ts.ok(CreateWebhookDocument, { input: { url: hook.url, events: ["*"] } }, adminKey);
    await createExtension(ts, tenant.id, { secret: SECRET }, adminKey);
    const failed = await waitFor(() => deliveries(createWebhook.webhook.id, adminKey), (l) => l.nodes[0]?.status === "FAILED");
    expect(failed.nodes[0]).toMatchObject({ attempts: 3, responseStatus: 503, error: "HTTP 503", nextAttemptAt: null });
    const attempts = hook.received.filter((d) => d.body.type === "extension.created");
    expect(attempts).toHaveLength(3);
    // The same delivery each time, about 100 ms then 200 ms apart (jitter ±20 %).
    expect(new Set(attempts.map((d) => d.body.id)).size).toBe(1);
    expect(attempts[1].at - attempts[0].at).toBeGreaterThanOrEqual(75);
    expect(attempts[2].at - attempts[1].at).toBeGreaterThanOrEqual(155);

    healthy = true;
    const { redeliverWebhookDelivery } = await ts.ok(RedeliverWebhookDeliveryDocument, { id: failed.nodes[0].id }, adminKey);
    expect(redeliverWebhookDelivery).toMatchObject({ status: "PENDING", attempts: 0, eventType: "extension.created" });
    await hook.until((r) => r.filter((d) => d.body.type === "extension.created").length === 4);
    const after = await waitFor(() => deliveries(createWebhook.webhook.id, adminKey), (l) => l.nodes[0].status === "DELIVERED");
    expect(after.nodes[0]).toMatchObject({ attempts: 1, responseStatus: 200 });
    expect(hook.received[3].body.id).toBe(attempts[0].body.id);
  });

  it("a dead receiver of one tenant does not delay another tenant's deliveries", async () => {
    const dead = await tenantWithKeys(ts);
    const alive = await tenantWithKeys(ts);
    const hanging = await receiver(() => "hang");
    const fine = await receiver();
    await ts.ok(CreateWebhookDocument, { input: { url: hanging.url, events: ["extension.created"] } }, dead.adminKey);
    await ts.ok(CreateWebhookDocument, { input: { url: fine.url, events: ["extension.created"] } }, alive.adminKey);
    for (let i = 0; i < 3; i++) await createExtension(ts, dead.tenant.id, { secret: SECRET }, dead.adminKey);
    await hanging.until((r) => r.length >= 1);
    for (let i = 0; i < 3; i++) await createExtension(ts, alive.tenant.id, { secret: SECRET }, alive.adminKey);
    // Well inside the 10 s the dead receiver holds its own webhook's first attempt.
    await fine.until((r) => r.length === 3, 5000);
    expect(hanging.received).toHaveLength(1);
  });

  it("refuses bad input on every field, private URLs unless allowed, and changes nothing", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    const bad = async (input: Record<string, unknown>) => {
      const res = await ts.gql(CreateWebhookDocument, { input: input as never }, adminKey);
      expect(res.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
      return Object.keys(res.errors![0].extensions!.fields!);
    };
    expect(await bad({ url: "ftp://example.com/x", events: ["*"] })).toEqual(["url"]);
    expect(await bad({ url: "not a url", events: ["*"] })).toEqual(["url"]);
    expect(await bad({ url: "http://127.0.0.1/x", events: ["call.exploded"] })).toEqual(["events"]);
    expect(await bad({ url: "http://127.0.0.1/x", events: [] })).toEqual(["events"]);
    expect((await ts.ok(TenantWebhooksDocument, { id: tenant.id }, adminKey)).tenant.webhooks).toEqual([]);

    // Without WEBHOOK_ALLOW_PRIVATE, loopback, private and link-local addresses are refused.
    const strict = await startTestServer({ redis: false });
    try {
      const key = await createKey(strict, "TENANT_ADMIN", (await tenantWithKeys(strict)).tenant.id);
      const inside = [
        ...["http://127.0.0.1:8080/hook", "http://10.1.2.3/", "http://169.254.169.254/latest", "http://[::1]/", "http://localhost/", "http://[::ffff:127.0.0.1]/"],
        // IPv4 inside IPv6 (mapped, compatible, NAT64, 6to4, Teredo) and other non-global IPv6.
        ...["http://[64:ff9b::a9fe:a9fe]/", "http://[64:ff9b::10.0.0.1]/", "http://[64:ff9b:1::8.8.8.8]/", "http://[::127.0.0.1]/", "http://[::ffff:a9fe:a9fe]/"],
        ...["http://[2002:7f00:1::]/", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "http://[fd00::1]/", "http://[fe80::1]/", "http://[ff02::1]/", "http://[::]/", "http://[2001:db8::1]/"],
      ];
      for (const url of inside) {
        const res = await strict.gql(CreateWebhookDocument, { input: { url, events: ["*"] } }, key);
        expect(res.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
        expect(Object.keys(res.errors![0].extensions!.fields!)).toEqual(["url"]);
      }
      // A public address is accepted (creation does not connect), and an update to an embedded one is refused and changes nothing.
      const { createWebhook } = await strict.ok(CreateWebhookDocument, { input: { url: "http://[2001:4860:4860::8888]/hook", events: ["*"] } }, key);
      const res = await strict.gql(UpdateWebhookDocument, { id: createWebhook.webhook.id, input: { url: "http://[64:ff9b::169.254.169.254]/" } }, key);
      expect(res.errors?.[0].extensions?.fields?.url?.[0]).toMatch(/64:ff9b::a9fe:a9fe/);
      expect((await strict.ok(TenantWebhooksDocument, { id: createWebhook.webhook.tenantId }, key)).tenant.webhooks.map((w) => w.url)).toEqual(["http://[2001:4860:4860::8888]/hook"]);
    } finally {
      await strict.stop();
    }
  });

  it("TENANT_ADMIN of the webhook's tenant or ADMIN: another tenant gets NOT_FOUND, a VIEWER FORBIDDEN", async () => {
    const owner = await tenantWithKeys(ts);
    const other = await tenantWithKeys(ts);
    const hook = await receiver();
    const { createWebhook } = await ts.ok(CreateWebhookDocument, { input: { url: hook.url, events: ["*"] } }, owner.adminKey);
    const id = createWebhook.webhook.id;
    await createExtension(ts, owner.tenant.id, { secret: SECRET }, owner.adminKey);
    const [delivery] = (await waitFor(() => deliveries(id, owner.adminKey), (l) => l.nodes.length === 1)).nodes;
    const codes = async (key: string) =>
      Promise.all([
        ts.gql(WebhookDeliveriesDocument, { id }, key),
        ts.gql(UpdateWebhookDocument, { id, input: { enabled: false } }, key),
        ts.gql(RotateWebhookSecretDocument, { id }, key),
        ts.gql(RedeliverWebhookDeliveryDocument, { id: delivery.id }, key),
        ts.gql(DeleteWebhookDocument, { id }, key),
        ts.gql(CreateWebhookDocument, { input: { tenantId: owner.tenant.id, url: hook.url, events: ["*"] } }, key),
      ]).then((all) => all.map((r) => r.errors?.[0].extensions?.code));
    expect(await codes(other.adminKey)).toEqual(["NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND"]);
    expect(await codes(owner.viewerKey)).toEqual(["FORBIDDEN", "FORBIDDEN", "FORBIDDEN", "FORBIDDEN", "FORBIDDEN", "FORBIDDEN"]);
    // Nothing changed.
    expect((await ts.ok(TenantWebhooksDocument, { id: owner.tenant.id }, owner.adminKey)).tenant.webhooks).toEqual([
      { id, url: hook.url, events: ["*"], enabled: true },
    ]);
    // The owner may: update, rotate (the new secret signs from now on), delete.
    expect((await ts.ok(UpdateWebhookDocument, { id, input: { events: ["extension.deleted"], description: "x" } }, owner.adminKey)).updateWebhook).toMatchObject({
      events: ["extension.deleted"],
      description: "x",
    });
    const { rotateWebhookSecret } = await ts.ok(RotateWebhookSecretDocument, { id }, owner.adminKey);
    expect(rotateWebhookSecret).not.toBe(createWebhook.secret);
    const doomed = await createExtension(ts, owner.tenant.id, { secret: SECRET }, owner.adminKey);
    await ts.http(`/api/extensions/${doomed.id}`, { method: "DELETE", key: owner.adminKey });
    const [deleted] = (await hook.until((r) => r.some((d) => d.body.type === "extension.deleted"))).filter((d) => d.body.type === "extension.deleted");
    expect(verify(deleted, rotateWebhookSecret)).toBe(true);
    expect(verify(deleted, createWebhook.secret)).toBe(false);
    expect((await ts.ok(DeleteWebhookDocument, { id }, owner.adminKey)).deleteWebhook).toBe(id);
    // Every change audited, the refused ones not at all, the secret only ever redacted.
    const audit = (await ts.ok(AuditLogDocument, { tenantId: owner.tenant.id, filter: { entityType: "webhook" }, first: 20 }, owner.adminKey)).auditLog.nodes;
    expect(audit.map((e) => e.action).reverse()).toEqual(["webhook.created", "webhook.updated", "webhook.secret_rotated", "webhook.deleted"]);
    expect(JSON.stringify(audit)).not.toContain(createWebhook.secret);
    expect(JSON.stringify(audit)).not.toContain(rotateWebhookSecret);
    expect(audit[3].changes).toMatchObject({ url: [null, hook.url], secret: [null, "[redacted]"] });
    expect(audit[2].changes).toEqual({ events: ["*", "extension.deleted"], description: [null, "x"] });
    expect((await ts.gql(WebhookDeliveriesDocument, { id }, owner.adminKey)).errors?.[0].extensions?.code).toBe("NOT_FOUND");
  });
});
