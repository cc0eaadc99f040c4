import "reflect-metadata";
import {
  AddQueueAgentDocument,
  CreateQueueDocument,
  DeleteExtensionDocument,
  DeleteQueueDocument,
  DeleteTenantDocument,
  ExtensionDevicesDocument,
  ExtensionDocument,
  ExtensionMembershipsDocument,
  QueueDocument,
  QueuesDocument,
  RemoveQueueAgentDocument,
  TenantDocument,
  TenantQueuesDocument,
  UpdateQueueAgentDocument,
  UpdateQueueDocument,
  type QueueStrategy,
} from "../graphql/generated";
import { createExtension, createKey, tenantWithKeys, uniq } from "../support/factories";
import { startTestServer, type GraphQLResponse, type TestServer } from "../support/server";

let ts: TestServer;
let a: Awaited<ReturnType<typeof tenantWithKeys>>;
let b: Awaited<ReturnType<typeof tenantWithKeys>>;
let ingestKey: string;

beforeAll(async () => {
  ts = await startTestServer();
  a = await tenantWithKeys(ts, { name: "Tenant A" });
  b = await tenantWithKeys(ts, { name: "Tenant B" });
  ingestKey = await createKey(ts, "INGEST", null);
});
afterAll(() => ts?.stop());

const codeOf = (r: GraphQLResponse<unknown>) => r.errors?.[0]?.extensions?.code;
const fieldsOf = (r: GraphQLResponse<unknown>) => r.errors?.[0]?.extensions?.fields;
const MISSING_ID = "2147483000";
let numberSeq = 600;
const nextQueueNumber = () => String(++numberSeq);

async function createQueue(tenantId: string, input: { name?: string; number?: string; strategy?: QueueStrategy } = {}, key = a.adminKey) {
  const { createQueue } = await ts.ok(
    CreateQueueDocument,
    { input: { tenantId, name: input.name ?? `Queue ${uniq()}`, number: input.number ?? nextQueueNumber(), strategy: input.strategy } },
    key,
  );
  return createQueue;
}

async function enrol(queueId: string, extensionId: string, penalty?: number, key = a.adminKey) {
  const { addQueueAgent } = await ts.ok(AddQueueAgentDocument, { queueId, extensionId, penalty }, key);
  return addQueueAgent;
}

/** The queue with its agents as the admin sees it: the reference for "changed nothing". */
const snapshot = async (id: string) => (await ts.ok(QueueDocument, { id })).queue;
const tenantQueues = async (tenantId: string) => (await ts.ok(QueuesDocument, { tenantId })).queues;

describe("queues", () => {
  it("creates a queue (RING_ALL by default) that its tenant's keys read back, alone and through the tenant", async () => {
    const queue = await createQueue(a.tenant.id, { name: "Support", number: "7000" });
    expect(queue).toMatchObject({ tenantId: a.tenant.id, name: "Support", number: "7000", strategy: "RING_ALL" });
    const read = await ts.ok(QueueDocument, { id: queue.id }, a.viewerKey);
    expect(read.queue).toMatchObject({ id: queue.id, tenant: { id: a.tenant.id }, agents: [] });
    expect((await ts.ok(QueuesDocument, {}, a.viewerKey)).queues.map((q) => q.id)).toContain(queue.id);
    const viaTenant = await ts.ok(TenantQueuesDocument, { id: a.tenant.id }, a.adminKey);
    expect(viaTenant.tenant.queues.map((q) => q.id)).toContain(queue.id);
  });

  it("accepts every strategy of the contract, on create and on update", async () => {
    const strategies: QueueStrategy[] = ["RING_ALL", "ROUND_ROBIN", "LEAST_RECENT", "FEWEST_CALLS", "RANDOM", "LINEAR"];
    for (const [i, strategy] of strategies.entries()) {
      const queue = await createQueue(a.tenant.id, { strategy });
      expect(queue.strategy).toBe(strategy);
      const next = strategies[(i + 1) % strategies.length];
      const { updateQueue } = await ts.ok(UpdateQueueDocument, { id: queue.id, input: { strategy: next } }, a.adminKey);
      expect(updateQueue.strategy).toBe(next);
      expect((await snapshot(queue.id)).strategy).toBe(next);
    }
  });

  it("refuses bad input with a message per field and creates nothing", async () => {
    const before = await tenantQueues(a.tenant.id);
    const cases: Array<[{ name: string; number: string }, string[]]> = [
      [{ name: "", number: "7100" }, ["name"]],
      [{ name: "x".repeat(256), number: "7101" }, ["name"]],
      [{ name: "Sales", number: "71a" }, ["number"]],
      [{ name: "Sales", number: "1".repeat(21) }, ["number"]],
      [{ name: "Sales", number: "" }, ["number"]],
      [{ name: "", number: "+7102" }, ["name", "number"]],
    ];
    for (const [input, fields] of cases) {
      const refused = await ts.gql(CreateQueueDocument, { input: { tenantId: a.tenant.id, ...input } }, a.adminKey);
      expect(codeOf(refused)).toBe("BAD_USER_INPUT");
      expect(Object.keys(fieldsOf(refused) ?? {}).sort()).toEqual(fields);
    }
    expect(fieldsOf(await ts.gql(CreateQueueDocument, { input: { tenantId: a.tenant.id, name: "Sales", number: "71a" } }, a.adminKey))).toEqual({
      number: ["The queue number must be 1 to 20 digits."],
    });
    expect(await tenantQueues(a.tenant.id)).toEqual(before);
  });

  it("refuses a number taken in the tenant, and allows it in another tenant", async () => {
    await createQueue(a.tenant.id, { number: "7200" });
    const before = await tenantQueues(a.tenant.id);
    const taken = await ts.gql(CreateQueueDocument, { input: { tenantId: a.tenant.id, name: "Again", number: "7200" } }, a.adminKey);
    expect(codeOf(taken)).toBe("BAD_USER_INPUT");
    expect(fieldsOf(taken)).toEqual({ number: ["The queue number has already been taken."] });
    expect(await tenantQueues(a.tenant.id)).toEqual(before);
    await expect(createQueue(b.tenant.id, { number: "7200" }, b.adminKey)).resolves.toMatchObject({ number: "7200", tenantId: b.tenant.id });
  });

  it("answers NOT_FOUND to an ADMIN naming a tenant that does not exist", async () => {
    const refused = await ts.gql(CreateQueueDocument, { input: { tenantId: MISSING_ID, name: "Nowhere", number: "7300" } });
    expect(codeOf(refused)).toBe("NOT_FOUND");
    expect(fieldsOf(refused)).toEqual({ tenantId: ["The selected tenant does not exist."] });
  });

  it("updates name and number; a taken number or a bad value changes nothing", async () => {
    const other = await createQueue(a.tenant.id, { number: "7400" });
    const queue = await createQueue(a.tenant.id, { name: "Billing", number: "7401" });
    const before = await snapshot(queue.id);
    const taken = await ts.gql(UpdateQueueDocument, { id: queue.id, input: { name: "Renamed", number: other.number } }, a.adminKey);
    expect(fieldsOf(taken)).toEqual({ number: ["The queue number has already been taken."] });
    const bad = await ts.gql(UpdateQueueDocument, { id: queue.id, input: { name: "", number: "x" } }, a.adminKey);
    expect(Object.keys(fieldsOf(bad) ?? {}).sort()).toEqual(["name", "number"]);
    expect(await snapshot(queue.id)).toEqual(before);
    const { updateQueue } = await ts.ok(UpdateQueueDocument, { id: queue.id, input: { name: "Billing 2", number: "7402" } }, a.adminKey);
    expect(updateQueue).toMatchObject({ id: queue.id, name: "Billing 2", number: "7402", strategy: before.strategy });
    expect(new Date(updateQueue.updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(before.updatedAt).getTime());
  });

  it("lets a VIEWER read but not write, and an INGEST key do neither", async () => {
    const queue = await createQueue(a.tenant.id);
    const before = await snapshot(queue.id);
    for (const key of [a.viewerKey, ingestKey]) {
      expect(codeOf(await ts.gql(CreateQueueDocument, { input: { tenantId: a.tenant.id, name: "No", number: "7500" } }, key))).toBe("FORBIDDEN");
      expect(codeOf(await ts.gql(UpdateQueueDocument, { id: queue.id, input: { name: "No" } }, key))).toBe("FORBIDDEN");
      expect(codeOf(await ts.gql(DeleteQueueDocument, { id: queue.id }, key))).toBe("FORBIDDEN");
      // The role is refused before any look-up, so a missing id answers the same.
      expect(codeOf(await ts.gql(DeleteQueueDocument, { id: MISSING_ID }, key))).toBe("FORBIDDEN");
    }
    expect(codeOf(await ts.gql(QueueDocument, { id: queue.id }, ingestKey))).toBe("FORBIDDEN");
    expect(codeOf(await ts.gql(QueuesDocument, { tenantId: a.tenant.id }, ingestKey))).toBe("FORBIDDEN");
    expect(await snapshot(queue.id)).toEqual(before);
    expect((await tenantQueues(a.tenant.id)).some((q) => q.number === "7500")).toBe(false);
  });
});

describe("queue agents", () => {
  it("enrols an extension of the tenant with penalty 0 by default, seen from the queue and from the extension", async () => {
    const queue = await createQueue(a.tenant.id, { name: "Front desk" });
    const extension = await createExtension(ts, a.tenant.id);
    const agent = await enrol(queue.id, extension.id);
    expect(agent).toMatchObject({
      tenantId: a.tenant.id,
      queueId: queue.id,
      extensionId: extension.id,
      penalty: 0,
      paused: false,
      queue: { id: queue.id, name: "Front desk" },
      extension: { id: extension.id, extensionNumber: extension.extensionNumber },
    });
    const read = await ts.ok(QueueDocument, { id: queue.id }, a.viewerKey);
    expect(read.queue.agents).toEqual([expect.objectContaining({ id: agent.id, extension: { id: extension.id, extensionNumber: extension.extensionNumber } })]);
    const memberships = await ts.ok(ExtensionMembershipsDocument, { id: extension.id }, a.viewerKey);
    expect(memberships.extension.queueMemberships).toEqual([expect.objectContaining({ id: agent.id, queue: { id: queue.id, name: "Front desk", number: queue.number } })]);
  });

  it("refuses a negative penalty and enrols nothing", async () => {
    const queue = await createQueue(a.tenant.id);
    const extension = await createExtension(ts, a.tenant.id);
    const refused = await ts.gql(AddQueueAgentDocument, { queueId: queue.id, extensionId: extension.id, penalty: -1 }, a.adminKey);
    expect(codeOf(refused)).toBe("BAD_USER_INPUT");
    expect(fieldsOf(refused)).toEqual({ penalty: ["The penalty must be a whole number of at least 0."] });
    expect((await snapshot(queue.id)).agents).toEqual([]);
  });

  it("refuses enrolling the same extension twice in one queue, also when the requests race", async () => {
    const queue = await createQueue(a.tenant.id);
    const extension = await createExtension(ts, a.tenant.id);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => ts.gql(AddQueueAgentDocument, { queueId: queue.id, extensionId: extension.id, penalty: i }, a.adminKey)),
    );
    expect(results.filter((r) => r.data?.addQueueAgent)).toHaveLength(1);
    for (const refused of results.filter((r) => r.errors)) {
      expect(codeOf(refused)).toBe("BAD_USER_INPUT");
      expect(fieldsOf(refused)).toEqual({ extensionId: ["The extension is already an agent of this queue."] });
    }
    expect((await snapshot(queue.id)).agents).toHaveLength(1);
    // The same extension may be an agent of another queue.
    await expect(enrol((await createQueue(a.tenant.id)).id, extension.id)).resolves.toMatchObject({ extensionId: extension.id });
  });

  it("refuses an extension of another tenant as NOT_FOUND, like a missing one, even for an ADMIN", async () => {
    const queue = await createQueue(a.tenant.id);
    const foreign = await createExtension(ts, b.tenant.id);
    for (const key of [ts.adminKey, a.adminKey]) {
      const refused = await ts.gql(AddQueueAgentDocument, { queueId: queue.id, extensionId: foreign.id }, key);
      const missing = await ts.gql(AddQueueAgentDocument, { queueId: queue.id, extensionId: MISSING_ID }, key);
      expect(codeOf(refused)).toBe("NOT_FOUND");
      expect(refused.errors).toEqual(missing.errors);
    }
    expect((await snapshot(queue.id)).agents).toEqual([]);
    expect((await ts.ok(ExtensionMembershipsDocument, { id: foreign.id })).extension.queueMemberships).toEqual([]);
  });

  it("answers NOT_FOUND for a queue that does not exist", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    const refused = await ts.gql(AddQueueAgentDocument, { queueId: MISSING_ID, extensionId: extension.id }, a.adminKey);
    expect(codeOf(refused)).toBe("NOT_FOUND");
    expect(refused.errors?.[0].message).toBe("Queue not found.");
  });

  it("updates penalty and paused; absent keeps a value; a negative penalty changes nothing", async () => {
    const queue = await createQueue(a.tenant.id);
    const agent = await enrol(queue.id, (await createExtension(ts, a.tenant.id)).id, 2);
    const paused = await ts.ok(UpdateQueueAgentDocument, { id: agent.id, paused: true }, a.adminKey);
    expect(paused.updateQueueAgent).toMatchObject({ id: agent.id, penalty: 2, paused: true });
    const penalised = await ts.ok(UpdateQueueAgentDocument, { id: agent.id, penalty: 5, paused: null }, a.adminKey);
    expect(penalised.updateQueueAgent).toMatchObject({ penalty: 5, paused: true });
    const refused = await ts.gql(UpdateQueueAgentDocument, { id: agent.id, penalty: -3, paused: false }, a.adminKey);
    expect(codeOf(refused)).toBe("BAD_USER_INPUT");
    expect(fieldsOf(refused)).toEqual({ penalty: ["The penalty must be a whole number of at least 0."] });
    expect((await snapshot(queue.id)).agents).toEqual([expect.objectContaining({ id: agent.id, penalty: 5, paused: true })]);
    expect(codeOf(await ts.gql(UpdateQueueAgentDocument, { id: MISSING_ID, paused: true }, a.adminKey))).toBe("NOT_FOUND");
  });

  it("lists a queue's agents lower penalty first", async () => {
    const queue = await createQueue(a.tenant.id);
    const penalties = [3, 0, 7, 1];
    for (const penalty of penalties) await enrol(queue.id, (await createExtension(ts, a.tenant.id)).id, penalty);
    expect((await snapshot(queue.id)).agents.map((agent) => agent.penalty)).toEqual([0, 1, 3, 7]);
  });

  it("removes an agent and keeps the extension; removing it again is NOT_FOUND", async () => {
    const queue = await createQueue(a.tenant.id);
    const extension = await createExtension(ts, a.tenant.id);
    const agent = await enrol(queue.id, extension.id);
    expect((await ts.ok(RemoveQueueAgentDocument, { id: agent.id }, a.adminKey)).removeQueueAgent).toBe(agent.id);
    expect((await snapshot(queue.id)).agents).toEqual([]);
    expect((await ts.ok(ExtensionDocument, { id: extension.id })).extension.id).toBe(extension.id);
    expect(codeOf(await ts.gql(RemoveQueueAgentDocument, { id: agent.id }, a.adminKey))).toBe("NOT_FOUND");
  });

  it("lets a VIEWER read agents but neither add, change nor remove one", async () => {
    const queue = await createQueue(a.tenant.id);
    const extension = await createExtension(ts, a.tenant.id);
    const agent = await enrol(queue.id, extension.id, 1);
    const other = await createExtension(ts, a.tenant.id);
    const before = await snapshot(queue.id);
    for (const key of [a.viewerKey, ingestKey]) {
      expect(codeOf(await ts.gql(AddQueueAgentDocument, { queueId: queue.id, extensionId: other.id }, key))).toBe("FORBIDDEN");
      expect(codeOf(await ts.gql(UpdateQueueAgentDocument, { id: agent.id, penalty: 9 }, key))).toBe("FORBIDDEN");
      expect(codeOf(await ts.gql(RemoveQueueAgentDocument, { id: agent.id }, key))).toBe("FORBIDDEN");
    }
    expect(await snapshot(queue.id)).toEqual(before);
  });
});

describe("deleting queues, extensions and tenants", () => {
  it("deleting a queue removes its memberships and leaves the extensions", async () => {
    const queue = await createQueue(a.tenant.id);
    const kept = await createQueue(a.tenant.id);
    const extension = await createExtension(ts, a.tenant.id);
    await enrol(queue.id, extension.id);
    const keptAgent = await enrol(kept.id, extension.id);
    expect((await ts.ok(DeleteQueueDocument, { id: queue.id }, a.adminKey)).deleteQueue).toBe(queue.id);
    expect(codeOf(await ts.gql(QueueDocument, { id: queue.id }))).toBe("NOT_FOUND");
    const memberships = await ts.ok(ExtensionMembershipsDocument, { id: extension.id });
    expect(memberships.extension.queueMemberships.map((m) => m.id)).toEqual([keptAgent.id]);
    const [{ count }] = await ts.server.db.dataSource.query(`SELECT count(*)::int AS count FROM queue_agent WHERE queue_id = $1`, [Number(queue.id)]);
    expect(count).toBe(0);
    expect(codeOf(await ts.gql(DeleteQueueDocument, { id: queue.id }, a.adminKey))).toBe("NOT_FOUND");
  });

  it("refuses deleting an agent extension with CONFLICT naming its queues, and changes nothing", async () => {
    const sales = await createQueue(a.tenant.id, { name: `Sales ${uniq()}` });
    const support = await createQueue(a.tenant.id, { name: `Support ${uniq()}` });
    const extension = await createExtension(ts, a.tenant.id);
    await enrol(sales.id, extension.id);
    await enrol(support.id, extension.id);
    const refused = await ts.gql(DeleteExtensionDocument, { id: extension.id }, a.adminKey);
    expect(codeOf(refused)).toBe("CONFLICT");
    expect(refused.errors?.[0].message).toContain(sales.name);
    expect(refused.errors?.[0].message).toContain(support.name);
    expect(refused.errors?.[0].extensions?.queues).toEqual(
      expect.arrayContaining([
        { id: Number(sales.id), name: sales.name, number: sales.number },
        { id: Number(support.id), name: support.name, number: support.number },
      ]),
    );
    expect((await ts.ok(ExtensionMembershipsDocument, { id: extension.id })).extension.queueMemberships).toHaveLength(2);
    expect((await ts.gql(DeleteExtensionDocument, { id: extension.id, force: false }, a.adminKey)).errors?.[0].extensions?.code).toBe("CONFLICT");
  });

  it("force unenrols the extension and deletes it with its devices; the queues stay", async () => {
    const queue = await createQueue(a.tenant.id);
    const extension = await createExtension(ts, a.tenant.id);
    const colleague = await createExtension(ts, a.tenant.id);
    await enrol(queue.id, extension.id);
    const colleagueAgent = await enrol(queue.id, colleague.id);
    await insertDevice(extension.id);
    expect((await ts.ok(DeleteExtensionDocument, { id: extension.id, force: true }, a.adminKey)).deleteExtension).toBe(extension.id);
    expect(codeOf(await ts.gql(ExtensionDocument, { id: extension.id }))).toBe("NOT_FOUND");
    expect((await snapshot(queue.id)).agents.map((agent) => agent.id)).toEqual([colleagueAgent.id]);
    expect(await devicesOf(extension.id)).toBe(0);
  });

  it("deletes a non-agent extension's devices with it", async () => {
    const extension = await createExtension(ts, a.tenant.id);
    await insertDevice(extension.id);
    await insertDevice(extension.id);
    expect((await ts.ok(ExtensionDevicesDocument, { id: extension.id })).extension.devices).toHaveLength(2);
    await ts.ok(DeleteExtensionDocument, { id: extension.id }, a.adminKey);
    expect(await devicesOf(extension.id)).toBe(0);
  });

  it("racing enrolments and deletes of one extension never leave a dangling membership", async () => {
    for (let round = 0; round < 4; round++) {
      const queues = [await createQueue(a.tenant.id), await createQueue(a.tenant.id)];
      const extension = await createExtension(ts, a.tenant.id);
      const [enrolled, other, deleted] = await Promise.all([
        ts.gql(AddQueueAgentDocument, { queueId: queues[0].id, extensionId: extension.id }, a.adminKey),
        ts.gql(AddQueueAgentDocument, { queueId: queues[1].id, extensionId: extension.id }, a.adminKey),
        ts.gql(DeleteExtensionDocument, { id: extension.id }, a.adminKey),
      ]);
      const agents = [...(await snapshot(queues[0].id)).agents, ...(await snapshot(queues[1].id)).agents];
      const exists = !(await ts.gql(ExtensionDocument, { id: extension.id })).errors;
      if (deleted.data?.deleteExtension) {
        // The delete went first: both enrolments found no extension.
        expect(exists).toBe(false);
        expect(agents).toEqual([]);
        for (const refused of [enrolled, other]) expect(codeOf(refused)).toBe("NOT_FOUND");
      } else {
        expect(codeOf(deleted)).toBe("CONFLICT");
        expect(exists).toBe(true);
        expect(agents.length).toBe([enrolled, other].filter((r) => r.data?.addQueueAgent).length);
        expect(agents.length).toBeGreaterThan(0);
      }
    }
  });

  it("the database itself refuses deleting an enrolled extension (invariant 3's backstop)", async () => {
    const queue = await createQueue(a.tenant.id);
    const extension = await createExtension(ts, a.tenant.id);
    await enrol(queue.id, extension.id);
    await expect(ts.server.db.dataSource.query(`DELETE FROM extension WHERE id = $1`, [Number(extension.id)])).rejects.toMatchObject({
      driverError: expect.objectContaining({ constraint: "fk_queue_agent__extension" }),
    });
    expect((await snapshot(queue.id)).agents).toHaveLength(1);
  });

  it("force-deleting a tenant removes its queues, agents, extensions and devices", async () => {
    const doomed = await tenantWithKeys(ts);
    const queue = await createQueue(doomed.tenant.id, {}, doomed.adminKey);
    const extension = await createExtension(ts, doomed.tenant.id);
    await enrol(queue.id, extension.id, 0, doomed.adminKey);
    await insertDevice(extension.id);
    expect((await ts.ok(DeleteTenantDocument, { id: doomed.tenant.id, force: true })).deleteTenant).toBe(doomed.tenant.id);
    expect(codeOf(await ts.gql(TenantDocument, { id: doomed.tenant.id }))).toBe("NOT_FOUND");
    const [{ queues, agents, devices }] = await ts.server.db.dataSource.query(
      `SELECT (SELECT count(*)::int FROM queue WHERE tenant_id = $1) AS queues, (SELECT count(*)::int FROM queue_agent WHERE tenant_id = $1) AS agents,
              (SELECT count(*)::int FROM device WHERE tenant_id = $1) AS devices`,
      [Number(doomed.tenant.id)],
    );
    expect({ queues, agents, devices }).toEqual({ queues: 0, agents: 0, devices: 0 });
  });
});

describe("tenant isolation of queues and agents (invariant 4)", () => {
  let queueA: Awaited<ReturnType<typeof createQueue>>;
  let agentA: Awaited<ReturnType<typeof enrol>>;
  let extA: Awaited<ReturnType<typeof createExtension>>;
  let queueB: Awaited<ReturnType<typeof createQueue>>;
  let extB: Awaited<ReturnType<typeof createExtension>>;

  beforeAll(async () => {
    queueA = await createQueue(a.tenant.id, { name: "A only" });
    extA = await createExtension(ts, a.tenant.id);
    agentA = await enrol(queueA.id, extA.id, 4);
    queueB = await createQueue(b.tenant.id, {}, b.adminKey);
    extB = await createExtension(ts, b.tenant.id);
  });

  const same = (foreign: GraphQLResponse<unknown>, missing: GraphQLResponse<unknown>) => {
    expect(codeOf(foreign)).toBe("NOT_FOUND");
    expect(foreign.errors).toEqual(missing.errors);
  };

  describe.each([
    ["TENANT_ADMIN", () => b.adminKey],
    ["VIEWER", () => b.viewerKey],
  ])("a %s key of tenant B", (_role, key) => {
    it("reads A's queue, its tenant's queues and A's memberships as NOT_FOUND, like missing ids", async () => {
      same(await ts.gql(QueueDocument, { id: queueA.id }, key()), await ts.gql(QueueDocument, { id: MISSING_ID }, key()));
      same(await ts.gql(QueuesDocument, { tenantId: a.tenant.id }, key()), await ts.gql(QueuesDocument, { tenantId: MISSING_ID }, key()));
      same(await ts.gql(TenantQueuesDocument, { id: a.tenant.id }, key()), await ts.gql(TenantQueuesDocument, { id: MISSING_ID }, key()));
      same(await ts.gql(ExtensionMembershipsDocument, { id: extA.id }, key()), await ts.gql(ExtensionMembershipsDocument, { id: MISSING_ID }, key()));
    });

    it("lists only B's queues", async () => {
      const { queues } = await ts.ok(QueuesDocument, {}, key());
      expect(queues.map((q) => q.id)).toContain(queueB.id);
      expect(queues.every((q) => q.tenantId === b.tenant.id)).toBe(true);
    });
  });

  it("B's TENANT_ADMIN gets NOT_FOUND for every write naming A's queues, agents or extensions, and changes nothing", async () => {
    const before = await snapshot(queueA.id);
    const key = b.adminKey;
    same(
      await ts.gql(UpdateQueueDocument, { id: queueA.id, input: { name: "Taken over" } }, key),
      await ts.gql(UpdateQueueDocument, { id: MISSING_ID, input: { name: "Taken over" } }, key),
    );
    same(await ts.gql(DeleteQueueDocument, { id: queueA.id }, key), await ts.gql(DeleteQueueDocument, { id: MISSING_ID }, key));
    same(
      await ts.gql(AddQueueAgentDocument, { queueId: queueA.id, extensionId: extB.id }, key),
      await ts.gql(AddQueueAgentDocument, { queueId: MISSING_ID, extensionId: extB.id }, key),
    );
    same(
      await ts.gql(AddQueueAgentDocument, { queueId: queueB.id, extensionId: extA.id }, key),
      await ts.gql(AddQueueAgentDocument, { queueId: queueB.id, extensionId: MISSING_ID }, key),
    );
    same(
      await ts.gql(UpdateQueueAgentDocument, { id: agentA.id, penalty: 0, paused: true }, key),
      await ts.gql(UpdateQueueAgentDocument, { id: MISSING_ID, penalty: 0, paused: true }, key),
    );
    same(await ts.gql(RemoveQueueAgentDocument, { id: agentA.id }, key), await ts.gql(RemoveQueueAgentDocument, { id: MISSING_ID }, key));
    same(
      await ts.gql(CreateQueueDocument, { input: { tenantId: a.tenant.id, name: "Intruder", number: "7900" } }, key),
      await ts.gql(CreateQueueDocument, { input: { tenantId: MISSING_ID, name: "Intruder", number: "7900" } }, key),
    );
    expect(await snapshot(queueA.id)).toEqual(before);
    expect((await tenantQueues(a.tenant.id)).some((q) => q.name === "Intruder")).toBe(false);
    expect((await snapshot(queueB.id)).agents).toEqual([]);
  });
});

async function insertDevice(extensionId: string): Promise<void> {
  await ts.server.db.dataSource.query(
    `INSERT INTO device (tenant_id, extension_id, contact_uri, transport, registered_at, expires_at)
     SELECT tenant_id, id, $2, 'udp', now(), now() + interval '1 hour' FROM extension WHERE id = $1`,
    [Number(extensionId), `sip:${uniq()}@192.0.2.10:5060`],
  );
}

async function devicesOf(extensionId: string): Promise<number> {
  const [{ count }] = await ts.server.db.dataSource.query(`SELECT count(*)::int AS count FROM device WHERE extension_id = $1`, [Number(extensionId)]);
  return count;
}
