import fs from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { postEvents } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { CHROMIUM, HEADLESS_CHROMIUM_ARGS } from "../support/browser-audio";

/**
 * GET /graphql in a browser: GraphiQL from the server alone (no CDN, CSP 'self'), the API key from
 * its field on every request, a query and a subscription run from the page and read back.
 */

function chromiumAvailable(): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  if (process.env.CI === "true" || process.env.REQUIRE_REAL_SERVICES === "1") throw new Error(`The explorer browser test needs Chromium at ${CHROMIUM} (apt-get install -y chromium).`);
  process.stderr.write(`SKIPPED: the explorer browser test needs Chromium at ${CHROMIUM}; it did not run.\n`);
  return false;
}

let ts: TestServer;
beforeAll(async () => void (ts = await startTestServer()));
afterAll(async () => ts?.stop());

it("GraphQL over HTTP is unchanged: POST, GET with a query, and a JSON client's GET are not the page", async () => {
  const post = await ts.http("/graphql", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ me { role } }" }) });
  expect(await post.json()).toEqual({ data: { me: { role: "ADMIN" } } });
  const get = await ts.http(`/graphql?query=${encodeURIComponent("{ me { role } }")}`, { headers: { accept: "text/html,application/json;q=0.9" } });
  expect(await get.json()).toEqual({ data: { me: { role: "ADMIN" } } });
  const json = await ts.http("/graphql", { headers: { accept: "application/json" } });
  expect(json.headers.get("content-type")).not.toContain("text/html");
  const page = await ts.http("/graphql", { key: null, headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } });
  expect(page.status).toBe(200);
  expect(page.headers.get("content-type")).toContain("text/html");
  expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
  const html = await page.text();
  expect(html).not.toMatch(/https?:\/\//);
});

describe("in Chromium", () => {
  const available = chromiumAvailable();
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  beforeAll(async () => {
    if (available) browser = await chromium.launch({ executablePath: CHROMIUM, args: HEADLESS_CHROMIUM_ARGS, headless: true });
  });
  afterAll(async () => browser?.close());

  const editor = (which: "query" | "result") => (which === "query" ? ".graphiql-query-editor .CodeMirror" : ".result-window .CodeMirror");
  const setQuery = (text: string) => page.evaluate(`document.querySelector(${JSON.stringify(editor("query"))}).CodeMirror.setValue(${JSON.stringify(text)})`);
  /** Polls the page (waitForFunction would compile its predicate with eval, which the page's CSP forbids). */
  const resultContaining = async (text: string, timeoutMs = 20_000, onPoll?: () => void) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await result().catch(() => "");
      if (value.includes(text)) return value;
      if (Date.now() > deadline) throw new Error(`the result pane never showed ${text}: ${value}\n${problems.join("\n")}`);
      onPoll?.();
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const result = async () => String(await page.evaluate(`document.querySelector(${JSON.stringify(editor("result"))}).CodeMirror.getValue()`));

  (available ? it : it.skip)("runs a query and a subscription with the key from its field; nothing leaves the origin", async () => {
    const { tenant, viewerKey } = await tenantWithKeys(ts);
    await createExtension(ts, tenant.id, { extensionNumber: "1001", displayName: "Alice Smith" });
    const ingestKey = await createKey(ts, "INGEST", null);

    page = await browser.newPage();
    const origin = new URL(ts.url).host;
    page.on("request", (request) => {
      if (new URL(request.url()).host !== origin && !request.url().startsWith("data:")) problems.push(`request off the origin: ${request.url()}`);
    });
    page.on("console", (message) => void (message.type() === "error" && problems.push(`console: ${message.text()}`)));
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    const sent: Array<string | undefined> = [];
    page.on("request", (request) => void (request.url().endsWith("/graphql") && request.method() === "POST" && sent.push(request.headers()["authorization"])));

    await page.goto(`${ts.url}/graphql`);
    await page.fill("#key", viewerKey);
    sent.length = 0; // before the key, the page asked without one (and was refused)
    await page.click("#keybar button");
    await page.waitForSelector(".graphiql-query-editor .CodeMirror");
    // The schema's docs come from introspection, sent with the key.
    await page.click('button[aria-label="Show Documentation Explorer"]');
    await page.waitForSelector("text=Query", { timeout: 15_000 });

    await setQuery('{ extensions(search: "alice") { nodes { extensionNumber displayName } } }');
    await page.click(".graphiql-execute-button");
    expect(JSON.parse(await resultContaining("Alice Smith"))).toEqual({ data: { extensions: { nodes: [{ extensionNumber: "1001", displayName: "Alice Smith" }] } } });
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((header) => header === `Bearer ${viewerKey}`)).toBe(true);

    await setQuery("subscription { registrationEvents { type extension { extensionNumber } device { userAgent } } }");
    await page.click(".graphiql-execute-button");
    // The page's subscription runs over graphql-ws: register until its first event shows.
    const register = () =>
      postEvents(ts, ingestKey, { type: "registration", action: "register", domain: tenant.sipDomain, extension: "1001", contact: "sip:1001@192.0.2.7:5060", user_agent: "Explorer Phone", transport: "udp", expires: 3600 });
    await register();
    const timer = setInterval(() => void register(), 1000);
    let events: string;
    try {
      events = await resultContaining("Explorer Phone");
    } finally {
      clearInterval(timer);
    }
    expect(JSON.parse(events)).toMatchObject({ data: { registrationEvents: { extension: { extensionNumber: "1001" }, device: { userAgent: "Explorer Phone" } } } });
    expect(problems).toEqual([]);
  }, 90_000);
});
