import "reflect-metadata";
import net from "node:net";
import { createKey, createTenant, tenantWithKeys } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";
import { waitFor } from "../support/wait";

/**
 * The node:http front (src/server/graphql-front.ts) answers plannable reads before Express. It must
 * keep every guarantee of the Express path: auth refusals, depth/complexity/token limits, the body
 * limit, the request id, the metrics and the access log, the JSON refusals, and no crash whatever
 * the body. Which path answered is read from the access log line (`compiled: true`).
 */
let ts: TestServer;
let tenantId: string;
const lines: Array<Record<string, unknown>> = [];

const READ = `query FrontRead($id: ID!) { tenant(id: $id) { id name slug } }`;
const DEEP = `query Deep($id: ID!) { tenant(id: $id) { extensions(first: 1) { nodes { queueMemberships { queue { id } } } } } }`;
const COSTLY = `query Costly($id: ID!) { tenant(id: $id) { extensions(first: 100) { nodes { devices { id } queueMemberships { queue { id } } } } } }`;

function logOf(requestId: string) {
  return lines.filter((l) => l.msg === "request" && l.requestId === requestId);
}

async function post(body: string, headers: Record<string, string> = {}, key: string | null = ts.adminKey) {
  const res = await ts.http("/graphql", { method: "POST", key, headers: { "content-type": "application/json", ...headers }, body });
  const text = await res.text();
  return { status: res.status, requestId: res.headers.get("x-request-id"), text, json: () => JSON.parse(text) as { data?: Record<string, unknown> | null; errors?: Array<{ extensions?: { code?: string } }>; message?: string } };
}

/** The same request through Apollo (the front leaves any Accept but plain JSON to Express). */
async function viaApollo(body: string, key: string | null = ts.adminKey) {
  return post(body, { accept: "application/graphql-response+json" }, key);
}

/** Sends raw bytes and returns the raw response (or "" when the server closes without one). */
function raw(request: string | Buffer, endAfterWrite = true): Promise<string> {
  const { port } = new URL(ts.url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), "127.0.0.1", () => {
      socket.write(request);
      if (!endAfterWrite) setImmediate(() => socket.destroy());
    });
    let out = "";
    socket.on("data", (d) => (out += d.toString()));
    socket.on("close", () => resolve(out));
    socket.on("error", () => resolve(out));
  });
}

beforeAll(async () => {
  ts = await startTestServer({
    env: { BODY_LIMIT_BYTES: "4096", GRAPHQL_MAX_DEPTH: "4", GRAPHQL_MAX_COMPLEXITY: "300", GRAPHQL_MAX_TOKENS: "500" },
    logSink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  tenantId = (await createTenant(ts)).id;
});
afterAll(() => ts?.stop());

describe("compiled reads served ahead of Express keep the Express path's guarantees", () => {
  it("answers a plannable read on the front, with the request id, its log line and its metrics", async () => {
    const body = JSON.stringify({ query: READ, variables: { id: tenantId } });
    const fresh = await post(body);
    expect(fresh.status).toBe(200);
    expect(fresh.json().data).toEqual((await viaApollo(body)).json().data);
    expect(fresh.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const given = await post(body, { "x-request-id": "front-req-1" });
    expect(given.requestId).toBe("front-req-1");
    await waitFor("its access log line", () => logOf("front-req-1").length === 1);
    expect(logOf("front-req-1")[0]).toMatchObject({ status: 200, method: "POST", url: "/graphql", compiled: true });
    const metrics = await (await ts.http("/metrics")).text();
    expect(metrics).toMatch(/graphql_operations_total\{[^}]*operation="FrontRead"[^}]*outcome="success"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/http_request_duration_seconds_count\{[^}]*route="\/graphql"[^}]*status="200"[^}]*\} [1-9]/);
  });

  it("auth refusals: no key, a wrong key, another tenant's key — as Apollo answers them, nothing served", async () => {
    const body = JSON.stringify({ query: READ, variables: { id: tenantId } });
    for (const key of [null, "pbx_not-a-real-key-0000000000000000"]) {
      const front = await post(body, { "x-request-id": `front-auth-${key ? "bad" : "none"}` }, key);
      const apollo = await viaApollo(body, key);
      expect({ status: front.status, body: front.json() }).toEqual({ status: apollo.status, body: apollo.json() });
      expect(front.json().errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
      expect(front.json().data ?? null).toBeNull();
    }
    const other = await tenantWithKeys(ts);
    const foreign = await post(body, { "x-request-id": "front-auth-foreign" }, other.adminKey);
    expect(foreign.json().errors?.[0].extensions?.code).toBe("NOT_FOUND");
    expect(JSON.stringify(foreign.json().data ?? null)).not.toContain("slug");
    // Left to Apollo, still one log line with the same request id, and not marked compiled.
    await waitFor("its access log line", () => logOf("front-auth-foreign").length === 1);
    expect(logOf("front-auth-foreign")[0].compiled).toBeUndefined();
    const viewer = await createKey(ts, "VIEWER", tenantId);
    expect((await post(body, {}, viewer)).json().data).toBeTruthy();
  });

  it("depth, complexity and token limits refuse as on the Express path", async () => {
    const deep = await post(JSON.stringify({ query: DEEP, variables: { id: tenantId } }), { "x-request-id": "front-deep" });
    expect(deep.status).toBe(400);
    expect(deep.text).toMatch(/exceeds maximum operation depth of 4/);
    const costly = await post(JSON.stringify({ query: COSTLY.replace("queueMemberships { queue { id } }", "queueMemberships { penalty }"), variables: { id: tenantId } }));
    expect(costly.status).toBe(400);
    expect(costly.json().errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
    expect(costly.text).toMatch(/too complex/);
    const tokens = await post(JSON.stringify({ query: `query T($id: ID!) { tenant(id: $id) { ${"id ".repeat(600)} } }`, variables: { id: tenantId } }));
    expect(tokens.status).toBe(400);
    expect(await waitFor("its access log line", () => logOf("front-deep").length === 1)).toBeTruthy();
    expect(logOf("front-deep")[0].compiled).toBeUndefined();
  });

  it("the body limit: over BODY_LIMIT_BYTES is 413, with or without Content-Length", async () => {
    const big = JSON.stringify({ query: READ, variables: { id: tenantId, pad: "x".repeat(5000) } });
    const sized = await post(big);
    expect(sized.status).toBe(413);
    expect(sized.json()).toEqual({ message: "The request body is too large." });
    const chunked = await raw(
      `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${ts.adminKey}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
        `${Buffer.byteLength(big).toString(16)}\r\n${big}\r\n0\r\n\r\n`,
    );
    expect(chunked).toMatch(/^HTTP\/1\.1 413/);
  });

  it("a malformed body is a clear 400, and nothing a client sends crashes the process", async () => {
    for (const body of ["{", '{"query": "{ tenant(id: 1) { id } }"', "123", '"text"', "nul", "{\"query\": \"\\ud800\"}x"]) {
      const res = await post(body);
      expect({ body, status: res.status, json: res.json() }).toEqual({ body, status: 400, json: { message: "The request body is not valid JSON." } });
    }
    // Parsed, but not a GraphQL request: Apollo's own 400s, through Express.
    for (const body of ["[]", "{}", '{"query": 5}', '{"query": "query { tenant(id: 1) { id } }", "variables": [1]}', "", "  "]) {
      const res = await post(body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
    }
    // A prototype key never reaches the planner or the resolvers.
    const proto = await post(`{"query": ${JSON.stringify(READ)}, "variables": {"id": "${tenantId}", "__proto__": {"id": "1"}}}`);
    expect(proto.status).toBe(200);
    // Invalid UTF-8, a body cut short by a client that goes away, a lying Content-Length.
    const bad = Buffer.concat([Buffer.from('{"query": "'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    expect(await raw(Buffer.concat([Buffer.from(`POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${bad.length}\r\nConnection: close\r\n\r\n`), bad]))).toMatch(/^HTTP\/1\.1 (400|200)/);
    await raw(`POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"query": "`, false);
    await raw(`POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{"query": "{ tenant(id: 1) { id } }"}`);
    // Still serving, and still answering plannable reads on the front.
    expect((await ts.http("/healthz")).status).toBe(200);
    const after = await post(JSON.stringify({ query: READ, variables: { id: tenantId } }), { "x-request-id": "front-after" });
    expect(after.status).toBe(200);
    await waitFor("its access log line", () => logOf("front-after").length === 1);
    expect(logOf("front-after")[0].compiled).toBe(true);
  });

  it("everything else goes to Express unchanged: other methods, paths, content types, mutations", async () => {
    expect((await ts.http("/graphql", { method: "GET", headers: { accept: "text/html" } })).status).toBe(200);
    const form = await ts.http("/graphql", { method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify({ query: READ, variables: { id: tenantId } }) });
    expect(form.status).toBeGreaterThanOrEqual(400);
    const mutation = await post(JSON.stringify({ query: `mutation { __typename }` }), { "x-request-id": "front-mutation" });
    expect(mutation.requestId).toBe("front-mutation");
    await waitFor("its access log line", () => logOf("front-mutation").length === 1);
    expect(logOf("front-mutation")[0].compiled).toBeUndefined();
    expect((await ts.http("/api/extensions?tenantId=" + tenantId)).status).toBe(200);
  });
});
