import "reflect-metadata";
import { AddQueueAgentDocument, CreateQueueDocument, CreateWebhookDocument, NestedReadDocument, TenantGraphDocument, TenantsWebhooksDocument } from "../graphql/generated";
import { createExtension, createTenant, uniq } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { QUIET, recordStatements } from "../support/sql-counter";

/**
 * No N+1: one nested read (tenant → extensions → devices, queueMemberships → queue → agents →
 * extension) issues the same number of SQL statements whatever the number of extensions.
 */
let ts: TestServer;
const QUEUES_PER_TENANT = 3;

/** A tenant with `size` extensions, each with two devices (one live, one expired) and two queue memberships. */
async function populatedTenant(size: number): Promise<string> {
  const tenant = await createTenant(ts, { maxExtensions: size });
  const queues: Array<{ id: string }> = [];
  for (let q = 0; q < QUEUES_PER_TENANT; q++) {
    const { createQueue } = await ts.ok(CreateQueueDocument, { input: { tenantId: tenant.id, name: `Queue ${q} ${uniq()}`, number: String(800 + q) } });
    queues.push(createQueue);
  }
  const extensions = [];
  for (let i = 0; i < size; i++) extensions.push(await createExtension(ts, tenant.id, { extensionNumber: String(1000 + i) }));
  await Promise.all(
    extensions.flatMap((extension, i) => [
      ts.ok(AddQueueAgentDocument, { queueId: queues[i % QUEUES_PER_TENANT].id, extensionId: extension.id, penalty: i % 4 }),
      ts.ok(AddQueueAgentDocument, { queueId: queues[(i + 1) % QUEUES_PER_TENANT].id, extensionId: extension.id }),
    ]),
  );
  // Devices arrive through registrations (a later path); here they are written directly.
  await ts.server.db.dataSource.query(
    `INSERT INTO device (tenant_id, extension_id, contact_uri, user_agent, transport, registered_at, expires_at)
     SELECT e.tenant_id, e.id, 'sip:' || e.extension_number || '@10.0.0.' || n || ':5060', 'Phone/1.0', 'udp',
            now() - interval '1 hour', CASE WHEN n = 1 THEN now() + interval '1 hour' ELSE now() - interval '1 minute' END
       FROM extension e CROSS JOIN generate_series(1, 2) AS n WHERE e.tenant_id = $1`,
    [Number(tenant.id)],
  );
  return tenant.id;
}

let small: string;
let large: string;

beforeAll(async () => {
  // No background sweep may run while statements are being counted. These counts are the resolvers'
  // (loaders and prefetch); compiled reads answer in one statement (graph-compiled-reads.test.ts).
  // Background passes (expiry, event relay, webhook dispatch) would add their statements to the counts.
  ts = await startTestServer({ env: { ...QUIET, GRAPHQL_COMPILED_READS: "false", WEBHOOK_ALLOW_PRIVATE: "true" } });
  small = await populatedTenant(5);
  large = await populatedTenant(50);
});
afterAll(() => ts?.stop());

async function readGraph(tenantId: string) {
  // The admin key of the environment is checked without a database look-up, so only the query's own statements count.
  return recordStatements(ts.server.db.dataSource, () => ts.ok(TenantGraphDocument, { id: tenantId, first: 50 }));
}

describe("the nested tenant graph is read in a constant number of statements", () => {
  it("returns the whole graph for 50 extensions", async () => {
    const { result } = await readGraph(large);
    const nodes = result.tenant.extensions.nodes;
    expect(result.tenant.queues).toHaveLength(QUEUES_PER_TENANT);
    expect(nodes).toHaveLength(50);
    for (const node of nodes) {
      expect(node.registered).toBe(true);
      expect(node.devices).toHaveLength(2);
      expect(node.devices.map((d) => d.registered)).toEqual([true, false]);
      expect(node.devices.every((d) => d.extension.id === node.id)).toBe(true);
      expect(node.queueMemberships).toHaveLength(2);
      for (const membership of node.queueMemberships) {
        expect(membership.queue.agents.some((agent) => agent.extension.id === node.id)).toBe(true);
      }
    }
    const agentsPerQueue = nodes[0].queueMemberships.map((m) => m.queue.agents.length);
    expect(agentsPerQueue.every((n) => n >= 16)).toBe(true);
  });

  it("issues as many statements for 50 extensions as for 5", async () => {
    const five = await readGraph(small);
    const fifty = await readGraph(large);
    expect(five.result.tenant.extensions.nodes).toHaveLength(5);
    expect(fifty.result.tenant.extensions.nodes).toHaveLength(50);
    expect(fifty.statements).toHaveLength(five.statements.length);
    // About one statement per edge: tenant, queues, extensions, devices, registered, memberships,
    // queue, agents, and extension (which Device.extension and QueueAgent.extension may load in two batches).
    expect(fifty.statements.length).toBeLessThanOrEqual(10);
    expect(fifty.statements.every((sql) => /^SELECT /i.test(sql))).toBe(true);
  });

  it("brings a page's devices, memberships and their queues along in the page's own statement", async () => {
    const { result, statements } = await recordStatements(ts.server.db.dataSource, () => ts.ok(NestedReadDocument, { id: large }));
    const nodes = result.tenant.extensions.nodes;
    expect(nodes).toHaveLength(50);
    expect(nodes.every((n) => n.registered && n.devices.length === 2 && n.queueMemberships.length === 2)).toBe(true);
    expect(nodes.every((n) => n.queueMemberships.every((m) => m.queue.name.length > 0))).toBe(true);
    // The tenant, then one page statement carrying the rest as JSON.
    expect(statements).toHaveLength(2);
    // The same answer as the loaders give one level at a time.
    const { result: viaLoaders } = await readGraph(large);
    for (const [i, node] of viaLoaders.tenant.extensions.nodes.entries()) {
      expect(nodes[i].devices.map((d) => [d.id, d.registered])).toEqual(node.devices.map((d) => [d.id, d.registered]));
      expect(nodes[i].queueMemberships.map((m) => m.queue.name)).toEqual(node.queueMemberships.map((m) => m.queue.name));
    }
  });
});

describe("Tenant.webhooks", () => {
  it("loads the webhooks of every listed tenant in one statement", async () => {
    const read = () => recordStatements(ts.server.db.dataSource, () => ts.ok(TenantsWebhooksDocument, {}));
    const before = await read();
    const created = new Map<string, string[]>();
    for (let t = 0; t < 4; t++) {
      const tenant = await createTenant(ts);
      const ids: string[] = [];
      for (let w = 0; w < 2; w++) {
        const { createWebhook } = await ts.ok(CreateWebhookDocument, { input: { tenantId: tenant.id, url: `http://127.0.0.1:9/hook-${t}-${w}`, events: ["extension.created"] } });
        ids.push(createWebhook.webhook.id);
      }
      created.set(tenant.id, ids);
    }
    const after = await read();
    expect(after.result.tenants).toHaveLength(before.result.tenants.length + 4);
    // Each tenant gets its own webhooks, in id order.
    for (const tenant of after.result.tenants) {
      expect(tenant.webhooks.every((w) => w.tenantId === tenant.id)).toBe(true);
      if (created.has(tenant.id)) expect(tenant.webhooks.map((w) => w.id)).toEqual(created.get(tenant.id));
    }
    // The tenant list, then one statement for every tenant's webhooks, however many tenants.
    expect(after.statements).toHaveLength(before.statements.length);
    expect(after.statements).toHaveLength(2);
  });
});
