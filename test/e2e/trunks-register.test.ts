import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CreatePhoneNumberDocument, CreateTrunkDocument, TrunkDocument, UpdateTrunkDocument } from "../graphql/generated";
import { SIPP, received, registrarScenario, sippCall, startSippServer, type SippServer } from "../support/carriers";
import { createTenant } from "../support/factories";
import { databaseUrl, redisUrl, requireReal } from "../support/env";
import { startTestServer, type TestServer } from "../support/server";
import { createEngineRole, startKamailio, waitFor, type EngineRole, type Kamailio } from "../support/sip";

/**
 * Contract §11: a trunk with `register` is registered by the shipped Kamailio (uac, from the view
 * engine_uacreg, with only the HA1 of the secret), the state reaches Trunk.registrationState through
 * the event stream, and a new secret set over GraphQL is used for the next REGISTER without a restart.
 * The carrier is a SIPp registrar checking the digest with verifyauth.
 */
const real = requireReal("postgres") && requireReal("redis");
const suite = real ? describe : describe.skip;

suite("registering trunks", () => {
  let ts: TestServer;
  let role: EngineRole;
  let kamailio: Kamailio;
  let registrar: SippServer;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pbx-registrar-"));
    ts = await startTestServer();
    role = await createEngineRole(databaseUrl()!, ts.schema);
    registrar = await startSippServer(registrarScenario(dir, "pbx-trunk", "the-right-secret", "carrier.test"));
    kamailio = await startKamailio({ databaseUrl: role.url, redisUrl: redisUrl()!, streamKey: `${ts.redisPrefix}pbx:events`, registerTrunks: true });
  }, 30_000);
  afterAll(async () => {
    const logged = kamailio?.output() ?? "";
    await kamailio?.stop();
    await registrar?.stop();
    await role?.drop();
    await ts?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    // uac logs the carrier's refusal of the wrong secret as an error: that one is expected.
    const unexpected = logged.split("\n").filter((l) => /\b(ERROR|CRITICAL):/.test(l) && !/got sip response 403 while registering/.test(l));
    expect(unexpected).toEqual([]);
  });

  let trunkId: string | undefined;
  const state = async (id: string) => (await ts.ok(TrunkDocument, { id })).trunk.registrationState;

  it("a wrong secret is FAILED; the right one set over GraphQL registers (REGISTERED) without a restart", async () => {
    const { createTrunk } = await ts.ok(CreateTrunkDocument, {
      input: { name: "Registering carrier", host: registrar.ip, port: registrar.port, username: "pbx-trunk", realm: "carrier.test", secret: "a-wrong-secret", register: true },
    });
    trunkId = createTrunk.id;
    expect(createTrunk.registrationState).toBe("UNREGISTERED");
    await waitFor("the registrar to refuse the wrong secret", () => received(registrar.log()).filter((m) => m.startsWith("REGISTER ") && /Authorization:/i.test(m)).length >= 1 || undefined, 30_000, 200);
    await waitFor("Trunk.registrationState FAILED", async () => (await state(createTrunk.id)) === "FAILED" || undefined, 30_000, 200);

    await ts.ok(UpdateTrunkDocument, { id: createTrunk.id, input: { secret: "the-right-secret" } });
    await waitFor("Trunk.registrationState REGISTERED", async () => (await state(createTrunk.id)) === "REGISTERED" || undefined, 30_000, 200);
    const registers = received(registrar.log()).filter((m) => m.startsWith("REGISTER "));
    const last = registers.at(-1)!;
    expect(last).toMatch(/Authorization: Digest .*username="pbx-trunk"/i);
    expect(last).toMatch(new RegExp(`Contact: <sip:${createTrunk.id}@127\\.0\\.0\\.1:${kamailio.port}`));
    // Neither the secret nor its digest ever reached the product's answers.
    expect(JSON.stringify(await ts.ok(TrunkDocument, { id: createTrunk.id }))).not.toMatch(/the-right-secret|a-wrong-secret/);
  }, 90_000);

  it("a registered carrier is recognised by its registration: its INVITE to the registered Contact reaches the number in To; another address is refused (403)", async () => {
    expect(trunkId).toBeDefined();
    const tenant = await createTenant(ts);
    const did = `+4420${String(Date.now() % 1_000_000).padStart(6, "0")}`;
    // HANGUP: the carrier's call is declined (603) once it is recognised
    await ts.ok(CreatePhoneNumberDocument, { input: { tenantId: tenant.id, number: did, destination: { type: "HANGUP" } } });
    // the carrier calls sip:<trunk id>@engine (the Contact it registered), the number in To; no inbound addresses
    const scenario = path.join(dir, "registered-carrier-uac.xml");
    fs.writeFileSync(scenario, fs.readFileSync(SIPP.carrierCalls, "utf8").replace("INVITE sip:[field0]@[remote_ip]:[remote_port] SIP/2.0", "INVITE sip:[field3]@[remote_ip]:[remote_port] SIP/2.0"));
    const call = (ip: string) => sippCall(`127.0.0.1:${kamailio.port}`, scenario, [did, "+447700900123", "0", trunkId!], ip);
    expect((await call(registrar.ip)).status).toBe(603);
    expect((await call("127.0.0.74")).status).toBe(403);
  }, 60_000);
});
