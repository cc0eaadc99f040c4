import WebSocket from "ws";
import { createExtension, createKey, createTenant } from "../support/factories";
import { startTestServer, type TestServer } from "../support/server";

/** Regression tests of issue 13 (black-box probe): limits, secrets in errors, client error codes, labels. */

const WS_MAX = 5;
const logLines: string[] = [];
let ts: TestServer;
beforeAll(async () => {
  ts = await startTestServer({ env: { WS_MAX_SUBSCRIPTIONS: String(WS_MAX) }, logSink: (line) => logLines.push(line) });
});
afterAll(() => ts?.stop());

interface GqlError {
  message: string;
  extensions?: { code?: string; fields?: Record<string, string[]> };
}
interface GqlBody {
  data?: unknown;
  errors?: GqlError[];
}

const post = async (body: unknown, key: string | null = ts.adminKey): Promise<{ status: number; body: GqlBody; text: string }> => {
  const res = await ts.http("/graphql", { method: "POST", key, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as GqlBody, text };
};

/** A raw graphql-transport-ws socket: every message the server sends, and how it closed. */
async function rawSocket(key = ts.adminKey) {
  const socket = new WebSocket(ts.wsUrl, "graphql-transport-ws");
  const messages: Array<{ id?: string; type: string; payload?: unknown }> = [];
  const waiters = new Set<() => void>();
  let closed: { code: number; reason: string } | undefined;
  socket.on("message", (data) => {
    messages.push(JSON.parse(String(data)));
    for (const w of waiters) w();
  });
  socket.on("close", (code, reason) => {
    closed = { code, reason: String(reason) };
    for (const w of waiters) w();
  });
  const until = <T>(check: () => T | undefined, what: string, ms = 15_000) =>
    new Promise<T>((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value === undefined) return;
        waiters.delete(attempt);
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        waiters.delete(attempt);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(messages)} closed=${JSON.stringify(closed)}`));
      }, ms);
      waiters.add(attempt);
      attempt();
    });
  await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
  socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${key}` } }));
  await until(() => messages.find((m) => m.type === "connection_ack"), "connection_ack");
  let next = 0;
  return {
    messages,
    closed: () => until(() => closed, "close"),
    /** Sends one operation; resolves with its first error/next message. */
    send(payload: Record<string, unknown>) {
      const id = String(++next);
      socket.send(JSON.stringify({ id, type: "subscribe", payload }));
      return id;
    },
    async answer(payload: Record<string, unknown>) {
      const id = this.send(payload);
      return until(() => messages.find((m) => m.id === id && (m.type === "error" || m.type === "next")), `an answer to ${id}`);
    },
    close: () => socket.close(),
  };
}

const wsErrors = (message: { type: string; payload?: unknown }): GqlError[] =>
  message.type === "error" ? (message.payload as GqlError[]) : ((message.payload as GqlBody).errors ?? []);

/** `fragment F0 on Query { ...F1 ...F1 }` … K levels: 2^K work for a naive depth or cost check. */
const FROZEN_MS = 10_000;

function fragmentBomb(k: number): string {
  const fragments = Array.from({ length: k }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
  return `query Bomb { ...F0 } ${fragments.join(" ")} fragment F${k} on Query { me { role } tenants { id } }`;
}

/**
 * Resolves with the ms /healthz took, asked while `during` is in flight. Judged against
 * FROZEN_MS: an unchecked bomb of K=24..30 expands to 2^K spreads (minutes of a blocked event
 * loop), so a bound of seconds tells a frozen process from a loaded machine's slow answer.
 */
async function healthzWhile<T>(during: Promise<T>): Promise<{ result: T; healthzMs: number }> {
  const started = performance.now();
  const health = ts.http("/healthz", { key: null }).then((r) => {
    expect(r.status).toBe(200);
    return performance.now() - started;
  });
  const [result, healthzMs] = await Promise.all([during, health]);
  return { result, healthzMs };
}

describe("pre-execution checks are linear in the document (item 1)", () => {
  it.each([24, 30])("a fragment bomb of K=%i answers at once with a client error, unauthenticated or not, and /healthz stays responsive", async (k) => {
    for (const key of [null, ts.adminKey]) {
      const { result, healthzMs } = await healthzWhile(post({ query: fragmentBomb(k) }, key));
      expect(result.status).toBe(400);
      expect(result.body.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
      expect(result.body.errors?.[0].message).toMatch(/too complex/);
      expect(healthzMs).toBeLessThan(FROZEN_MS);
    }
  });

  it("the same bomb over WebSocket is refused the same way", async () => {
    const ws = await rawSocket();
    const { result, healthzMs } = await healthzWhile(ws.answer({ query: fragmentBomb(30) }));
    expect(result.type).toBe("error");
    expect(wsErrors(result)[0]).toMatchObject({ extensions: { code: "BAD_USER_INPUT" } });
    expect(healthzMs).toBeLessThan(FROZEN_MS);
    ws.close();
  });

  it("a fragment cycle is a validation error on both transports, not a stack overflow", async () => {
    const query = "query Cycle { ...A } fragment A on Query { me { role } ...B } fragment B on Query { ...A }";
    const http = await post({ query });
    expect(http.status).toBe(400);
    expect(http.body.errors?.[0]).toMatchObject({ extensions: { code: "GRAPHQL_VALIDATION_FAILED" } });
    expect(http.body.errors?.map((e) => e.message).join(" ")).toMatch(/Cannot spread fragment "A" within itself/);
    const ws = await rawSocket();
    const answer = await ws.answer({ query });
    expect(wsErrors(answer)[0]).toMatchObject({ extensions: { code: "GRAPHQL_VALIDATION_FAILED" } });
    ws.close();
  });

  it("a document past the token cap is refused by the parser (GRAPHQL_PARSE_FAILED)", async () => {
    const query = `{ ${Array.from({ length: 3000 }, (_, i) => `a${i}: __typename`).join(" ")} }`;
    const http = await post({ query });
    expect(http.status).toBe(400);
    expect(http.body.errors?.[0]).toMatchObject({ extensions: { code: "GRAPHQL_PARSE_FAILED" } });
    expect(http.body.errors?.[0].message).toMatch(/tokens/);
    const ws = await rawSocket();
    expect(wsErrors(await ws.answer({ query }))[0]).toMatchObject({ extensions: { code: "GRAPHQL_PARSE_FAILED" } });
    ws.close();
  });

  it("aliases of a root connection's totalCount are refused: a root field's and a count's database work count", async () => {
    const tenant = await createTenant(ts);
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `c${i}: cdrs(tenantId: ${tenant.id}, first: 1) { totalCount }`).join(" ")} }`;
    // 1,000 of them do not even parse (token cap); 300 parse and cost too much.
    const thousand = await post({ query: aliases(1000) });
    expect(thousand.status).toBe(400);
    expect(thousand.body.errors?.[0].extensions?.code).toBe("GRAPHQL_PARSE_FAILED");
    const res = await post({ query: aliases(300) });
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0].message).toMatch(/too complex/);
    // A few aliases are fine.
    expect((await post({ query: aliases(2) })).body).toEqual({ data: { c0: { totalCount: 0 }, c1: { totalCount: 0 } } });
  });
});

const SECRET = "TOPSECRET-xyzzy-42";
const NUMERIC_SECRET = 987654321;

/** Malformed CreateExtensionInput / UpdateExtensionInput variables that carry a secret. */
function malformedInputs(tenantId: string): Array<{ name: string; doc: string; variables: Record<string, unknown>; hidden: string[] }> {
  const create = "mutation C($input: CreateExtensionInput!) { createExtension(input: $input) { id } }";
  const update = "mutation U($id: ID!, $input: UpdateExtensionInput!) { updateExtension(id: $id, input: $input) { id } }";
  const viaVar = "mutation V($s: String!) { createExtension(input: { tenantId: 1, extensionNumber: \"1\", secret: $s }) { id } }";
  const good = { tenantId, extensionNumber: "5555", secret: SECRET };
  const shapes: Array<[string, Record<string, unknown>]> = [
    ["an unknown field", { ...good, bogus: 1 }],
    ["a missing required field", { secret: SECRET }],
    ["a wrong enum", { ...good, status: "NOPE" }],
    ["a number for a string", { ...good, extensionNumber: 5555 }],
    ["a secret given as a number", { ...good, secret: NUMERIC_SECRET }],
    ["a secret given as an object", { ...good, secret: { value: SECRET } }],
    ["a secret given as a list", { ...good, secret: [SECRET] }],
    ["a null for a required field", { ...good, tenantId: null }],
    ["a boolean for voicemailEnabled", { ...good, voicemailEnabled: "yes" }],
    ["nested junk", { ...good, displayName: { deep: { deeper: 1 } } }],
    ["a secret inside junk", { ...good, bogus: { deep: { secret: SECRET } } }],
  ];
  const cases: Array<{ name: string; doc: string; variables: Record<string, unknown>; hidden: string[] }> = shapes.flatMap(([name, input]) => {
    const { tenantId: _t, ...forUpdate } = input;
    void _t;
    return [
      { name: `create: ${name}`, doc: create, variables: { input }, hidden: [SECRET, String(NUMERIC_SECRET)] },
      { name: `update: ${name}`, doc: update, variables: { id: "1", input: forUpdate }, hidden: [SECRET, String(NUMERIC_SECRET)] },
    ];
  });
  cases.push({ name: "a secret variable of the wrong type", doc: viaVar, variables: { s: NUMERIC_SECRET }, hidden: [String(NUMERIC_SECRET)] });
  cases.push({ name: "input not an object", doc: create, variables: { input: "not-an-object" }, hidden: [] });
  return cases;
}

describe("no write-only value in any error or log line (item 2)", () => {
  it("every malformed extension input over HTTP and WebSocket: a client error, no secret in the answer or the log", async () => {
    const tenant = await createTenant(ts);
    const ws = await rawSocket();
    logLines.length = 0;
    for (const c of malformedInputs(tenant.id)) {
      const http = await post({ query: c.doc, variables: c.variables });
      const answer = await ws.answer({ query: c.doc, variables: c.variables });
      for (const [transport, text, errors] of [
        ["http", http.text, http.body.errors],
        ["ws", JSON.stringify(answer), wsErrors(answer)],
      ] as const) {
        for (const hidden of c.hidden) expect({ case: c.name, transport, leaked: text.includes(hidden) }).toEqual({ case: c.name, transport, leaked: false });
        // (An update input has no required field: those shapes are valid, and extension 1 is not there.)
        const code = errors?.[0]?.extensions?.code;
        expect({ case: c.name, transport, code }).toEqual({ case: c.name, transport, code: ["update: a missing required field", "update: a null for a required field"].includes(c.name) ? "NOT_FOUND" : "BAD_USER_INPUT" });
      }
    }
    // Literals in the document are redacted too.
    const literal = await post({ query: `mutation { createExtension(input: { tenantId: ${tenant.id}, extensionNumber: "1", secret: ${NUMERIC_SECRET} }) { id } }` });
    expect(literal.status).toBe(400);
    expect(literal.text).not.toContain(String(NUMERIC_SECRET));
    ws.close();
    const log = logLines.join("\n");
    expect(log).not.toContain(SECRET);
    expect(log).not.toContain(String(NUMERIC_SECRET));
    expect(logLines.filter((l) => /"level":"(error|warn)"/.test(l))).toEqual([]);
  });
});

describe("client mistakes get client errors (item 6, issue 14 item 8)", () => {
  it("over WebSocket: parse, validation, depth and bad-variable errors carry their codes and are not logged as errors", async () => {
    const ws = await rawSocket();
    logLines.length = 0;
    let deep = "id";
    for (let i = 0; i < 8; i++) deep = `tenant { extensions(first: 1) { nodes { ${deep} } } }`;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ query: "{ me { role " }, "GRAPHQL_PARSE_FAILED"],
      [{ query: "{ nope }" }, "GRAPHQL_VALIDATION_FAILED"],
      [{ query: `{ extensions(first: 1) { nodes { ${deep} } } }` }, "GRAPHQL_VALIDATION_FAILED"],
      [{ query: "query Q($n: Int!) { extensions(first: $n) { totalCount } }", variables: { n: "x" } }, "BAD_USER_INPUT"],
      [{ query: "subscription S($t: ID) { registrationEvents(tenantId: $t) { type } }", variables: { t: { a: 1 } } }, "BAD_USER_INPUT"],
      [{ query: "query A { me { role } } query B { me { role } }" }, "OPERATION_RESOLUTION_FAILURE"],
      [{ query: "   " }, "BAD_REQUEST"],
    ];
    for (const [payload, code] of cases) {
      const answer = await ws.answer(payload);
      expect({ payload, code: wsErrors(answer)[0]?.extensions?.code }).toEqual({ payload, code });
    }
    ws.close();
    expect(logLines.filter((l) => /"level":"(error|warn)"/.test(l))).toEqual([]);
    expect(logLines.join("\n")).not.toMatch(/"stack"/);
  });

  it("a subscription over HTTP POST is a 400 BAD_REQUEST", async () => {
    logLines.length = 0;
    const res = await post({ query: "subscription { registrationEvents { type } }" });
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]).toMatchObject({ extensions: { code: "BAD_REQUEST" } });
    expect(logLines.filter((l) => /"level":"(error|warn)"/.test(l))).toEqual([]);
  });

  it("a complexity refusal is HTTP 400", async () => {
    const query = `{ tenants { extensions(first: 100) { nodes { tenant { extensions(first: 100) { nodes { tenant { extensions(first: 100) { nodes { id } } } } } } } } } }`;
    const res = await post({ query });
    expect(res.status).toBe(400);
    expect(res.body.errors?.[0]).toMatchObject({ extensions: { code: "BAD_USER_INPUT" } });
  });

  it.each(["0000-01-01T00:00:00Z", "-000001-01-01T00:00:00Z", "+275760-09-13T00:00:00Z"])("a CDR filter dated %s is BAD_USER_INPUT, not a 500", async (from) => {
    const tenant = await createTenant(ts);
    logLines.length = 0;
    const res = await post({ query: "query Q($t: ID!, $f: CdrFilter) { cdrs(tenantId: $t, filter: $f) { totalCount } }", variables: { t: tenant.id, f: { from } } });
    expect(res.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(logLines.filter((l) => /"level":"error"/.test(l))).toEqual([]);
  });
});

/** Unique names sent (issue: 10,000; HARDEN_METRIC_NAMES=10000 to run that; the label bound is 200). */
const NAMES = Number(process.env.HARDEN_METRIC_NAMES ?? 3_000);
const NAMES_WS = Math.floor(NAMES * 0.9);

describe("metric labels are bounded (item 3)", () => {
  it(`${NAMES} unique operation names (WebSocket and HTTP) leave /metrics flat`, async () => {
    const metricsSize = async () => (await (await ts.http("/metrics", { key: null })).text()).length;
    // Warm the label set past its bound, then measure.
    for (let i = 0; i < 250; i++) await post({ query: `query Warm${i} { __typename }` }, null);
    const before = await metricsSize();
    const rssBefore = process.memoryUsage().rss;
    // 90 % of the names over WebSocket (cheap: a socket keeps WS_MAX operations in flight), the rest over HTTP.
    let sent = 0;
    const overWs = () =>
      new Promise<void>((resolve, reject) => {
        const socket = new WebSocket(ts.wsUrl, "graphql-transport-ws");
        let inFlight = 0;
        const pump = () => {
          while (inFlight < WS_MAX && sent < NAMES_WS) {
            const name = `U${sent++}x`;
            inFlight++;
            socket.send(JSON.stringify({ id: name, type: "subscribe", payload: { query: `query ${name} { __typename }`, operationName: name } }));
          }
          if (inFlight === 0) socket.close();
        };
        socket.on("open", () => socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${ts.adminKey}` } })));
        socket.on("message", (data) => {
          const message = JSON.parse(String(data)) as { type: string };
          if (message.type === "error") reject(new Error(String(data)));
          if (message.type === "complete") inFlight--;
          if (message.type === "connection_ack" || message.type === "complete") pump();
        });
        socket.on("close", () => (sent >= NAMES_WS ? resolve() : reject(new Error("socket closed early"))));
      });
    const overHttp = async () => {
      while (sent < NAMES) {
        const res = await ts.http("/graphql", { method: "POST", key: null, headers: { "content-type": "application/json" }, body: JSON.stringify({ query: `query U${sent++}x { __typename }` }) });
        await res.arrayBuffer();
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: 4 }, overWs));
    await Promise.all(Array.from({ length: 4 }, overHttp));
    process.stdout.write(`metrics: ${NAMES} operations in ${Math.round(performance.now() - started)} ms\n`);
    const after = await metricsSize();
    process.stdout.write(`metrics: /metrics ${before} → ${after} bytes; test-process RSS (server in-process) ${Math.round(rssBefore / 2 ** 20)} → ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB\n`);
    // Counters grow by digits and the ws transport's few label sets; no per-name label values.
    expect(after - before).toBeLessThan(3_000);
    const text = await (await ts.http("/metrics", { key: null })).text();
    expect(text).toMatch(/graphql_operations_total\{operation="other",type="query",outcome="success",transport="http"\} \d+/);
    expect(text).toMatch(/graphql_operations_total\{operation="other",type="query",outcome="success",transport="ws"\} \d+/);
    expect(text).not.toMatch(/operation="U\d+x"/);
  }, 120_000);
});

describe("open limits (item 9)", () => {
  it(`one socket may run at most ${WS_MAX} operations at once; one more closes it with 4429`, async () => {
    const ws = await rawSocket();
    for (let i = 0; i < WS_MAX; i++) ws.send({ query: "subscription { registrationEvents { type } }" });
    // The ones within the cap are accepted (no error for them); the next one closes the socket.
    ws.send({ query: "subscription { registrationEvents { type } }" });
    const closed = await ws.closed();
    expect(closed.code).toBe(4429);
    expect(closed.reason).toMatch(/Too many operations/);
    const errors = ws.messages.filter((m) => m.type === "error");
    expect(errors.map((m) => m.id)).toEqual([String(WS_MAX + 1)]);
  });

  it("introspection needs a key; any valid key may introspect", async () => {
    const query = "{ __schema { queryType { name } } }";
    const anonymous = await post({ query }, null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.errors?.[0]).toMatchObject({ extensions: { code: "UNAUTHENTICATED" } });
    const typeQuery = await post({ query: '{ __type(name: "Extension") { name } }' }, null);
    expect(typeQuery.body.errors?.[0]).toMatchObject({ extensions: { code: "UNAUTHENTICATED" } });
    const viewer = await createKey(ts, "VIEWER", (await createTenant(ts)).id);
    expect((await post({ query }, viewer)).body).toEqual({ data: { __schema: { queryType: { name: "Query" } } } });
  });

  it("POST /api/events with text/plain is 415, like REST", async () => {
    const ingest = await createKey(ts, "INGEST", null);
    const res = await ts.http("/api/events", { method: "POST", key: ingest, headers: { "content-type": "text/plain" }, body: '{"type":"call"}' });
    expect(res.status).toBe(415);
    expect(await res.json()).toEqual({ message: "The request body must be JSON (Content-Type: application/json)." });
  });
});

describe("no existence oracle for an INGEST key (item 7)", () => {
  it("tenant(id) answers an existing and a missing tenant alike", async () => {
    const tenant = await createTenant(ts);
    for (const ingest of [await createKey(ts, "INGEST", null), await createKey(ts, "INGEST", tenant.id)]) {
      const existing = await post({ query: `{ tenant(id: ${tenant.id}) { id } }` }, ingest);
      const missing = await post({ query: "{ tenant(id: 99999999) { id } }" }, ingest);
      expect(existing.body).toEqual(missing.body);
      expect(existing.body.errors?.[0].extensions?.code).toBe("FORBIDDEN");
    }
  });
});

describe("REST list parameters given as arrays or objects (item 8)", () => {
  it.each([
    ["tenant_id[]=1", "tenant_id"],
    ["tenant_id[a]=1", "tenant_id"],
    ["search[a]=b", "search"],
    ["search=a&search=b", "search"],
    ["status[]=active", "status"],
    ["page[]=1", "page"],
    ["per_page[x]=2", "per_page"],
  ])("GET /api/extensions?%s is 422 on %s", async (query, field) => {
    const tenant = await createTenant(ts);
    await createExtension(ts, tenant.id);
    const res = await ts.http(`/api/extensions?${query}`);
    expect(res.status).toBe(422);
    const body = (await res.json()) as { errors: Record<string, string[]> };
    expect(Object.keys(body.errors)).toEqual([field]);
  });
});
