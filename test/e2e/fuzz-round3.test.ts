import fc from "fast-check";
import { createExtension, createKey, createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";

/**
 * Issue 19's shapes in the fuzz pass, and the differential check of compiled reads.
 * - Fuzz: multi-root read documents (the compiled path) by every kind of caller, multipart bodies
 *   cut anywhere, wide CSV lines, prototype keys in JSON, secret-bearing inputs sent as strings.
 *   Asserted: no 5xx, no secret, no error logged, and the process answering /healthz within 1 s.
 * - Differential: generated read documents × every role; the compiled answer (plain JSON) equals
 *   the resolvers' (graphql-response+json, which the compiled path leaves to Apollo).
 * Seeded and bounded (FUZZ_RUNS, default 60; DIFF_RUNS, default 50 documents × 6 roles).
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const DIFF_RUNS = Number(process.env.DIFF_RUNS ?? 50);
const SEED = Number(process.env.FUZZ_SEED ?? 1913);
const SECRET = "FUZZ3SECRET-k2j3h4";

const errorLog: string[] = [];
let ts: TestServer;
let tenantId: string;
let otherTenantId: string;
let extensionId: string;
const keys: Record<string, string | null> = {};
const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);

beforeAll(async () => {
  process.on("unhandledRejection", onRejection);
  ts = await startTestServer({ logSink: (line) => /"level":"(error|fatal)"/.test(line) && errorLog.push(line) });
  tenantId = (await createTenant(ts)).id;
  otherTenantId = (await createTenant(ts)).id;
  extensionId = (await createExtension(ts, tenantId, { secret: SECRET, voicemailEnabled: true })).id;
  await createExtension(ts, tenantId);
  await createExtension(ts, otherTenantId);
  Object.assign(keys, {
    none: null,
    admin: ts.adminKey,
    tenantAdmin: await createKey(ts, "TENANT_ADMIN", tenantId),
    viewer: await createKey(ts, "VIEWER", tenantId),
    otherViewer: await createKey(ts, "VIEWER", otherTenantId),
    ingest: await createKey(ts, "INGEST", null),
  });
}, 60_000);
afterAll(async () => {
  process.off("unhandledRejection", onRejection);
  await ts?.stop();
});
afterEach(() => {
  expect(errorLog).toEqual([]);
  expect(rejections).toEqual([]);
});

async function healthzFast(): Promise<void> {
  const started = performance.now();
  const res = await ts.http("/healthz", { key: null });
  expect(res.status).toBe(200);
  expect(performance.now() - started).toBeLessThan(1000);
}

/** A root field of the read documents the compiled path plans (and some it leaves to Apollo). */
const tenantArg = () => fc.constantFrom(tenantId, otherTenantId, "999999", '"x"', "0", '"1e3"');
const cursor = fc.constantFrom("", ', after: "zz"', ', after: "WyJ2MSIsMV0"', ", first: 2", ", first: 0", ", first: 101");
const rootField = fc.oneof(
  fc.tuple(tenantArg(), cursor).map(([t, c]) => `cdrs(tenantId: ${t}${c}) { totalCount nodes { id callId direction } }`),
  fc.tuple(tenantArg()).map(([t]) => `tenant(id: ${t}) { id name maxExtensions extensions(first: 2) { totalCount nodes { id extensionNumber hasSecret devices { id } } } }`),
  fc.tuple(tenantArg(), cursor).map(([t, c]) => `extensions(tenantId: ${t}${c}) { totalCount nodes { id extensionNumber displayName registered queueMemberships { id } } }`),
  fc.tuple(cursor).map(([c]) => `extensions(search: "1"${c}) { nodes { id } }`),
  fc.constant("me { role }"),
  fc.constant("__typename"),
);
const readDocument = fc.array(rootField, { minLength: 1, maxLength: 4 }).map((roots) => `{ ${roots.map((root, i) => `r${i}: ${root}`).join(" ")} }`);
const role = fc.constantFrom("none", "admin", "tenantAdmin", "viewer", "otherViewer", "ingest");

describe("differential: compiled reads equal the resolvers' answers", () => {
  it(`${DIFF_RUNS} generated documents × every role`, async () => {
    await fc.assert(
      fc.asyncProperty(readDocument, async (query) => {
        for (const who of ["none", "admin", "tenantAdmin", "viewer", "otherViewer", "ingest"]) {
          const post = async (accept: string) => {
            const res = await ts.http("/graphql", { key: keys[who], method: "POST", headers: { "content-type": "application/json", accept }, body: JSON.stringify({ query }) });
            return (await res.json()) as unknown;
          };
          const compiled = await post("application/json");
          const resolved = await post("application/graphql-response+json");
          expect({ who, query, body: compiled }).toEqual({ who, query, body: resolved });
        }
      }),
      { numRuns: DIFF_RUNS, seed: SEED, endOnFailure: true },
    );
    await healthzFast();
  }, 300_000);
});

describe("fuzz: issue 19's shapes", () => {
  const params = () => ({ numRuns: RUNS, seed: SEED, endOnFailure: true });

  it("multi-root read documents through the compiled path, any caller", async () => {
    await fc.assert(
      fc.asyncProperty(readDocument, role, async (query, who) => {
        const res = await ts.http("/graphql", { key: keys[who], method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) });
        expect(res.status).toBeLessThan(500);
        expect(await res.text()).not.toContain("INTERNAL_SERVER_ERROR");
        await healthzFast();
      }),
      params(),
    );
  });

  it("multipart bodies cut anywhere, with or without a closing boundary", async () => {
    const boundary = "fz3b";
    const part = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const body = Buffer.from(
      part("tenant_id", tenantId) + part("extension", "1") + part("message_id", "fz") +
        `--${boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF\x00\x00\x00\x00WAVEfmt ${"x".repeat(300)}\r\n--${boundary}--\r\n`,
    );
    await fc.assert(
      fc.asyncProperty(fc.nat(body.length), fc.boolean(), async (cut, closing) => {
        const sent = closing ? Buffer.concat([body.subarray(0, cut), Buffer.from(`\r\n--${boundary}--\r\n`)]) : body.subarray(0, cut);
        const res = await ts.http("/api/voicemail", { key: keys.ingest, method: "POST", headers: { "content-type": `multipart/form-data; boundary=${boundary}` }, body: sent });
        expect(res.status).toBeLessThan(500);
        if (!closing && cut < body.length - 2) expect(res.status).toBe(400);
        await healthzFast();
      }),
      params(),
    );
  });

  it("wide and odd CSV lines over REST and GraphQL", async () => {
    const line = fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.constant('"a,b"'), fc.constant(SECRET)), { minLength: 1, maxLength: 80 }).map((cells) => cells.join(","));
    await fc.assert(
      fc.asyncProperty(fc.oneof(line, fc.integer({ min: 33, max: 200_000 }).map((n) => "c,".repeat(n))), line, fc.boolean(), async (first, second, graphql) => {
        const csv = `${first}\n${second}\n`;
        const res = graphql
          ? await ts.http("/graphql", { key: keys.tenantAdmin, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "mutation($t: ID!, $d: String!) { importExtensions(tenantId: $t, format: CSV, data: $d, dryRun: true) { failed } }", variables: { t: tenantId, d: csv } }) })
          : await ts.http(`/api/extensions/import?tenant_id=${tenantId}&dry_run=true`, { key: keys.tenantAdmin, method: "POST", headers: { "content-type": "text/csv" }, body: csv });
        const text = await res.text();
        expect(res.status).toBeLessThan(500);
        expect(text.length).toBeLessThan(20_000);
        // A secret in the first line (no header) is never echoed.
        if (!first.split(",").some((c) => c.trim().toLowerCase() === "extension_number")) expect(text).not.toContain(SECRET);
        await healthzFast();
      }),
      params(),
    );
  });

  it("prototype keys anywhere in JSON bodies (events, REST, GraphQL variables)", async () => {
    const protoKey = fc.constantFrom('"__proto__"', '"\\u005f_proto__"', '"constructor"', '"prototype"');
    const value = fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v) ?? "null"), fc.constant('{"expires":1e12,"tenant_id":"x","role":"ADMIN"}'));
    await fc.assert(
      fc.asyncProperty(protoKey, value, fc.constantFrom("event", "rest", "graphql"), async (key, v, where) => {
        let res: Response;
        if (where === "event") {
          res = await ts.http("/api/events", { key: keys.ingest, method: "POST", headers: { "content-type": "application/json" }, body: `{"type":"registration","action":"register","tenant_id":${tenantId},"extension":"1","contact":"sip:1@192.0.2.1","transport":"udp",${key}:${v}}` });
        } else if (where === "rest") {
          res = await ts.http("/api/extensions", { key: keys.tenantAdmin, method: "POST", headers: { "content-type": "application/json" }, body: `{"extension_number":"9","secret":"${SECRET}",${key}:${v}}` });
        } else {
          res = await ts.http("/graphql", { key: keys.tenantAdmin, method: "POST", headers: { "content-type": "application/json" }, body: `{"query":"mutation($i: UpdateExtensionInput!) { updateExtension(id: ${extensionId}, input: $i) { id } }","variables":{"i":{${key}:${v}}}}` });
        }
        expect(res.status).toBeLessThan(500);
        expect(await res.text()).not.toContain(SECRET);
        await healthzFast();
      }),
      params(),
    );
    const [row] = await ts.server.db.dataSource.query(`SELECT count(*)::int AS n FROM device WHERE expires_at > now() + interval '8 days'`);
    expect((row as { n: number }).n).toBe(0);
  });

  it("secret-bearing inputs sent as strings, lists or numbers", async () => {
    const shaped = fc.oneof(
      fc.string({ maxLength: 20 }).map((s) => `tenantId=${tenantId} extensionNumber=77 secret=${SECRET}${s}`),
      fc.array(fc.constant(SECRET), { maxLength: 3 }),
      fc.record({ tenantId: fc.jsonValue(), secret: fc.constant(SECRET), extensionNumber: fc.jsonValue() }),
      fc.double(),
    );
    await fc.assert(
      fc.asyncProperty(shaped, fc.boolean(), async (input, create) => {
        const query = create ? "mutation($i: CreateExtensionInput!) { createExtension(input: $i) { id } }" : `mutation($i: UpdateExtensionInput!) { updateExtension(id: ${extensionId}, input: $i) { id } }`;
        const res = await ts.http("/graphql", { key: keys.tenantAdmin, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, variables: { i: input } }) });
        expect(res.status).toBeLessThan(500);
        expect(await res.text()).not.toContain(SECRET);
      }),
      params(),
    );
  });
});
