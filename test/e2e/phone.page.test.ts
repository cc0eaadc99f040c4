import { startTestServer, type TestServer } from "../support/server";

/**
 * GET /phone over plain HTTP (the browser suite, phone.browser.test.ts, makes the calls): the page,
 * its script and SIP.js come from the product itself, under a CSP that lets scripts come from 'self'
 * only; config.json hands the page PHONE_WS_URL; nothing outside SIP.js's lib/ is reachable.
 * Runs on whatever backend the environment gives (the embedded default included).
 */
describe("GET /phone", () => {
  let ts: TestServer;
  let bare: TestServer;
  beforeAll(async () => {
    ts = await startTestServer({ env: { PHONE_WS_URL: "ws://127.0.0.1:8080" } });
    bare = await startTestServer({ shareSchemaOf: ts });
  }, 60_000);
  afterAll(async () => {
    await bare?.stop();
    await ts?.stop();
  });

  it("serves the page without a key, with its script and SIP.js from this server, under a 'self' CSP", async () => {
    for (const url of [`${ts.url}/phone`, `${ts.url}/phone/`]) {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("connect-src 'self' ws: wss:");
      expect(csp).toContain("frame-ancestors 'none'");
      const html = await res.text();
      expect(html).toContain('<script type="module" src="/phone/phone.js"></script>');
      // nothing from another origin
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    }
    const script = await fetch(`${ts.url}/phone/phone.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(await script.text()).toContain('from "/phone/sip.js/index.js"');
    const sipJs = await fetch(`${ts.url}/phone/sip.js/index.js`);
    expect(sipJs.status).toBe(200);
    expect(sipJs.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(await sipJs.text()).toContain('export * from "./api/index.js"');
    expect((await fetch(`${ts.url}/phone/sip.js/api/user-agent.js`)).status).toBe(200);
  });

  it("tells the page the engine's WebSocket address (PHONE_WS_URL), or null when it is not set", async () => {
    expect(await (await fetch(`${ts.url}/phone/config.json`)).json()).toEqual({ wsUrl: "ws://127.0.0.1:8080" });
    expect(await (await fetch(`${bare.url}/phone/config.json`)).json()).toEqual({ wsUrl: null });
  });

  it("answers 404 for anything else, outside SIP.js's lib/ included", async () => {
    for (const p of ["/phone/nope.js", "/phone/sip.js/nope.js", "/phone/sip.js/../package.json", "/phone/sip.js/%2e%2e/package.json", "/phone/sip.js/api/index.d.ts", "/phone/sip.js/../../../package.json"]) {
      const res = await fetch(`${ts.url}${p}`);
      expect([p, res.status]).toEqual([p, 404]);
    }
  });
});
