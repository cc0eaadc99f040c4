import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { tenantWithKeys } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { checkAgainstDocument } from "./rest-support";

/**
 * The three curl examples of the original extensions documentation (shared/seed/extensions-doc.txt),
 * verbatim. They run with the real curl binary against the started server; the only changes are the
 * host, the Authorization header the contract asks for, and the ids of a tenant and an extension
 * that exist here (the seed's 1 and 42).
 */
const SEED_CREATE = `curl -X POST https://your-instance/api/extensions \\
  -H "Content-Type: application/json" \\
  -d '{
    "tenant_id": 1,
    "extension_number": "1001",
    "display_name": "Alice Smith",
    "email": "alice@acme.example.com",
    "secret": "s3cur3p@ss",
    "status": "active",
    "voicemail_enabled": true
  }'`;

const SEED_LIST = `curl "https://your-instance/api/extensions?search=alice"`;

const SEED_UPDATE = `curl -X PUT https://your-instance/api/extensions/42 \\
  -H "Content-Type: application/json" \\
  -d '{
    "tenant_id": 1,
    "extension_number": "1001",
    "display_name": "Alice Johnson",
    "email": "alice.johnson@acme.example.com",
    "secret": "n3wp@ssw0rd",
    "status": "active",
    "voicemail_enabled": true
  }'`;

const seedDoc = path.resolve(__dirname, "../../../shared/seed/extensions-doc.txt");

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
});
afterAll(() => ts?.stop());

interface Ran {
  status: number;
  body: any;
  text: string;
}

/** Runs a seed command through sh, as a user would paste it, with the host, key and ids substituted. */
async function runSeed(command: string, options: { key: string | null; tenantId: string; extensionId?: number }): Promise<Ran> {
  const auth = options.key ? ` -H "Authorization: Bearer ${options.key}"` : "";
  const line = command
    .replace(/^curl /, `curl --silent --show-error --write-out '\\n%{http_code}'${auth} `)
    .replaceAll("https://your-instance", ts.url)
    .replace(/"tenant_id": 1,/, `"tenant_id": ${options.tenantId},`)
    .replace("/api/extensions/42 ", `/api/extensions/${options.extensionId} `);
  const { stdout } = await promisify(execFile)("sh", ["-c", line]);
  const cut = stdout.lastIndexOf("\n");
  const text = stdout.slice(0, cut);
  const status = Number(stdout.slice(cut + 1));
  const body = text ? JSON.parse(text) : null;
  const method = /-X (\w+)/.exec(command)?.[1] ?? "GET";
  const url = new URL(/(https:\/\/your-instance\S*?)["\s]/.exec(command + " ")![1].replace("/42", `/${options.extensionId}`));
  checkAgainstDocument(method, url.pathname, status, body, text);
  return { status, body, text };
}

describe("the seed documentation's curl examples, with an Authorization header", () => {
  it("uses the real curl binary", async () => {
    const { stdout } = await promisify(execFile)("sh", ["-c", "command -v curl && curl --version"]);
    expect(stdout).toMatch(/curl \d+\.\d+/);
  });

  it("quotes the seed exactly", () => {
    if (!fs.existsSync(seedDoc)) return void process.stderr.write(`SKIPPED: ${seedDoc} is not beside the repository; the commands were checked against it when written.\n`);
    const doc = fs.readFileSync(seedDoc, "utf8");
    for (const command of [SEED_CREATE, SEED_LIST, SEED_UPDATE]) expect(doc).toContain(command);
  });

  it("create, list and update work exactly as written", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);

    const created = await runSeed(SEED_CREATE, { key: adminKey, tenantId: tenant.id });
    expect(created.status).toBe(201);
    expect(created.body.data).toEqual({
      id: expect.any(Number),
      tenant_id: Number(tenant.id),
      extension_number: "1001",
      display_name: "Alice Smith",
      email: "alice@acme.example.com",
      status: "active",
      voicemail_enabled: true,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    expect(created.text).not.toContain("s3cur3p@ss");
    const id: number = created.body.data.id;
    const [{ c: firstSecret }] = await ts.server.db.dataSource.query(`SELECT secret_ciphertext AS c FROM extension WHERE id = $1`, [id]);

    const listed = await runSeed(SEED_LIST, { key: adminKey, tenantId: tenant.id });
    expect(listed.status).toBe(200);
    expect(listed.body.data).toEqual([created.body.data]);
    expect(listed.body.meta).toMatchObject({ current_page: 1, per_page: 15, total: 1, last_page: 1 });
    expect(listed.body.links).toMatchObject({ prev: null, next: null });

    const updated = await runSeed(SEED_UPDATE, { key: adminKey, tenantId: tenant.id, extensionId: id });
    expect(updated.status).toBe(200);
    expect(updated.body.data).toEqual({
      ...created.body.data,
      display_name: "Alice Johnson",
      email: "alice.johnson@acme.example.com",
      updated_at: expect.any(String),
    });
    expect(updated.text).not.toContain("n3wp@ssw0rd");
    const [{ c: secondSecret }] = await ts.server.db.dataSource.query(`SELECT secret_ciphertext AS c FROM extension WHERE id = $1`, [id]);
    expect(secondSecret).not.toBe(firstSecret);

    const again = await runSeed(SEED_LIST, { key: adminKey, tenantId: tenant.id });
    expect(again.body.data).toEqual([updated.body.data]);
  });

  it("without the Authorization header the seed's commands are 401 and change nothing", async () => {
    const { tenant, adminKey } = await tenantWithKeys(ts);
    for (const command of [SEED_CREATE, SEED_LIST]) {
      const r = await runSeed(command, { key: null, tenantId: tenant.id });
      expect(r.status).toBe(401);
      expect(r.body).toEqual({ message: "Unauthenticated." });
    }
    const listed = await runSeed(SEED_LIST, { key: adminKey, tenantId: tenant.id });
    expect(listed.body.meta.total).toBe(0);
  });
});
