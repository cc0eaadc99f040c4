import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { ExtensionsDocument, MeDocument } from "../graphql/generated";
import { createExtension, createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";

let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer();
});
afterAll(() => ts?.stop());

const post = (body: string, headers: Record<string, string> = {}) =>
  ts.http("/graphql", { method: "POST", headers: { "content-type": "application/json", ...headers }, body });

describe("health and metrics", () => {
  it("/healthz and /readyz answer without a key", async () => {
    const health = await ts.http("/healthz", { key: null });
    expect(health.status).toBe(200);
    const ready = await ts.http("/readyz", { key: null });
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", database: true, pubsub: true });
  });

  it("/metrics exposes request durations, GraphQL operations by name and outcome, and open WebSockets", async () => {
    await ts.gql(MeDocument, {});
    await ts.gql(MeDocument, {}, null);
    const text = await (await ts.http("/metrics", { key: null })).text();
    expect(text).toMatch(/http_request_duration_seconds_count\{method="POST",route="\/graphql",status="200"\} \d+/);
    expect(text).toMatch(/graphql_operations_total\{operation="Me",type="query",outcome="success",transport="http"\} [1-9]/);
    expect(text).toMatch(/graphql_operations_total\{operation="Me",type="query",outcome="error",transport="http"\} [1-9]/);
    expect(text).toMatch(/websocket_connections_open \d+/);
  });

  it("echoes a caller's x-request-id, or makes one", async () => {
    const given = await ts.http("/healthz", { headers: { "x-request-id": "abc-123" } });
    expect(given.headers.get("x-request-id")).toBe("abc-123");
    const made = await ts.http("/healthz");
    expect(made.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("HTTP refusals", () => {
  it("malformed JSON is a 400 with a JSON message", async () => {
    const res = await post("{not json");
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ message: "The request body is not valid JSON." });
  });

  it("an oversize body is a 413", async () => {
    const res = await post(JSON.stringify({ query: "{ me { role } }", variables: { pad: "x".repeat(1_100_000) } }));
    expect(res.status).toBe(413);
  });

  it("an unknown route is a JSON 404", async () => {
    const res = await ts.http("/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ message: "Not Found" });
  });

  it("GET /graphql runs queries (GraphQL over HTTP)", async () => {
    const res = await ts.http(`/graphql?query=${encodeURIComponent("{ me { role } }")}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { me: { role: "ADMIN" } } });
  });
});

describe("query limits", () => {
  it("refuses a query deeper than the depth limit", async () => {
    let selection = "id";
    for (let i = 0; i < 8; i++) selection = `tenant { extensions(first: 1) { nodes { ${selection} } } }`;
    const res = await post(JSON.stringify({ query: `{ extensions(first: 1) { nodes { ${selection} } } }` }));
    const body = (await res.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
    expect(body.errors[0].message).toMatch(/exceeds maximum operation depth/);
    expect(body.errors[0].extensions.code).toBe("GRAPHQL_VALIDATION_FAILED");
  });

  it("refuses a query whose estimated cost is above the limit", async () => {
    const query = `{ tenants { extensions(first: 100) { nodes { tenant { extensions(first: 100) { nodes { tenant { extensions(first: 100) { nodes { id } } } } } } } } } }`;
    const body = (await (await post(JSON.stringify({ query }))).json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
    expect(body.errors[0].extensions.code).toBe("BAD_USER_INPUT");
    expect(body.errors[0].message).toMatch(/too complex/);
  });
});

describe("errors never leak internals", () => {
  it("a database failure reaches the client as a generic message, without SQL or stack", async () => {
    const tenant = await createTenant(ts);
    await createExtension(ts, tenant.id);
    const db = ts.server.db.dataSource;
    // Break the table under the running server (its own schema/database), then restore it.
    await db.query(`ALTER TABLE extension RENAME TO extension_gone`);
    try {
      const r = await ts.gql(ExtensionsDocument, { tenantId: tenant.id });
      const text = JSON.stringify(r);
      expect(r.errors?.[0]).toMatchObject({ message: "Internal server error.", extensions: { code: "INTERNAL_SERVER_ERROR" } });
      expect(text).not.toMatch(/SELECT|relation|extension_gone|ILIKE|at .*\.ts|stacktrace/i);
    } finally {
      await db.query(`ALTER TABLE extension_gone RENAME TO extension`);
    }
  });

  it("a NUL byte in input is a clear BAD_USER_INPUT, not a driver failure", async () => {
    const r = await ts.gql(ExtensionsDocument, { search: "a\u0000b" });
    expect(r.errors?.[0].extensions).toEqual({ code: "BAD_USER_INPUT", fields: { search: ["The search may not contain NUL characters."] } });
  });
});

describe("graphql-ws", () => {
  const connect = (authorization: string | undefined) =>
    new Promise<{ code: number } | "acked">((resolve) => {
      const client = createClient({
        url: ts.wsUrl,
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        connectionParams: authorization === undefined ? undefined : { authorization },
        onNonLazyError: () => undefined,
        on: {
          connected: () => {
            resolve("acked");
            void client.dispose();
          },
          closed: (event) => resolve({ code: (event as { code: number }).code }),
        },
      });
    });

  it("refuses a connection with no key or a bad key (4401/4403)", async () => {
    for (const auth of [undefined, "Bearer nope", ts.adminKey]) {
      const result = await connect(auth);
      expect(result).not.toBe("acked");
      expect([4401, 4403]).toContain((result as { code: number }).code);
    }
  });

  it("accepts a Bearer key in connection_init and applies the same limits and auth to operations", async () => {
    expect(await connect(`Bearer ${ts.adminKey}`)).toBe("acked");
    const client = createClient({ url: ts.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${ts.adminKey}` } });
    try {
      const me = await new Promise((resolve, reject) => {
        let value: unknown;
        client.subscribe({ query: "{ me { role } }" }, { next: (v) => (value = v), error: reject, complete: () => resolve(value) });
      });
      expect(me).toEqual({ data: { me: { role: "ADMIN" } } });
      const tooComplex = `{ tenants { extensions(first: 100) { nodes { tenant { extensions(first: 100) { nodes { tenant { extensions(first: 100) { nodes { id } } } } } } } } } }`;
      const refused = await new Promise<unknown>((resolve) => {
        client.subscribe({ query: tooComplex }, { next: resolve, error: resolve, complete: () => undefined });
      });
      expect(JSON.stringify(refused)).toMatch(/too complex/);
    } finally {
      await client.dispose();
    }
  });
});
