import {
  CreateExtensionDocument,
  ExtensionDocument,
  ExtensionsDocument,
  RotateExtensionSecretDocument,
  UpdateExtensionDocument,
} from "../graphql/generated";
import { createHash } from "node:crypto";
import { createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";

/**
 * The SIP secret is write-only: never in a response, log line or error, and never in clear at rest.
 * Its digests (contract §7) are password-equivalent and held to the same rule.
 */
let ts: TestServer;
const logs: string[] = [];
beforeAll(async () => {
  ts = await startTestServer({ logSink: (line) => logs.push(line) });
});
afterAll(() => ts?.stop());

const SECRET = "Sup3r-S3cret-Value-7781";
const NEW_SECRET = "An0ther-S3cret-Value-9902";

/** Every digest a leak could show, of each secret under the numbers and domain the test uses. */
function digestsOf(secret: string, numbers: string[], domain: string): string[] {
  const md5 = (t: string) => createHash("md5").update(t).digest("hex");
  const sha = (t: string) => createHash("sha256").update(t).digest("hex");
  return numbers.flatMap((n) => [md5(`${n}:${domain}:${secret}`), md5(`${n}@${domain}:${domain}:${secret}`), sha(`${n}:${domain}:${secret}`)]);
}

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
  await track(ts.ok(UpdateExtensionDocument, { id, input: { extensionNumber: "1002" } }));
  await track(ts.gql(UpdateExtensionDocument, { id, input: { extensionNumber: "x" } }));
  await track(ts.ok(ExtensionDocument, { id }));
  await track(ts.ok(ExtensionsDocument, { tenantId: tenant.id }));
  for (const path of [`/api/extensions/${id}`, `/api/extensions?tenant_id=${tenant.id}`]) {
    bodies.push(await (await ts.http(path)).text());
  }
  bodies.push(await (await ts.http(`/api/extensions/${id}`, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ secret: NEW_SECRET, email: "x" }) })).text());

  const digests = [...digestsOf(SECRET, ["1001", "1002"], tenant.sipDomain), ...digestsOf(NEW_SECRET, ["1001", "1002"], tenant.sipDomain)];
  const [stored] = await ts.server.db.dataSource.query(`SELECT ha1, ha1b, ha1_sha256 FROM extension WHERE id = $1`, [id]);
  // The digests that are stored now are among those searched for, so the search can find something.
  expect(digests).toEqual(expect.arrayContaining([stored.ha1, stored.ha1b, stored.ha1_sha256]));
  for (const body of bodies) {
    expect(body).not.toContain(SECRET);
    expect(body).not.toContain(NEW_SECRET);
    for (const digest of digests) expect(body).not.toContain(digest);
  }
  const logText = logs.join("\n");
  expect(logText.length).toBeGreaterThan(0);
  expect(logText).not.toContain(SECRET);
  expect(logText).not.toContain(NEW_SECRET);
  expect(logText).not.toContain(ts.adminKey);
  for (const digest of digests) expect(logText).not.toContain(digest);

  const rows = await ts.server.db.dataSource.query(`SELECT * FROM extension WHERE id = $1`, [id]);
  const atRest = JSON.stringify(rows);
  expect(atRest).not.toContain(SECRET);
  expect(atRest).not.toContain(NEW_SECRET);
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
