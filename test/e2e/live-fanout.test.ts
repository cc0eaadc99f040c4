import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { callEvent, postEvents, registrationEvent } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { waitFor } from "../support/wait";
import { RedisPubSub } from "../../src/events/pubsub";
import { tenantTopic } from "../../src/subscriptions/topics";

/**
 * Issue 19 item 4 and issue 26 item 4: the cost of a live event does not grow with the number of
 * distinct documents that watch it (one execution per event per root field and scope), and the
 * number of distinct subscriptions one key, or one tenant, may hold is bounded with a clear error.
 */
const SECRET = "Fan-0ut-S3cret-7730";

interface Message {
  data?: Record<string, any> | null;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, unknown> }>;
}

/** Several subscriptions on one graphql-ws socket, each recording what it receives. */
class Socket {
  readonly client: Client;
  constructor(ts: TestServer, key: string) {
    this.client = createClient({ url: ts.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, connectionParams: { authorization: `Bearer ${key}` } });
  }

  subscribe(query: string, variables: Record<string, unknown> = {}) {
    const sub = { received: [] as Message[], failure: undefined as Message["errors"] | undefined, stop: () => undefined as void };
    sub.stop = this.client.subscribe(
      { query, variables },
      {
        next: (value) => void sub.received.push(value as Message),
        error: (error) => (sub.failure = Array.isArray(error) ? error : [{ message: String(error) }]),
        complete: () => undefined,
      },
    );
    return sub;
  }

  close() {
    return this.client.dispose();
  }
}

const gauge = async (ts: TestServer, name: "subscriptionsActive" | "subscriptionExecutions") => (await ts.server.metrics[name].get()).values[0]?.value ?? 0;
const settle = async (ts: TestServer) => {
  if (ts.server.pubsub instanceof RedisPubSub) await ts.server.pubsub.flushSubscriptions();
};
/** Waits until the server holds `count` subscriptions (each attached, its topic subscribed). */
const attached = async (ts: TestServer, count: number) => {
  await waitFor(`${count} subscriptions attached`, async () => (await gauge(ts, "subscriptionsActive")) === count);
  await settle(ts);
};

describe("fan-out cost", () => {
  let ts: TestServer;
  let ingestKey: string;
  beforeAll(async () => {
    ts = await startTestServer();
    ingestKey = await createKey(ts, "INGEST", null);
  });
  afterAll(() => ts?.stop());

  const FULL = "type tenantId occurredAt extension { id extensionNumber displayName } device { contactUri registered transport }";

  /** 100 documents that differ in aliases, fragments, field order, subsets, variables and directives. */
  function distinctDocuments(): Array<{ query: string; variables?: Record<string, unknown>; expect: (full: any) => unknown }> {
    return Array.from({ length: 100 }, (_, i) => {
      switch (i % 5) {
        case 0:
          return { query: `subscription { a${i}: registrationEvents { ${FULL} } }`, expect: (f: any) => ({ [`a${i}`]: f }) };
        case 1:
          return {
            query: `subscription S${i} { r${i}: registrationEvents { ...F${i} } } fragment F${i} on RegistrationEvent { t${i}: type ext: extension { n: extensionNumber id } again: extension { id } }`,
            expect: (f: any) => ({ [`r${i}`]: { [`t${i}`]: f.type, ext: { n: f.extension.extensionNumber, id: f.extension.id }, again: { id: f.extension.id } } }),
          };
        case 2:
          return {
            query: `subscription { registrationEvents { d${i}: device { registered contactUri } type k: type } }`,
            expect: (f: any) => ({ registrationEvents: { [`d${i}`]: { registered: f.device.registered, contactUri: f.device.contactUri }, type: f.type, k: f.type } }),
          };
        case 3:
          return {
            query: `subscription($inc: Boolean!) { e${i}: registrationEvents { type occurredAt @include(if: $inc) extension @skip(if: true) { id } } }`,
            variables: { inc: i % 2 === 1 },
            expect: (f: any) => ({ [`e${i}`]: i % 2 === 1 ? { type: f.type, occurredAt: f.occurredAt } : { type: f.type } }),
          };
        default:
          return {
            query: `subscription { w${i}: registrationEvents { ... on RegistrationEvent { device { transport } } tenantId __typename } }`,
            expect: (f: any) => ({ [`w${i}`]: { device: { transport: f.device.transport }, tenantId: f.tenantId, __typename: "RegistrationEvent" } }),
          };
      }
    });
  }

  it("100 distinct aliased documents cost one execution per event, as one does, and each gets its own shape", async () => {
    const { tenant, viewerKey } = await tenantWithKeys(ts);
    await createExtension(ts, tenant.id, { extensionNumber: "1001", displayName: "Front desk", secret: SECRET });
    const base = await gauge(ts, "subscriptionsActive");
    const sockets = [new Socket(ts, viewerKey), new Socket(ts, viewerKey), new Socket(ts, viewerKey)];
    try {
      // One subscription: one execution per event.
      const plain = sockets[0].subscribe(`subscription { registrationEvents { ${FULL} } }`);
      await attached(ts, base + 1);
      let before = await gauge(ts, "subscriptionExecutions");
      await postEvents(ts, ingestKey, registrationEvent(tenant.sipDomain, "1001"));
      await waitFor("the first event", () => plain.received.length === 1);
      expect(await gauge(ts, "subscriptionExecutions")).toBe(before + 1);

      // 100 more, all distinct: still one execution per event.
      const documents = distinctDocuments();
      const subs = documents.map((d, i) => sockets[1 + (i % 2)].subscribe(d.query, d.variables));
      await attached(ts, base + 101);
      before = await gauge(ts, "subscriptionExecutions");
      await postEvents(ts, ingestKey, registrationEvent(tenant.sipDomain, "1001", { contact: "sip:1001@10.0.0.9:5060", transport: "tcp" }));
      await waitFor("the second event everywhere", () => plain.received.length === 2 && subs.every((s) => s.received.length === 1));
      expect(await gauge(ts, "subscriptionExecutions")).toBe(before + 1);

      const full = plain.received[1].data!.registrationEvents;
      expect(full).toMatchObject({ type: "REGISTERED", tenantId: tenant.id, extension: { extensionNumber: "1001", displayName: "Front desk" }, device: { contactUri: "sip:1001@10.0.0.9:5060", transport: "TCP" } });
      // Each answer is exactly what that document asks for: its keys, its order, nothing more.
      subs.forEach((s, i) => {
        expect(s.received[0].errors).toBeUndefined();
        expect(JSON.stringify(s.received[0].data)).toBe(JSON.stringify(documents[i].expect(full)));
      });
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
      await attached(ts, base);
    }
  });

  it("per-extension subscriptions: an event executes once, for the one extension it concerns", async () => {
    const { tenant, viewerKey } = await tenantWithKeys(ts);
    const extensions = [];
    for (let i = 0; i < 10; i++) extensions.push(await createExtension(ts, tenant.id, { extensionNumber: String(2000 + i), secret: SECRET }));
    const base = await gauge(ts, "subscriptionsActive");
    const socket = new Socket(ts, viewerKey);
    try {
      const subs = extensions.map((e, i) => socket.subscribe(`subscription($e: ID) { c${i}: activeCallEvents(extensionId: $e) { type call { callId extension { extensionNumber } } } }`, { e: e.id }));
      await attached(ts, base + 10);
      const before = await gauge(ts, "subscriptionExecutions");
      await postEvents(ts, ingestKey, callEvent(tenant.sipDomain, "2003", "start", "fan-call-1"));
      await waitFor("the call event", () => subs[3].received.length === 1);
      expect(subs[3].received[0].data).toEqual({ c3: { type: "STARTED", call: { callId: "fan-call-1", extension: { extensionNumber: "2003" } } } });
      expect(await gauge(ts, "subscriptionExecutions")).toBe(before + 1);
      expect(subs.filter((s) => s.received.length > 0)).toHaveLength(1);
    } finally {
      await socket.close();
      await attached(ts, base);
    }
  });

  it("when the shared execution fails, each document gets the errors of its own selection, under its own aliases", async () => {
    const { tenant, viewerKey } = await tenantWithKeys(ts);
    const extension = await createExtension(ts, tenant.id, { extensionNumber: "3001", secret: SECRET });
    const base = await gauge(ts, "subscriptionsActive");
    const socket = new Socket(ts, viewerKey);
    try {
      const withDevice = socket.subscribe(`subscription { mine: registrationEvents { type dev: device { contactUri } } }`);
      const without = socket.subscribe(`subscription { other: registrationEvents { type tenantId } }`);
      await attached(ts, base + 2);
      // A payload without its device (Device! is non-null) breaks only the selections that ask for it.
      const broken = { type: "REGISTERED", tenantId: Number(tenant.id), extension: { ...extension, id: Number(extension.id), tenantId: Number(tenant.id) }, device: null, occurredAt: new Date().toISOString() };
      await ts.server.pubsub.publish(tenantTopic("registrations", Number(tenant.id)), broken);
      await waitFor("both answers", () => withDevice.received.length === 1 && without.received.length === 1);
      expect(without.received[0]).toEqual({ data: { other: { type: "REGISTERED", tenantId: tenant.id } } });
      expect(withDevice.received[0].data).toBeNull();
      expect(withDevice.received[0].errors?.[0].path).toEqual(["mine", "dev"]);
    } finally {
      await socket.close();
      await attached(ts, base);
    }
  });

  it("a tenant's subscribers never receive another tenant's event, even one put on their topic", async () => {
    const a = await tenantWithKeys(ts);
    const b = await tenantWithKeys(ts);
    const extension = await createExtension(ts, a.tenant.id, { extensionNumber: "4001", secret: SECRET });
    const base = await gauge(ts, "subscriptionsActive");
    const socket = new Socket(ts, a.viewerKey);
    try {
      const sub = socket.subscribe(`subscription { registrationEvents { tenantId extension { extensionNumber } } }`);
      await attached(ts, base + 1);
      const foreign = { type: "REGISTERED", tenantId: Number(b.tenant.id), extension: { ...extension, id: Number(extension.id), tenantId: Number(b.tenant.id) }, device: {}, occurredAt: new Date().toISOString() };
      await ts.server.pubsub.publish(tenantTopic("registrations", Number(a.tenant.id)), foreign);
      await postEvents(ts, ingestKey, registrationEvent(a.tenant.sipDomain, "4001"));
      await waitFor("the tenant's own event", () => sub.received.length >= 1);
      // One socket delivers in order: the foreign event, published first, would have come first.
      expect(sub.received.map((m) => m.data?.registrationEvents.tenantId)).toEqual([a.tenant.id]);
    } finally {
      await socket.close();
      await attached(ts, base);
    }
  });
});

describe("distinct subscription limits", () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ env: { SUBSCRIPTION_MAX_DISTINCT_PER_KEY: "3", SUBSCRIPTION_MAX_DISTINCT_PER_TENANT: "4" } });
  });
  afterAll(() => ts?.stop());

  const doc = (alias: string) => `subscription { ${alias}: registrationEvents { type } }`;

  it("refuses a key's and a tenant's distinct subscription past the limit with an error naming it; the same document again, and other tenants, still pass", async () => {
    const a = await tenantWithKeys(ts);
    const b = await tenantWithKeys(ts);
    const ingestKey = await createKey(ts, "INGEST", null);
    await createExtension(ts, a.tenant.id, { extensionNumber: "1001", secret: SECRET });
    const secondKeyOfA = await createKey(ts, "VIEWER", a.tenant.id);
    const base = await gauge(ts, "subscriptionsActive");
    const one = new Socket(ts, a.viewerKey);
    const two = new Socket(ts, a.viewerKey);
    const three = new Socket(ts, secondKeyOfA);
    const other = new Socket(ts, b.viewerKey);
    try {
      const held = ["d1", "d2", "d3"].map((alias) => one.subscribe(doc(alias)));
      await attached(ts, base + 3);
      const refused = one.subscribe(doc("d4"));
      await waitFor("the key's refusal", () => refused.failure);
      expect(refused.failure![0].message).toMatch(/at most 3, SUBSCRIPTION_MAX_DISTINCT_PER_KEY/);
      expect(refused.failure![0].extensions?.code).toBe("BAD_REQUEST");
      // The same document is not a new distinct subscription: another socket of the key may have it.
      const again = two.subscribe(doc("d1"));
      await attached(ts, base + 4);
      // The socket that was refused still serves what it holds.
      await postEvents(ts, ingestKey, registrationEvent(a.tenant.sipDomain, "1001"));
      await waitFor("the held subscriptions' event", () => held.every((s) => s.received.length === 1) && again.received.length === 1);
      expect(held.map((s) => s.received[0].data)).toEqual([{ d1: { type: "REGISTERED" } }, { d2: { type: "REGISTERED" } }, { d3: { type: "REGISTERED" } }]);

      // Letting one go makes room again.
      held[1].stop();
      await attached(ts, base + 3);
      one.subscribe(doc("d4"));
      await attached(ts, base + 4);

      // The tenant (d1, d3, d4 held): a second key of it may add one more, not two.
      three.subscribe(doc("d5"));
      await attached(ts, base + 5);
      const pastTenant = three.subscribe(doc("d6"));
      await waitFor("the tenant's refusal", () => pastTenant.failure);
      expect(pastTenant.failure![0].message).toMatch(/at most 4, SUBSCRIPTION_MAX_DISTINCT_PER_TENANT/);
      // Another tenant has its own room.
      for (const alias of ["d1", "d2", "d3"]) other.subscribe(doc(alias));
      await attached(ts, base + 8);
    } finally {
      await Promise.all([one, two, three, other].map((s) => s.close()));
      await attached(ts, base);
    }
  });
});
