import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CreateTrunkDocument, TrunkDocument, UpdateTrunkDocument } from "../graphql/generated";
import { received, registrarScenario, startSippServer, type SippServer } from "../support/carriers";
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

  const state = async (id: string) => (await ts.ok(TrunkDocument, { id })).trunk.registrationState;

  it("a wrong secret is FAILED; the right one set over GraphQL registers (REGISTERED) without a restart", async () => {
    const { createTrunk } = await ts.ok(CreateTrunkDocument, {
      input: { name: "Registering carrier", host: registrar.ip, port: registrar.port, username: "pbx-trunk", realm: "carrier.test", secret: "a-wrong-secret", register: true },
    });
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
});
