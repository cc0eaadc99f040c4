import { CreateExtensionDocument, UpdateExtensionDocument } from "../graphql/generated";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { createEngineRole, startKamailio, waitFor, type EngineRole, type Kamailio } from "../support/sip";

/**
 * Contract §11: the engine notices the product's changes by itself. The change counter moves once
 * per committed transaction that wrote a watched table, and the shipped Kamailio, polling it through
 * its own role, reloads within 2 s of the commit, without being told where the product is.
 */
const real = requireReal("postgres") && requireReal("redis");
const suite = real ? describe : describe.skip;

suite("the engine's change signal", () => {
  let ts: TestServer;
  let role: EngineRole;
  let kamailio: Kamailio;
  beforeAll(async () => {
    ts = await startTestServer();
    role = await createEngineRole(databaseUrl()!, ts.schema);
    kamailio = await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: `${ts.redisPrefix}pbx:events` });
  }, 30_000);
  afterAll(async () => {
    const logged = kamailio?.output() ?? "";
    await kamailio?.stop();
    await role?.drop();
    await ts?.stop();
    expect(logged).not.toMatch(/\b(ERROR|CRITICAL):/);
  });

  const version = async () => Number((await ts.server.db.dataSource.query(`SELECT version FROM engine_config`))[0].version);

  it("moves once per committed change of a watched table, not per row, and not for a refused change", async () => {
    const start = await version();
    const tenant = await createTenant(ts);
    expect(await version()).toBe(start + 1);
    const { createExtension } = await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "4001", secret: "sync-secret-4001" } });
    expect(await version()).toBe(start + 2);
    // Several rows in one transaction: one step.
    await ts.server.db.dataSource.transaction(async (m) => {
      await m.query(`UPDATE extension SET display_name = 'a' WHERE id = $1`, [Number(createExtension.id)]);
      await m.query(`UPDATE extension SET display_name = 'b' WHERE id = $1`, [Number(createExtension.id)]);
    });
    expect(await version()).toBe(start + 3);
    const refused = await ts.gql(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "4001", secret: "sync-secret-4001" } });
    expect(refused.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
    expect(await version()).toBe(start + 3);
  });

  it("the running Kamailio sees a change made over GraphQL within 2 s and reloads", async () => {
    const tenant = await createTenant(ts);
    const { createExtension } = await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "4002", secret: "sync-secret-4002" } });
    const seen = await version();
    // Once it has read this version (at start or by a reload), the next commit is a change to it.
    await waitFor("Kamailio to read the current version", () => new RegExp(`configuration version (\\d+ -> )?${seen}\\b`).test(kamailio.output()), 5_000);
    await ts.ok(UpdateExtensionDocument, { id: createExtension.id, input: { displayName: "Renamed" } });
    const committed = Date.now();
    await waitFor("Kamailio to reload after the update", () => kamailio.output().includes(`-> ${seen + 1}, reloading`), 5_000, 20);
    expect(Date.now() - committed).toBeLessThan(2_000);
  });
});
