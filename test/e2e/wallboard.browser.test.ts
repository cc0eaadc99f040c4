import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { AddQueueAgentDocument, CreateQueueWithTargetDocument, MarkVoicemailHeardDocument, QueueStatsNowDocument, QueueWaitingAndAgentsDocument, UpdateQueueAgentDocument } from "../graphql/generated";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { postEvents } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { waitFor as untilMet } from "../support/wait";
import { toneWav } from "../../src/modules/voicemail/wav";
import { postVoicemail } from "./voicemail-support";
import { CHROMIUM, HEADLESS_CHROMIUM_ARGS } from "../support/browser-audio";

/**
 * The wallboard in a real browser: Debian's Chromium driven by playwright-core (which downloads no
 * browser of its own). The page must come up from the server alone, take a VIEWER key, and show
 * tiles that follow real events over graphql-ws, matching the figures GraphQL answers.
 */
const SCREENSHOT = path.resolve(__dirname, "../../test-results/wallboard.png");
const PHONE_SCREENSHOT = path.resolve(__dirname, "../../test-results/wallboard-390.png");
const CALLERS_SCREENSHOT = path.resolve(__dirname, "../../test-results/wallboard-callers.png");
const CARDS_SCREENSHOT = path.resolve(__dirname, "../../test-results/wallboard-callers-390.png");
/** Evaluated in the page (this project's TypeScript has no DOM types): the key the tab keeps. */
const STORED_KEY = `sessionStorage.getItem("pbx.wallboard.key")`;

/**
 * A TCP relay in front of the server that can be cut: while cut it drops every connection and
 * refuses new ones, as an unreachable server would; restored, it relays again on the same port.
 */
async function relayTo(port: number) {
  const sockets = new Set<net.Socket>();
  let listener: net.Server | null = null;
  let relayPort = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const server = net.createServer((client) => {
        const upstream = net.connect(port, "127.0.0.1");
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on("close", () => sockets.delete(socket));
          socket.on("error", () => undefined);
        }
        client.pipe(upstream).pipe(client);
      });
      server.once("error", reject);
      server.listen(relayPort, "127.0.0.1", () => {
        relayPort = (server.address() as net.AddressInfo).port;
        listener = server;
        resolve();
      });
    });
  const cut = async () => {
    const server = listener;
    listener = null;
    for (const socket of sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  };
  await listen();
  return { url: () => `http://127.0.0.1:${relayPort}`, cut, restore: listen };
}

function chromiumAvailable(): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  if (process.env.CI === "true" || process.env.REQUIRE_REAL_SERVICES === "1") {
    throw new Error(`The wallboard browser test needs Chromium at ${CHROMIUM} (Debian package "chromium": apt-get install -y chromium).`);
  }
  process.stderr.write(`SKIPPED: the wallboard browser test needs Chromium at ${CHROMIUM} (apt-get install -y chromium); it did not run.\n`);
  return false;
}

const FIGURES = [
  "callsWaiting",
  "longestWaitSeconds",
  "agentsTotal",
  "agentsAvailable",
  "agentsBusy",
  "agentsPaused",
  "answeredToday",
  "abandonedToday",
  "averageWaitSeconds",
  "serviceLevel",
] as const;

(chromiumAvailable() ? describe : describe.skip)("the wallboard in Chromium", () => {
  let ts: TestServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    ts = await startTestServer();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: HEADLESS_CHROMIUM_ARGS, headless: true });
  });
  afterAll(async () => {
    await browser?.close();
    await ts?.stop();
  });

  const figure = (queueId: string, field: string) => `[data-queue-id="${queueId}"] [data-field="${field}"]`;
  const waitFor = (queueId: string, field: string, value: string | number) =>
    page.waitForSelector(`${figure(queueId, field)}[data-value="${value}"]`, { timeout: 10_000 });

  /** Every figure of the tile, as the page holds it (the raw value, not the formatted text). */
  const tile = async (queueId: string) =>
    Object.fromEntries(
      await Promise.all(FIGURES.map(async (field) => [field, Number(await page.getAttribute(figure(queueId, field), "data-value"))] as const)),
    );

  it("shows live tiles from real events, matching the figures GraphQL answers", async () => {
    const ingestKey = await createKey(ts, "INGEST", null);
    const { tenant, viewerKey } = await tenantWithKeys(ts, { name: "Acme Support Centre" });
    const queues = [];
    for (const [name, number] of [
      ["Support", "600"],
      ["Sales", "601"],
    ]) {
      queues.push((await ts.ok(CreateQueueWithTargetDocument, { input: { tenantId: tenant.id, name, number } })).createQueue);
    }
    const [support, sales] = queues;
    const memberships: string[] = [];
    for (const [i, displayName] of ["Alice Moreau", "Bob Okafor", "Chen Wei"].entries()) {
      const extension = await createExtension(ts, tenant.id, { extensionNumber: `20${i + 1}`, displayName, voicemailEnabled: i === 1 });
      memberships.push((await ts.ok(AddQueueAgentDocument, { queueId: support.id, extensionId: extension.id })).addQueueAgent.id);
      if (i < 2) await ts.ok(AddQueueAgentDocument, { queueId: sales.id, extensionId: extension.id });
    }

    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") problems.push(`${message.type()}: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()}`));

    await page.goto(`${ts.url}/wallboard`);
    await page.fill("#key", viewerKey);
    await page.click("#login button[type=submit]");
    await waitFor(support.id, "callsWaiting", 0);
    await waitFor(sales.id, "callsWaiting", 0);
    await page.waitForSelector('#status[data-state="live"]');
    expect(await page.textContent("#title")).toBe("Acme Support Centre · queues");
    expect(await page.evaluate(STORED_KEY)).toBe(viewerKey);

    const domain = tenant.sipDomain;
    const queueEvent = (queue: string, action: string, callId: string, extra: Record<string, unknown> = {}) => ({
      type: "queue",
      action,
      domain,
      queue,
      call_id: callId,
      ...extra,
    });
    const at = Date.now();
    const iso = (secondsAgo: number) => new Date(at - secondsAgo * 1000).toISOString();

    // Two callers join Support: the tile goes from 0 to 2 waiting without a reload.
    await postEvents(ts, ingestKey, [queueEvent("600", "join", "w1", { occurred_at: iso(40) }), queueEvent("600", "join", "w2", { occurred_at: iso(12) })]);
    await waitFor(support.id, "callsWaiting", 2);

    // Alice picks up the first (after 38 s: a service-level breach), Bob takes a direct call, Chen pauses.
    await postEvents(ts, ingestKey, [
      { type: "call", action: "start", domain, extension: "201", call_id: "w1-201", linked_id: "w1", direction: "inbound", caller_number: "+14155550123", caller_name: "Dana Smith", callee_number: "600", queue: "600", occurred_at: iso(3) },
      { type: "call", action: "answer", domain, extension: "201", call_id: "w1-201", occurred_at: iso(2) },
      queueEvent("600", "answer", "w1", { agent: "201", occurred_at: iso(2) }),
      { type: "call", action: "start", domain, extension: "202", call_id: "d-202", direction: "outbound", caller_number: "202", callee_number: "+442071234567", occurred_at: iso(1) },
      queueEvent("601", "join", "s1", { occurred_at: iso(5) }),
      queueEvent("601", "abandon", "s1", { occurred_at: iso(1) }),
    ]);
    await ts.ok(UpdateQueueAgentDocument, { id: memberships[2], paused: true });
    await waitFor(support.id, "answeredToday", 1);
    await waitFor(support.id, "callsWaiting", 1);
    await waitFor(support.id, "agentsPaused", 1);
    await waitFor(support.id, "agentsBusy", 2);
    await waitFor(sales.id, "abandonedToday", 1);
    await waitFor(sales.id, "agentsBusy", 2);

    // The page shows exactly what GraphQL answers.
    for (const queue of [support, sales]) {
      const asked = Date.now();
      const { stats } = (await ts.ok(QueueStatsNowDocument, { id: queue.id }, viewerKey)).queue;
      const shown = await tile(queue.id);
      // the page's wait counts up by itself: it may be ahead of the answer by the time the two reads took
      const took = Math.ceil((Date.now() - asked) / 1000);
      const { longestWaitSeconds, ...rest } = shown;
      const { longestWaitSeconds: queried, updatedAt: _updatedAt, queueId: _queueId, ...figures } = stats;
      expect(rest).toEqual(figures);
      expect(Math.abs(longestWaitSeconds - queried)).toBeLessThanOrEqual(2 + took);
    }
    const supportTile = `[data-queue-id="${support.id}"]`;
    expect(await page.getAttribute(supportTile, "class")).toContain("breach");
    expect(await page.textContent(`${figure(support.id, "serviceLevel")} .value`)).toBe("0%");
    expect(await page.textContent(`${figure(support.id, "averageWaitSeconds")} .value`)).toBe("0:38");
    // The agents by state (their list is read after the figures arrive: wait for it), and the calls in progress.
    const agents = () => page.$$eval(`${supportTile} .agent`, (items) => items.map((i: any) => [i.querySelector(".who").textContent, i.dataset.state]));
    const expectedAgents = [
      ["Alice Moreau", "busy"],
      ["Bob Okafor", "busy"],
      ["Chen Wei", "paused"],
    ];
    await untilMet("the agents' states on the tile", async () => JSON.stringify(await agents()) === JSON.stringify(expectedAgents), 10_000).catch(() => undefined);
    expect(await agents()).toEqual(expectedAgents);
    await page.waitForFunction(`document.querySelectorAll("#calls tbody tr").length === 2`);
    expect(await page.textContent("#calls tbody")).toContain("Dana Smith +14155550123");

    // A voicemail for Bob: his badge shows the unheard count at once, and clears when it is heard.
    const voicemail = await postVoicemail(ts, ingestKey, { domain, extension: "202", message_id: "wb-1", caller_number: "+14155550199" }, { bytes: toneWav({ seconds: 1 }) });
    expect(voicemail.status).toBe(201);
    const bob = `${supportTile} .agent[data-unheard="1"]`;
    await page.waitForSelector(bob, { timeout: 10_000 });
    expect(await page.textContent(`${bob} .who`)).toBe("Bob Okafor");
    expect(await page.textContent(`${bob} .voicemail`)).toBe("✉ 1");

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await ts.ok(MarkVoicemailHeardDocument, { id: String(voicemail.body.data.id) });
    // A selector, not a string predicate: polling one would be eval, which the page's CSP refuses.
    await page.waitForSelector(bob, { state: "detached", timeout: 10_000 });
    expect(await page.$$eval(`${supportTile} .agent[data-unheard="0"]`, (agents) => agents.length)).toBe(3);

    // The key survives a reload of the tab; signing out forgets it.
    await page.reload();
    await waitFor(support.id, "answeredToday", 1);
    await page.click("#signout");
    await page.waitForSelector("#login:not([hidden])");
    expect(await page.evaluate(STORED_KEY)).toBeNull();

    expect(problems).toEqual([]);
  });

  it("on a phone: the formula, the callers waiting with growing waits, agents' state times, dimmed while unreachable", async () => {
    const ingestKey = await createKey(ts, "INGEST", null);
    const { tenant, viewerKey } = await tenantWithKeys(ts, { name: "Pocket Support" });
    const queue = (await ts.ok(CreateQueueWithTargetDocument, { input: { tenantId: tenant.id, name: "Pocket", number: "700" } })).createQueue;
    const members: string[] = [];
    for (const [i, displayName] of ["Ana Lima", "Ben Cole", "Cleo Park"].entries()) {
      const extension = await createExtension(ts, tenant.id, { extensionNumber: `30${i + 1}`, displayName });
      members.push((await ts.ok(AddQueueAgentDocument, { queueId: queue.id, extensionId: extension.id })).addQueueAgent.id);
    }
    const domain = tenant.sipDomain;
    const iso = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000).toISOString();
    await postEvents(ts, ingestKey, [
      { type: "queue", action: "join", domain, queue: "700", call_id: "caller-a", occurred_at: iso(65) },
      { type: "queue", action: "join", domain, queue: "700", call_id: "caller-b", occurred_at: iso(5) },
      { type: "call", action: "start", domain, extension: "301", call_id: "c-301", direction: "outbound", caller_number: "301", callee_number: "+442071234567", occurred_at: iso(30) },
      { type: "call", action: "answer", domain, extension: "301", call_id: "c-301", occurred_at: iso(20) },
    ]);

    // pausedAt: set when the pause begins, kept while it lasts, cleared on resume.
    const paused = (await ts.ok(UpdateQueueAgentDocument, { id: members[1], paused: true })).updateQueueAgent;
    const read = async () => (await ts.ok(QueueWaitingAndAgentsDocument, { id: queue.id }, viewerKey)).queue;
    const pausedAt = (await read()).agents.find((a) => a.id === members[1])!.pausedAt;
    expect(paused.paused).toBe(true);
    expect(pausedAt).not.toBeNull();
    await ts.ok(UpdateQueueAgentDocument, { id: members[1], paused: true });
    expect((await read()).agents.find((a) => a.id === members[1])!.pausedAt).toBe(pausedAt);
    await ts.ok(UpdateQueueAgentDocument, { id: members[2], paused: true });
    await ts.ok(UpdateQueueAgentDocument, { id: members[2], paused: false });
    const now = await read();
    expect(now.agents.find((a) => a.id === members[2])!.pausedAt).toBeNull();
    expect(now.waitingCalls.map((c) => c.callId)).toEqual(["caller-a", "caller-b"]);
    // Another tenant's key does not reach the queue, nor its callers.
    const other = await tenantWithKeys(ts, { name: "Elsewhere" });
    const foreign = await ts.gql(QueueWaitingAndAgentsDocument, { id: queue.id }, other.viewerKey);
    expect(foreign.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");

    const relay = await relayTo(Number(new URL(ts.url).port));
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    try {
      await phone.goto(`${relay.url()}/wallboard`);
      await phone.fill("#key", viewerKey);
      await phone.click("#login button[type=submit]");
      await phone.waitForSelector(`${figure(queue.id, "callsWaiting")}[data-value="2"]`, { timeout: 10_000 });
      await phone.waitForSelector('#status[data-state="live"]');

      expect(await phone.textContent("#formula")).toContain("answered within the queue's target seconds ÷ (calls answered + callers who hung up after waiting longer than the target)");

      // The callers waiting, longest first, with waits that grow on the page.
      const tileSel = `[data-queue-id="${queue.id}"]`;
      await phone.waitForFunction(([sel, n]) => (globalThis as any).document.querySelectorAll(sel).length === n, [`${tileSel} .caller`, 2] as const, { timeout: 10_000 });
      expect(await phone.$$eval(`${tileSel} .caller`, (items) => items.map((i: any) => i.dataset.callId))).toEqual(["caller-a", "caller-b"]);
      const waitOf = (callId: string) => phone.getAttribute(`${tileSel} .caller[data-call-id="${callId}"] .since`, "data-seconds").then(Number);
      const first = await waitOf("caller-a");
      expect(first).toBeGreaterThanOrEqual(64);
      // The text is the wait it carries, as m:ss; which second it shows depends on the machine's pace, so
      // it is read together with the figure in one evaluation, never compared with a clock.
      const shownWait = await phone.$eval(`${tileSel} .caller[data-call-id="caller-a"] .since`, (el: any) => ({ text: el.textContent, seconds: Number(el.dataset.seconds) }));
      expect(shownWait.seconds).toBeGreaterThanOrEqual(first);
      expect(shownWait.text).toBe(`${Math.floor(shownWait.seconds / 60)}:${String(shownWait.seconds % 60).padStart(2, "0")}`);
      await phone.waitForFunction(
        ([sel, before]) => Number((globalThis as any).document.querySelector(sel).dataset.seconds) > before,
        [`${tileSel} .caller[data-call-id="caller-a"] .since`, first] as const,
        { timeout: 10_000 },
      );

      // Agents' time in their state: Ana on a call for ~20 s, Ben paused since pausedAt, Cleo available since her resume.
      const agentSince = (name: string) =>
        phone.$eval(`${tileSel} .agent:has(.who:text-is("${name}"))`, (item: any) => ({ state: item.dataset.state, seconds: item.querySelector(".since")?.dataset.seconds ?? null }));
      const ana = await agentSince("Ana Lima");
      expect(ana.state).toBe("busy");
      expect(Number(ana.seconds)).toBeGreaterThanOrEqual(19);
      const ben = await agentSince("Ben Cole");
      expect(ben.state).toBe("paused");
      expect(Number(ben.seconds)).toBeGreaterThanOrEqual(0);
      const cleo = await agentSince("Cleo Park");
      expect(cleo.state).toBe("available");
      const cleoSince = now.agents.find((a) => a.id === members[2])!.availableSince;
      expect(Date.parse(cleoSince!)).toBeGreaterThan(Date.parse(now.agents.find((a) => a.id === members[2])!.createdAt));
      expect(Number(cleo.seconds)).toBeGreaterThanOrEqual(0);
      expect(Number(cleo.seconds)).toBeLessThanOrEqual((Date.now() - Date.parse(cleoSince!)) / 1000 + 1);

      // A caller leaves: the list follows without a reload.
      await postEvents(ts, ingestKey, [{ type: "queue", action: "abandon", domain, queue: "700", call_id: "caller-b", occurred_at: iso(0) }]);
      await phone.waitForFunction(([sel, n]) => (globalThis as any).document.querySelectorAll(sel).length === n, [`${tileSel} .caller`, 1] as const, { timeout: 10_000 });

      // A phone's width: nothing sticks out sideways.
      fs.mkdirSync(path.dirname(PHONE_SCREENSHOT), { recursive: true });
      await phone.screenshot({ path: PHONE_SCREENSHOT, fullPage: true });
      expect(await phone.evaluate(`[document.documentElement.scrollWidth, window.innerWidth]`)).toEqual([390, 390]);

      // The server becomes unreachable: "Reconnecting…" and the figures dimmed; back, and they are not.
      expect(await phone.$$("#board.stale")).toHaveLength(0);
      await relay.cut();
      await phone.waitForSelector("#board.stale", { timeout: 10_000 });
      expect(await phone.textContent("#status")).not.toBe("Live");
      expect(Number(await phone.evaluate(`getComputedStyle(document.querySelector(".tiles")).opacity`))).toBeLessThan(1);
      await relay.restore();
      await phone.waitForSelector('#status[data-state="live"]', { timeout: 30_000 });
      await phone.waitForSelector("#board:not(.stale)", { timeout: 10_000 });
      expect(Number(await phone.evaluate(`getComputedStyle(document.querySelector(".tiles")).opacity`))).toBe(1);
    } finally {
      await phone.close();
      await relay.cut();
    }
  });

  it("names the callers waiting, shows the abandon rate, explains a service level that abandons within the target leave whole, and turns calls into cards at 390 px", async () => {
    const ingestKey = await createKey(ts, "INGEST", null);
    const { tenant, viewerKey } = await tenantWithKeys(ts, { name: "Front Desk" });
    const queue = (await ts.ok(CreateQueueWithTargetDocument, { input: { tenantId: tenant.id, name: "Front", number: "800", serviceLevelSeconds: 20 } })).createQueue;
    for (const [i, displayName] of ["Dora Lane", "Eli Stone"].entries()) {
      const extension = await createExtension(ts, tenant.id, { extensionNumber: `40${i + 1}`, displayName });
      await ts.ok(AddQueueAgentDocument, { queueId: queue.id, extensionId: extension.id });
    }
    const domain = tenant.sipDomain;
    const iso = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000).toISOString();
    const join = (callId: string, secondsAgo: number, who: Record<string, string> = {}) => ({ type: "queue", action: "join", domain, queue: "800", call_id: callId, occurred_at: iso(secondsAgo), ...who });
    await postEvents(ts, ingestKey, [
      // Two answered within the 20 s target, three who hung up within it: the service level stays 100 %.
      join("a1", 300), { type: "queue", action: "answer", domain, queue: "800", call_id: "a1", agent: "401", occurred_at: iso(295) },
      join("a2", 250), { type: "queue", action: "answer", domain, queue: "800", call_id: "a2", agent: "402", occurred_at: iso(240) },
      ...["x1", "x2", "x3"].flatMap((id, i) => [join(id, 200 - i * 10), { type: "queue", action: "abandon", domain, queue: "800", call_id: id, occurred_at: iso(197 - i * 10) }]),
      // Waiting now: one who gave a name and number, one with a number only, and one with neither.
      join("w-dana", 30, { caller_number: "+14155550123", caller_name: "Dana Smith" }),
      join("w-num", 20, { caller_number: "+15550001111" }),
      join("w-anon", 10),
      // A call in progress, for the calls list.
      { type: "call", action: "start", domain, extension: "401", call_id: "c-401", direction: "inbound", caller_number: "+14155550199", caller_name: "Frank Ocean", callee_number: "401", occurred_at: iso(50) },
      { type: "call", action: "answer", domain, extension: "401", call_id: "c-401", occurred_at: iso(45) },
    ]);
    // GraphQL answers who is waiting, in the order they joined.
    const waiting = await ts.http("/graphql", {
      method: "POST",
      key: viewerKey,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `query($id: ID!) { queue(id: $id) { waitingCalls { callId callerNumber callerName } } }`, variables: { id: queue.id } }),
    }).then((r) => r.json() as Promise<{ data: { queue: { waitingCalls: unknown[] } } }>);
    expect(waiting.data.queue.waitingCalls).toEqual([
      { callId: "w-dana", callerNumber: "+14155550123", callerName: "Dana Smith" },
      { callId: "w-num", callerNumber: "+15550001111", callerName: null },
      { callId: "w-anon", callerNumber: null, callerName: null },
    ]);

    const tileSel = `[data-queue-id="${queue.id}"]`;
    const show = async (viewport: { width: number; height: number }, file: string) => {
      const view = await browser.newPage({ viewport, ...(viewport.width < 500 ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}) });
      await view.goto(`${ts.url}/wallboard`);
      await view.fill("#key", viewerKey);
      await view.click("#login button[type=submit]");
      await view.waitForSelector(`${figure(queue.id, "callsWaiting")}[data-value="3"]`, { timeout: 10_000 });
      await view.waitForFunction(([sel, n]) => (globalThis as any).document.querySelectorAll(sel).length === n, [`${tileSel} .caller`, 3] as const, { timeout: 10_000 });
      await view.waitForFunction(`document.querySelectorAll("#calls tbody tr").length === 1`, undefined, { timeout: 10_000 });
      fs.mkdirSync(path.dirname(file), { recursive: true });
      await view.screenshot({ path: file, fullPage: true });
      return view;
    };

    const desk = await show({ width: 1280, height: 900 }, CALLERS_SCREENSHOT);
    try {
      // Waiting callers by name and number, never by call id.
      const callers = await desk.$$eval(`${tileSel} .caller`, (items) => items.map((i: any) => [i.querySelector(".who").textContent, i.querySelector(".num")?.textContent ?? null]));
      expect(callers).toEqual([
        ["Dana Smith", "+14155550123"],
        ["", "+15550001111"],
        ["Unknown caller", null],
      ]);
      expect(await desk.textContent(`${tileSel} .waiting-list`)).not.toMatch(/w-dana|w-num|w-anon/);
      // 3 of the 5 calls that ended in the queue were abandoned.
      expect(await desk.getAttribute(figure(queue.id, "abandonRate"), "data-value")).toBe(String(3 / 5));
      expect(await desk.textContent(`${figure(queue.id, "abandonRate")} .value`)).toBe("60%");
      // 100 %, and what it rests on.
      expect(await desk.textContent(`${figure(queue.id, "serviceLevel")} .value`)).toBe("100%");
      expect(await desk.textContent(`${figure(queue.id, "serviceLevel")} .note`)).toBe("2 answered, 3 abandoned");
      expect(await desk.getAttribute(`${figure(queue.id, "serviceLevel")} .note`, "title")).toContain("within 20 s are not counted");
      expect(await desk.isVisible("#calls thead")).toBe(true);
    } finally {
      await desk.close();
    }

    const phone = await show({ width: 390, height: 844 }, CARDS_SCREENSHOT);
    try {
      // A card per call: no header row, the state and the time shown inside the screen's width.
      expect(await phone.isVisible("#calls thead")).toBe(false);
      expect(await phone.evaluate(`getComputedStyle(document.querySelector("#calls tbody tr")).display`)).toBe("grid");
      // Measured in one page task: the list is redrawn as calls tick (a cell looked up, then
      // measured in a second round trip, can be one the redraw just replaced: no box).
      const boxes = (await phone.evaluate(`["state", "time", "from"].map((cell) => {
        const td = document.querySelector("#calls tbody tr td." + cell);
        const r = td ? td.getBoundingClientRect() : null;
        return [cell, r ? { x: r.x, width: r.width } : null];
      })`)) as Array<[string, { x: number; width: number } | null]>;
      for (const [cell, box] of boxes) {
        expect([cell, box]).toEqual([cell, expect.objectContaining({ width: expect.any(Number) })]);
        expect(box!.width).toBeGreaterThan(0);
        expect(box!.x + box!.width).toBeLessThanOrEqual(390);
      }
      expect(await phone.textContent("#calls tbody td.state")).toBe("answered");
      expect(await phone.textContent("#calls tbody td.from")).toBe("Frank Ocean +14155550199");
      expect(await phone.getAttribute("#calls tbody td.time", "data-label")).toBe("Time");
      expect(await phone.isVisible(`${figure(queue.id, "abandonRate")}`)).toBe(true);
      expect(await phone.evaluate(`[document.documentElement.scrollWidth, window.innerWidth]`)).toEqual([390, 390]);
    } finally {
      await phone.close();
    }
  });

  it("refuses a key it cannot use, saying why", async () => {
    const ingestKey = await createKey(ts, "INGEST", null);
    const wrong = await browser.newPage();
    try {
      await wrong.goto(`${ts.url}/wallboard`);
      await wrong.fill("#key", "not-a-key");
      await wrong.click("#login button[type=submit]");
      await wrong.waitForSelector("#login-error:text('The key was not accepted.')");
      await wrong.fill("#key", ingestKey);
      await wrong.click("#login button[type=submit]");
      await wrong.waitForSelector("#login-error:text('An INGEST key cannot read queues; use a VIEWER key.')");
      expect(await wrong.evaluate(STORED_KEY)).toBeNull();
    } finally {
      await wrong.close();
    }
  });
});
