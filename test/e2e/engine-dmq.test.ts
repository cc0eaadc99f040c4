import { Redis } from "ioredis";
import { ActiveCallEventsDocument, CreateExtensionDocument, ExtensionDevicesDocument, RegistrationEventsDocument } from "../graphql/generated";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { createTenant } from "../support/factories";
import { subscribe, type LiveSubscription } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { answerCall, createEngineRole, freeUdpPort, sipsakRegister, startKamailio, startPhone, waitFor, type EngineRole, type Kamailio, type Phone } from "../support/sip";

/**
 * Contract §14, "a second Kamailio": two registrars started from the shipped configuration with
 * -A WITH_DMQ share their bindings (dmq + dmq_usrloc). A phone registered through one is reached
 * through the other; each registration and each expiry is reported once; with one node killed,
 * calls go on through the other.
 */
const real = requireReal("postgres") && requireReal("redis");
const suite = real ? describe : describe.skip;

type Registrations = LiveSubscription<import("../graphql/generated").RegistrationEventsSubscription>;
type Calls = LiveSubscription<import("../graphql/generated").ActiveCallEventsSubscription>;

suite("two Kamailio registrars sharing registrations (DMQ)", () => {
  let ts: TestServer;
  let role: EngineRole;
  let redis: Redis;
  let nodes: Kamailio[] = [];
  let tenant: { id: string; sipDomain: string };
  let registrations: Registrations;
  let calls: Calls;
  const phones: Phone[] = [];
  let stream: string;
  let logged = "";

  beforeAll(async () => {
    ts = await startTestServer();
    redis = new Redis(redisUrl()!);
    stream = `${ts.redisPrefix}pbx:events`;
    role = await createEngineRole(databaseUrl()!, ts.schema);
    const [dmq1, dmq2] = [await freeUdpPort(), await freeUdpPort()];
    const node = (own: number, peer: number) =>
      startKamailio({
        databaseUrl: role.url,
        redisUrl: redisUrl()!,
        streamKey: stream,
        defines: ["WITH_DMQ", `DMQ_PORT=${own}`, `DMQ_LISTEN=udp:127.0.0.1:${own}`, `DMQ_SERVER="sip:127.0.0.1:${own}"`, `DMQ_NOTIFY="sip:127.0.0.1:${peer}"`, "MIN_EXPIRES=2", "UL_TIMER=1", "RECONCILE_INTERVAL=2"],
      });
    nodes = [await node(dmq1, dmq2)];
    nodes.push(await node(dmq2, dmq1));
    tenant = await createTenant(ts);
    registrations = await subscribe(ts, RegistrationEventsDocument, { tenantId: tenant.id }, ts.adminKey);
    calls = await subscribe(ts, ActiveCallEventsDocument, { tenantId: tenant.id }, ts.adminKey);
  }, 60_000);
  afterAll(async () => {
    for (const phone of phones.splice(0)) await phone.stop();
    await registrations?.close();
    await calls?.close();
    for (const node of nodes) {
      logged += node.output();
      await node.stop();
    }
    await role?.drop();
    redis?.disconnect();
    await ts?.stop();
    // replication, expiries reported by one node, calls across nodes: none of it is an error
    expect(logged).not.toMatch(/\b(ERROR|CRITICAL):/);
  });

  const create = async (extensionNumber: string) =>
    (await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber, secret: `secret-${extensionNumber}-x`, displayName: `Ext ${extensionNumber}` } })).createExtension;
  const phone = async (node: Kamailio, number: string) => {
    const p = await startPhone(node.port, number, tenant.sipDomain, `secret-${number}-x`, `Phone ${number}`);
    phones.push(p);
    return p;
  };
  const registered = async (id: string) => (await ts.ok(ExtensionDevicesDocument, { id })).extension?.registered;
  const eventsFor = (number: string, type: string) =>
    registrations.received.map((m) => m.data?.registrationEvents).filter((e) => e?.extension.extensionNumber === number && e.type === type);
  /** The registration events the engines added to the stream for this extension and action. */
  const streamed = async (number: string, action: string) =>
    (await redis.xrange(stream, "-", "+"))
      .map(([, fields]) => JSON.parse(fields[1]) as Record<string, unknown>)
      .filter((e) => e.type === "registration" && e.extension === number && e.action === action);
  /** The AoRs in the latest location snapshot of the node listening on `port`. */
  const heldBy = async (port: number) => {
    const parts = (await redis.xrange(stream, "-", "+"))
      .map(([, fields]) => JSON.parse(fields[1]) as Record<string, unknown>)
      .filter((e) => e.type === "snapshot" && e.kind === "location" && e.node === `udp:127.0.0.1:${port}` && e.parts === 1);
    const last = parts.at(-1);
    return last ? Buffer.from(last.data as string, "base64").toString() : "";
  };

  it("a binding both nodes hold expires on both: the expiry is reported once", async () => {
    const c = await create("7503");
    const [n1, n2] = nodes;
    const reg = await sipsakRegister(n1.port, "7503", tenant.sipDomain, "secret-7503-x", 3);
    expect(reg.status).toBe(200);
    await waitFor("node 2 to hold 7503's binding", async () => (await heldBy(n2.port)).includes(`"7503@${tenant.sipDomain}"`) || undefined, 20_000);
    await waitFor("both nodes to have let 7503's binding go", async () => {
      const [one, two] = [await heldBy(n1.port), await heldBy(n2.port)];
      return (!one.includes(`"7503@`) && !two.includes(`"7503@`)) || undefined;
    }, 30_000);
    expect(await streamed("7503", "register")).toHaveLength(1);
    const expired = await streamed("7503", "unregister");
    expect(expired).toHaveLength(1);
    // whichever node reports it, the event is a valid one (a copied binding has no socket of its own)
    expect(expired[0]).toMatchObject({ transport: "udp", contact: expect.stringMatching(/^sip:7503@127\.0\.0\.1:/) });
    expect(await registered(c.id)).toBe(false);
  }, 60_000);

  it("a phone registered on one node is reached through the other, each registration reported once; one node killed, calls go on", async () => {
    const [a, b] = await Promise.all([create("7501"), create("7502")]);
    const [n1, n2] = nodes;
    const caller = await phone(n1, "7501");
    const callee = await phone(n2, "7502");
    await waitFor("both registered in the product", async () => ((await registered(a.id)) && (await registered(b.id))) || undefined, 20_000);
    // each node holds both bindings (its snapshot says so)
    await waitFor("node 1 to hold 7502's binding", async () => (await heldBy(n1.port)).includes(`"7502@${tenant.sipDomain}"`) || undefined, 20_000);
    await waitFor("node 2 to hold 7501's binding", async () => (await heldBy(n2.port)).includes(`"7501@${tenant.sipDomain}"`) || undefined, 20_000);
    expect(await streamed("7501", "register")).toHaveLength(1);
    expect(await streamed("7502", "register")).toHaveLength(1);
    expect(eventsFor("7501", "REGISTERED")).toHaveLength(1);
    expect(eventsFor("7502", "REGISTERED")).toHaveLength(1);

    // through node 1 to a phone registered on node 2
    await caller.command("/dial 7502");
    await waitFor("7502 to ring", () => /Incoming call/.test(callee.output()) || undefined, 20_000);
    await answerCall(callee);
    await waitFor("the call answered", () => calls.received.some((m) => m.data?.activeCallEvents.type === "ANSWERED") || undefined, 30_000).catch(async (error: Error) => {
      // where it stopped: the engine's call events on the stream, what the subscription got, node 1's log
      const engine = (await redis.xrange(stream, "-", "+")).map(([, fields]) => fields[1]).filter((e) => e.includes('"type":"call"'));
      const live = calls.received.map((m) => m.data?.activeCallEvents.type ?? JSON.stringify(m.errors));
      throw new Error(
        `${error.message}\ncall events on the stream: ${engine.join("\n")}\nsubscription got: ${live.join(", ")}\nnode 1 printed:\n${n1.output().slice(-4000)}`,
        { cause: error },
      );
    });
    await caller.command("/hangup");
    await waitFor("the call ended (both legs)", () => calls.received.filter((m) => m.data?.activeCallEvents.type === "ENDED").length >= 2 || undefined, 20_000);

    // node 2 killed: node 1 still reaches the phone that registered on node 2
    logged += n2.output();
    await n2.stop();
    nodes = [n1];
    await caller.command("/dial 7502");
    await waitFor("7502 to ring again through node 1", () => (callee.output().match(/Incoming call/g)?.length ?? 0) >= 2 || undefined, 20_000);
    await caller.command("/hangup");
    await waitFor("the second call ended", () => calls.received.filter((m) => m.data?.activeCallEvents.type === "ENDED").length >= 4 || undefined, 20_000);
    expect(await registered(b.id)).toBe(true);
  }, 150_000);
});
