import { randomBytes } from "node:crypto";
import { print } from "graphql";
import { Redis } from "ioredis";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import {
  CreateApiKeyDocument,
  CreateExtensionDocument,
  CreateTenantDocument,
  CreateWebhookDocument,
  ResumeRegistrationsDocument,
  WebhookDeliveriesDocument,
} from "../graphql/generated";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { createExtension, tenantWithKeys } from "../support/factories";
import { remoteTarget, subscribe } from "../support/live";
import { spawnServer, type ServerProcess } from "../support/process";
import { createTestSchema, dropTestSchema, startTestServer } from "../support/server";
import { startReceiver } from "../support/webhook-receiver";

/**
 * The outbox across real server processes on one PostgreSQL schema and one Redis: an instance
 * killed (SIGKILL) right after its commits loses none of their events, another relays them; a
 * subscriber resumes on another instance; webhook attempts are made once, by one instance.
 */
const real = requireReal("redis") && requireReal("postgres");
const suite = real ? describe : describe.skip;

suite("outbox across instances", () => {
  const adminKey = `test-admin-${randomBytes(12).toString("hex")}`;
  const prefix = `test:${randomBytes(4).toString("hex")}:`;
  let schema: string;
  let a: ServerProcess;
  let b: ServerProcess;
  let redis: Redis;

  const gql = async <T, V>(server: ServerProcess, doc: TypedDocumentNode<T, V>, variables: V, key = adminKey): Promise<T> => {
    const res = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ query: print(doc), variables }),
    });
    const body = (await res.json()) as { data: T; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const channelSubscribed = (channel: string) => async () => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const [, count] = (await redis.pubsub("NUMSUB", `${prefix}pbx:topic:${channel}`)) as [string, number];
      if (Number(count) > 0) return;
      if (Date.now() > deadline) throw new Error(`nobody subscribed to ${channel}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  beforeAll(async () => {
    schema = await createTestSchema();
    redis = new Redis(redisUrl()!);
    const env = {
      DATABASE_URL: databaseUrl()!,
      DATABASE_SCHEMA: schema,
      REDIS_URL: redisUrl()!,
      REDIS_PREFIX: prefix,
      ADMIN_API_KEY: adminKey,
      SECRET_ENCRYPTION_KEY: randomBytes(32).toString("hex"),
      WEBHOOK_ALLOW_PRIVATE: "true",
      EVENT_RELAY_POLL_MS: "200",
    };
    // A commits but relays nothing for ten minutes (the test hook): whatever it commits is published
    // only if another instance takes over its relay.
    [a, b] = await Promise.all([spawnServer({ ...env, EVENT_RELAY_DELAY_MS: "600000" }), spawnServer(env)]);
    // Compiling and starting two processes takes a while on a loaded machine.
  }, 180_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.quit();
    if (schema) await dropTestSchema(schema);
  });

  it("an instance killed right after its commits loses no event: another relays them, to subscribers and webhooks; a subscriber resumes there", async () => {
    const u = randomBytes(4).toString("hex");
    const tenant = (await gql(a, CreateTenantDocument, { input: { name: `K ${u}`, slug: `k-${u}`, sipDomain: `${u}.kill.test`, maxExtensions: 5 } })).createTenant;
    await gql(a, CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1001", secret: "s3cur3p@ss-long" } });
    const ingestKey = (await gql(a, CreateApiKeyDocument, { input: { name: "engine", role: "INGEST", tenantId: null } })).createApiKey.key;
    const viewerKey = (await gql(a, CreateApiKeyDocument, { input: { name: "wall", role: "VIEWER", tenantId: tenant.id } })).createApiKey.key;
    const hook = await startReceiver();
    try {
      await gql(b, CreateWebhookDocument, { input: { tenantId: tenant.id, url: hook.url, events: ["registration.registered"] } });
      const target = remoteTarget(b.url, channelSubscribed(`tenant.${tenant.id}.registrations`));
      const live = await subscribe(target, ResumeRegistrationsDocument, {}, viewerKey);

      const contacts = [1, 2, 3, 4, 5].map((n) => `sip:k${n}@10.9.0.1`);
      const res = await fetch(`${a.url}/api/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${ingestKey}` },
        body: JSON.stringify(contacts.map((contact) => ({ type: "registration", action: "register", domain: tenant.sipDomain, extension: "1001", contact, expires: 3600 }))),
      });
      expect(res.status).toBe(200);
      // Committed (the answer says so) and not yet published: kill -9.
      a.child.kill("SIGKILL");
      await a.exited;

      const got = [];
      for (let i = 0; i < 5; i++) got.push((await live.next(undefined, 10_000)).registrationEvents);
      expect(got.map((e) => e.device.contactUri)).toEqual(contacts);
      const seqs = got.map((e) => BigInt(e.sequence));
      expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1])).toBe(true);
      const delivered = await hook.until((r) => r.length >= 5);
      expect(delivered.map((d) => d.body.sequence)).toEqual(got.map((e) => e.sequence));
      await live.close();

      // Resume on the surviving instance after the 2nd: the 3rd to 5th from the log, then live.
      const resumed = await subscribe(target, ResumeRegistrationsDocument, { after: got[1].sequence }, viewerKey);
      const again = [];
      for (let i = 0; i < 3; i++) again.push((await resumed.next()).registrationEvents);
      expect(again.map((e) => e.sequence)).toEqual(got.slice(2).map((e) => e.sequence));
      await fetch(`${b.url}/api/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${ingestKey}` },
        body: JSON.stringify({ type: "registration", action: "register", domain: tenant.sipDomain, extension: "1001", contact: "sip:k6@10.9.0.1", expires: 3600 }),
      });
      expect((await resumed.next()).registrationEvents.device.contactUri).toBe("sip:k6@10.9.0.1");
      expect(resumed.received).toHaveLength(4);
      await resumed.close();
    } finally {
      await hook.close();
    }
  });
});

suite("webhook attempts with two servers", () => {
  it("each attempt is made by one instance, in sequence order per webhook", async () => {
    const env = { WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_MAX_ATTEMPTS: "3", WEBHOOK_RETRY_BASE_MS: "100", WEBHOOK_POLL_MS: "50" };
    const one = await startTestServer({ env });
    const two = await startTestServer({ env, shareSchemaOf: one });
    const seen = new Map<string, number>();
    // Every delivery fails its first attempt and succeeds at its second.
    const hook = await startReceiver((d) => {
      const n = (seen.get(d.body.id) ?? 0) + 1;
      seen.set(d.body.id, n);
      return n === 1 ? 500 : 200;
    });
    try {
      const { tenant, adminKey } = await tenantWithKeys(one);
      const { createWebhook } = await one.ok(CreateWebhookDocument, { input: { url: hook.url, events: ["extension.created"] } }, adminKey);
      for (let i = 0; i < 6; i++) await createExtension(i % 2 ? one : two, tenant.id, {}, adminKey);
      const deadline = Date.now() + 20_000;
      let nodes: Array<{ status: string; attempts: number; sequence: string }> = [];
      while (Date.now() < deadline) {
        nodes = (await one.ok(WebhookDeliveriesDocument, { id: createWebhook.webhook.id, first: 10 }, adminKey)).webhook.deliveries.nodes;
        if (nodes.length === 6 && nodes.every((n) => n.status === "DELIVERED")) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(nodes.map((n) => [n.status, n.attempts])).toEqual(Array(6).fill(["DELIVERED", 2]));
      // Exactly two requests per delivery (no attempt made twice by two instances).
      expect([...seen.values()]).toEqual([2, 2, 2, 2, 2, 2]);
      expect(hook.received).toHaveLength(12);
      // One webhook, in sequence order: a delivery is first tried only once the one before it is delivered.
      const firstTries = hook.received.filter((d, i) => hook.received.findIndex((e) => e.body.id === d.body.id) === i).map((d) => BigInt(d.body.sequence));
      expect(firstTries.every((s, i) => i === 0 || s > firstTries[i - 1])).toBe(true);
      const delivered = hook.received.filter((d, i) => hook.received.findIndex((e) => e.body.id === d.body.id) !== i).map((d) => BigInt(d.body.sequence));
      expect(delivered).toEqual(firstTries);
    } finally {
      await hook.close();
      await two.stop();
      await one.stop();
    }
  });
});
