import {
  CreateExtensionDocument,
  ExtensionDocument,
  ExtensionsDocument,
  RotateExtensionSecretDocument,
  UpdateExtensionDocument,
} from "../graphql/generated";
import { createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";

/** The SIP secret is write-only: never in a response, log line or error, and never in clear at rest. */
let ts: TestServer;
const logs: string[] = [];
beforeAll(async () => {
  ts = await startTestServer({ logSink: (line) => logs.push(line) });
});
afterAll(() => ts?.stop());

const SECRET = "Sup3r-S3cret-Value-7781";
const NEW_SECRET = "An0ther-S3cret-Value-9902";

it("never returns, logs or stores the secret in clear, on any path", async () => {
  const tenant = await createTenant(ts);
  const bodies: string[] = [];
  const track = async <T>(p: Promise<T>) => {
    const r = await p;
    bodies.push(JSON.stringify(r));
    return r;
  };
  const created = await track(ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1001", secret: SECRET } }));
  const id = created.createExtension.id;
  // Refusals that carry the secret in their input.
  await track(ts.gql(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1001", secret: SECRET } }));
  await track(ts.gql(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "bad", secret: SECRET } }));
  await track(ts.gql(UpdateExtensionDocument, { id, input: { secret: NEW_SECRET, email: "broken" } }));
  await track(ts.gql(UpdateExtensionDocument, { id: "999999", input: { secret: NEW_SECRET } }));
  const updated = await track(ts.ok(UpdateExtensionDocument, { id, input: { secret: NEW_SECRET } }));
  expect(updated.updateExtension.hasSecret).toBe(true);
  await track(ts.ok(ExtensionDocument, { id }));
  await track(ts.ok(ExtensionsDocument, { tenantId: tenant.id }));

  for (const body of bodies) {
    expect(body).not.toContain(SECRET);
    expect(body).not.toContain(NEW_SECRET);
  }
  const logText = logs.join("\n");
  expect(logText.length).toBeGreaterThan(0);
  expect(logText).not.toContain(SECRET);
  expect(logText).not.toContain(NEW_SECRET);
  expect(logText).not.toContain(ts.adminKey);

  const rows = await ts.server.db.dataSource.query(`SELECT * FROM extension WHERE id = $1`, [id]);
  const stored = JSON.stringify(rows);
  expect(stored).not.toContain(SECRET);
  expect(stored).not.toContain(NEW_SECRET);
  expect(rows[0].secret_ciphertext).toMatch(/^v1\./);
});

it("rotateExtensionSecret returns a new secret once, and stores it encrypted", async () => {
  const tenant = await createTenant(ts);
  const { createExtension } = await ts.ok(CreateExtensionDocument, { input: { tenantId: tenant.id, extensionNumber: "1001", secret: SECRET } });
  const [before] = await ts.server.db.dataSource.query(`SELECT secret_ciphertext FROM extension WHERE id = $1`, [createExtension.id]);
  const { rotateExtensionSecret: secret } = await ts.ok(RotateExtensionSecretDocument, { id: createExtension.id });
  expect(secret).toMatch(/^[A-Za-z0-9_-]{24}$/);
  const { rotateExtensionSecret: again } = await ts.ok(RotateExtensionSecretDocument, { id: createExtension.id });
  expect(again).not.toBe(secret);
  const [after] = await ts.server.db.dataSource.query(`SELECT secret_ciphertext FROM extension WHERE id = $1`, [createExtension.id]);
  expect(after.secret_ciphertext).not.toBe(before.secret_ciphertext);
  expect(after.secret_ciphertext).not.toContain(again);
  expect(logs.join("\n")).not.toContain(again);
});
