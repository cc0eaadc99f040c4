import {
  AddQueueAgentDocument,
  CreateQueueWithTargetDocument,
  DeleteExtensionDocument,
  DeleteQueueDocument,
  QueueStatsLiveDocument,
  QueueStatsNowDocument,
  QueueWaitingAndAgentsDocument,
  RemoveQueueAgentDocument,
  SetQueueTargetDocument,
  SetTenantTimezoneDocument,
  TenantQueueStatsDocument,
  UpdateQueueAgentDocument,
  type QueueStatsFieldsFragment,
} from "../graphql/generated";
import { requireReal } from "../support/env";
import { createExtension, createKey, tenantWithKeys } from "../support/factories";
import { postEvents, subscribe } from "../support/live";
import { startTestServer, type TestServer } from "../support/server";
import { scrapeMetric, waitFor } from "../support/wait";

/** The coalescing window of the server (src/subscriptions/queue-stats-feed.ts). */
const WINDOW_MS = 250;

let ts: TestServer;
let ingestKey: string;

beforeAll(async () => {
  ts = await startTestServer();
  ingestKey = await createKey(ts, "INGEST", null);
});
afterAll(() => ts?.stop());

/** Event times relative to one instant, so waits come out exact. */
const clock = (now = Date.now()) => (secondsAgo: number) => new Date(now - secondsAgo * 1000).toISOString();
const ago = (secondsAgo: number) => clock()(secondsAgo);

async function callCentre(server: TestServer = ts, agentCount = 2, serviceLevelSeconds?: number) {
  const keys = await tenantWithKeys(server);
  const { createQueue: queue } = await server.ok(CreateQueueWithTargetDocument, {
    input: { tenantId: keys.tenant.id, name: "Support", number: "600", ...(serviceLevelSeconds ? { serviceLevelSeconds } : {}) },
  });
  const agents = [];
  for (let i = 1; i <= agentCount; i++) {
    const extension = await createExtension(server, keys.tenant.id, { extensionNumber: `20${i}` });
    const { addQueueAgent } = await server.ok(AddQueueAgentDocument, { queueId: queue.id, extensionId: extension.id });
    agents.push({ membershipId: addQueueAgent.id, extensionId: extension.id, number: extension.extensionNumber });
  }
  const domain = keys.tenant.sipDomain;
  const queueEvent = (action: string, callId: string, extra: Record<string, unknown> = {}) => ({
    type: "queue",
    action,
    domain,
    queue: "600",
    call_id: callId,
    ...extra,
  });
  const callEvent = (action: string, extension: string, callId: string, extra: Record<string, unknown> = {}) => ({
    type: "call",
    action,
    domain,
    extension,
    call_id: callId,
    direction: "inbound",
    caller_number: "+15550001111",
    ...extra,
  });
  const stats = async (key = keys.viewerKey, s: TestServer = server) => (await s.ok(QueueStatsNowDocument, { id: queue.id }, key)).queue.stats;
  return { ...keys, queue, agents, domain, queueEvent, callEvent, stats };
}

const IDLE = { callsWaiting: 0, longestWaitSeconds: 0, answeredToday: 0, abandonedToday: 0, averageWaitSeconds: 0, serviceLevel: 1 };

/** Everything but the moment of computation and the wait that grows with it. */
function stable(stats: QueueStatsFieldsFragment) {
  const { updatedAt: _updatedAt, longestWaitSeconds: _longest, ...rest } = stats;
  return rest;
}

describe("queue events move the figures", () => {
  it("join → waiting, answer → answered with its wait, abandon → abandoned", async () => {
    const c = await callCentre();
    const ago = clock();
    expect(await c.stats()).toMatchObject({ queueId: c.queue.id, ...IDLE, agentsTotal: 2, agentsAvailable: 2, agentsBusy: 0, agentsPaused: 0 });

    const joined = await postEvents(ts, ingestKey, [c.queueEvent("join", "c1", { occurred_at: ago(30) }), c.queueEvent("join", "c2", { occurred_at: ago(10) })]);
    expect(joined.status).toBe(200);
    expect(joined.body.data.map((r: { status: string; type: string }) => [r.type, r.status])).toEqual([
      ["queue", "applied"],
      ["queue", "applied"],
    ]);
    const waiting = await c.stats();
    expect(waiting).toMatchObject({ callsWaiting: 2, answeredToday: 0 });
    expect(waiting.longestWaitSeconds).toBeGreaterThanOrEqual(30);
    expect(waiting.longestWaitSeconds).toBeLessThan(40);

    // Waited 25 s: past the default 20 s target.
    await postEvents(ts, ingestKey, c.queueEvent("answer", "c1", { agent: "201", occurred_at: ago(5) }));
    expect(await c.stats()).toMatchObject({ callsWaiting: 1, answeredToday: 1, averageWaitSeconds: 25, serviceLevel: 0 });
    // Waited 10 s: within it.
    await postEvents(ts, ingestKey, c.queueEvent("answer", "c2", { agent: "202", occurred_at: ago(0) }));
    const answered = await c.stats();
    expect(answered).toMatchObject({ callsWaiting: 0, longestWaitSeconds: 0, answeredToday: 2, serviceLevel: 0.5 });
    expect(answered.averageWaitSeconds).toBe(17.5);

    // Hung up after 8 s, within the target: on neither side of the service level.
    await postEvents(ts, ingestKey, [c.queueEvent("join", "c3", { occurred_at: ago(8) }), c.queueEvent("abandon", "c3")]);
    expect(await c.stats()).toMatchObject({ callsWaiting: 0, answeredToday: 2, abandonedToday: 1, serviceLevel: 0.5 });
    // Gave up after 40 s, past the target: not served in time, so 1 within ÷ (2 answered + 1 late abandon).
    await postEvents(ts, ingestKey, [c.queueEvent("join", "c4", { occurred_at: ago(40) }), c.queueEvent("abandon", "c4")]);
    const abandoned = await c.stats();
    expect(abandoned).toMatchObject({ callsWaiting: 0, answeredToday: 2, abandonedToday: 2 });
    expect(abandoned.serviceLevel).toBeCloseTo(1 / 3, 10);
  });

  it("duplicates and reordering change nothing extra", async () => {
    const c = await callCentre();
    const ago = clock();
    // The answer arrives before its join: counted at once, its wait unknown until the join comes.
    const answer = c.queueEvent("answer", "r1", { agent: "201", occurred_at: ago(5) });
    expect((await postEvents(ts, ingestKey, answer)).body.data.status).toBe("applied");
    expect(await c.stats()).toMatchObject({ callsWaiting: 0, answeredToday: 1, averageWaitSeconds: 0, serviceLevel: 1 });
    const join = c.queueEvent("join", "r1", { occurred_at: ago(45) });
    expect((await postEvents(ts, ingestKey, join)).body.data.status).toBe("applied");
    const settled = await c.stats();
    expect(settled).toMatchObject({ callsWaiting: 0, answeredToday: 1, averageWaitSeconds: 40, serviceLevel: 0 });

    const again = await postEvents(ts, ingestKey, [join, answer, c.queueEvent("abandon", "r1")]);
    expect(again.body.data.map((r: { status: string; reason: string }) => [r.status, r.reason])).toEqual([
      ["duplicate", "the caller has already joined the queue"],
      ["duplicate", "the call was already answered"],
      ["ignored", "the call was answered"],
    ]);
    expect(stable(await c.stats())).toEqual(stable(settled));

    // An abandon with no join still counts once.
    const abandon = c.queueEvent("abandon", "r2");
    await postEvents(ts, ingestKey, [abandon, abandon]);
    expect(await c.stats()).toMatchObject({ abandonedToday: 1, answeredToday: 1, callsWaiting: 0 });
    // An answer reported after an abandon wins: the caller was served after all.
    await postEvents(ts, ingestKey, c.queueEvent("answer", "r2", { agent: "202" }));
    expect(await c.stats()).toMatchObject({ abandonedToday: 0, answeredToday: 2 });
  });

  it("agents are busy while on any call, paused as updateQueueAgent says, and counted once each", async () => {
    const c = await callCentre(ts, 3);
    const [a1, a2, a3] = c.agents;
    await postEvents(ts, ingestKey, c.callEvent("start", a1.number, "k1"));
    expect(await c.stats()).toMatchObject({ agentsTotal: 3, agentsBusy: 1, agentsAvailable: 2, agentsPaused: 0 });
    await postEvents(ts, ingestKey, c.callEvent("answer", a1.number, "k1"));
    await postEvents(ts, ingestKey, c.callEvent("hold", a1.number, "k1"));
    expect(await c.stats()).toMatchObject({ agentsBusy: 1, agentsAvailable: 2 });

    await ts.ok(UpdateQueueAgentDocument, { id: a2.membershipId, paused: true }, c.adminKey);
    expect(await c.stats()).toMatchObject({ agentsBusy: 1, agentsPaused: 1, agentsAvailable: 1 });
    // Paused while on a call: counted as paused, not twice.
    await ts.ok(UpdateQueueAgentDocument, { id: a1.membershipId, paused: true }, c.adminKey);
    expect(await c.stats()).toMatchObject({ agentsBusy: 0, agentsPaused: 2, agentsAvailable: 1 });

    await postEvents(ts, ingestKey, c.callEvent("end", a1.number, "k1", { disposition: "answered" }));
    await ts.ok(UpdateQueueAgentDocument, { id: a1.membershipId, paused: false }, c.adminKey);
    expect(await c.stats()).toMatchObject({ agentsBusy: 0, agentsPaused: 1, agentsAvailable: 2 });

    // Calls of an extension that is no agent of the queue move nothing.
    const other = await createExtension(ts, c.tenant.id, { extensionNumber: "299" });
    await postEvents(ts, ingestKey, c.callEvent("start", other.extensionNumber, "k2"));
    expect(await c.stats()).toMatchObject({ agentsTotal: 3, agentsBusy: 0, agentsAvailable: 2 });

    await ts.ok(RemoveQueueAgentDocument, { id: a3.membershipId }, c.adminKey);
    expect(await c.stats()).toMatchObject({ agentsTotal: 2, agentsAvailable: 1, agentsPaused: 1 });
  });

  it("availableSince: enrolment, null while paused or on a call, then the end of the pause or of the call", async () => {
    const c = await callCentre(ts, 2);
    const [a1, a2] = c.agents;
    const agent = async (membershipId: string) =>
      (await ts.ok(QueueWaitingAndAgentsDocument, { id: c.queue.id }, c.viewerKey)).queue.agents.find((a) => a.id === membershipId)!;
    /** Runs `step` and answers the instants around it (the server's clock is this machine's). */
    const during = async (step: () => Promise<unknown>) => {
      const before = Date.now();
      await step();
      return { before, after: Date.now() };
    };
    const within = (since: string | null | undefined, window: { before: number; after: number }) => {
      expect(since).toBeTruthy();
      expect(Date.parse(since!)).toBeGreaterThanOrEqual(window.before - 5);
      expect(Date.parse(since!)).toBeLessThanOrEqual(window.after + 5);
    };

    // Enrolled and idle: available since enrolment.
    const fresh = await agent(a1.membershipId);
    expect(fresh.availableSince).toBe(fresh.createdAt);

    // On a call (ringing, answered, held): not available; after it ends, available since its end.
    await postEvents(ts, ingestKey, c.callEvent("start", a1.number, "as-1"));
    expect((await agent(a1.membershipId)).availableSince).toBeNull();
    await postEvents(ts, ingestKey, c.callEvent("answer", a1.number, "as-1"));
    expect((await agent(a1.membershipId)).availableSince).toBeNull();
    const ended = await during(() => postEvents(ts, ingestKey, c.callEvent("end", a1.number, "as-1", { disposition: "answered" })));
    const afterCall = (await agent(a1.membershipId)).availableSince;
    within(afterCall, ended);
    // Another agent's call does not move it.
    await postEvents(ts, ingestKey, [c.callEvent("start", a2.number, "as-2"), c.callEvent("end", a2.number, "as-2", { disposition: "answered" })]);
    expect((await agent(a1.membershipId)).availableSince).toBe(afterCall);

    // Paused: null; a repeated resume keeps the first resume's time; resumed: since the resume.
    await ts.ok(UpdateQueueAgentDocument, { id: a2.membershipId, paused: true }, c.adminKey);
    expect((await agent(a2.membershipId)).availableSince).toBeNull();
    const resumed = await during(() => ts.ok(UpdateQueueAgentDocument, { id: a2.membershipId, paused: false }, c.adminKey));
    const afterPause = (await agent(a2.membershipId)).availableSince;
    within(afterPause, resumed);
    await ts.ok(UpdateQueueAgentDocument, { id: a2.membershipId, paused: false }, c.adminKey);
    expect((await agent(a2.membershipId)).availableSince).toBe(afterPause);

    // A call that ended while paused: available from the resume, the later of the two.
    await ts.ok(UpdateQueueAgentDocument, { id: a1.membershipId, paused: true }, c.adminKey);
    await postEvents(ts, ingestKey, [c.callEvent("start", a1.number, "as-3"), c.callEvent("end", a1.number, "as-3", { disposition: "answered" })]);
    expect((await agent(a1.membershipId)).availableSince).toBeNull();
    const back = await during(() => ts.ok(UpdateQueueAgentDocument, { id: a1.membershipId, paused: false }, c.adminKey));
    within((await agent(a1.membershipId)).availableSince, back);
  });

  it("refuses bad queue events with clear errors, changing nothing", async () => {
    const c = await callCentre();
    const unknownQueue = await postEvents(ts, ingestKey, { ...c.queueEvent("join", "b1"), queue: "999" });
    expect(unknownQueue).toMatchObject({ status: 422, body: { message: "Queue not found.", errors: { queue: ["The tenant has no queue 999."] } } });
    const noAgent = await postEvents(ts, ingestKey, c.queueEvent("answer", "b1"));
    expect(noAgent).toMatchObject({ status: 422, body: { errors: { agent: ["The agent must be the answering extension's number."] } } });
    const unknownAgent = await postEvents(ts, ingestKey, c.queueEvent("answer", "b1", { agent: "4040" }));
    expect(unknownAgent).toMatchObject({ status: 422, body: { errors: { agent: ["The tenant has no extension 4040."] } } });
    const badAction = await postEvents(ts, ingestKey, c.queueEvent("transfer", "b1"));
    expect(badAction).toMatchObject({ status: 422, body: { errors: { action: ["The action must be join, answer or abandon."] } } });
    const unknownDomain = await postEvents(ts, ingestKey, { ...c.queueEvent("join", "b1"), domain: "nowhere.example" });
    expect(unknownDomain).toMatchObject({ status: 422, body: { errors: { domain: ["No tenant has this SIP domain."] } } });
    // The good event of a batch still applies; the refused one is named.
    const batch = await postEvents(ts, ingestKey, [c.queueEvent("join", "b2"), { ...c.queueEvent("join", "b3"), queue: "12a" }]);
    expect(batch.status).toBe(207);
    expect(batch.body.data.map((r: { status: string }) => r.status)).toEqual(["applied", "rejected"]);
    expect(await c.stats()).toMatchObject({ ...IDLE, callsWaiting: 1, longestWaitSeconds: expect.any(Number) });
  });
});

describe("settings behind the figures", () => {
  it("the service-level threshold is per queue (1 to 3600 s) and recomputes the service level", async () => {
    const c = await callCentre();
    const ago = clock();
    expect(c.queue.serviceLevelSeconds).toBe(20);
    await postEvents(ts, ingestKey, [c.queueEvent("join", "s1", { occurred_at: ago(35) }), c.queueEvent("answer", "s1", { agent: "201", occurred_at: ago(5) })]);
    expect((await c.stats()).serviceLevel).toBe(0);
    expect((await ts.ok(SetQueueTargetDocument, { id: c.queue.id, serviceLevelSeconds: 30 }, c.adminKey)).updateQueue.serviceLevelSeconds).toBe(30);
    expect((await c.stats()).serviceLevel).toBe(1);

    for (const bad of [0, 3601]) {
      const refused = await ts.gql(SetQueueTargetDocument, { id: c.queue.id, serviceLevelSeconds: bad }, c.adminKey);
      expect(refused.errors?.[0].extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        fields: { serviceLevelSeconds: ["The service level seconds must be a whole number from 1 to 3600."] },
      });
    }
    const created = await ts.gql(CreateQueueWithTargetDocument, { input: { tenantId: c.tenant.id, name: "Sales", number: "601", serviceLevelSeconds: 0 } }, c.adminKey);
    expect(created.errors?.[0].extensions?.code).toBe("BAD_USER_INPUT");
    expect((await c.stats()).serviceLevel).toBe(1);
  });

  it("today is the tenant's day, in its time zone", async () => {
    const c = await callCentre();
    const answeredAt = [1, 6, 12, 20, 28].map((hours) => new Date(Date.now() - hours * 3600_000));
    await postEvents(
      ts,
      ingestKey,
      answeredAt.map((at, i) => c.queueEvent("answer", `d${i}`, { agent: "201", occurred_at: at.toISOString() })),
    );
    for (const timezone of ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "America/New_York"]) {
      expect((await ts.ok(SetTenantTimezoneDocument, { id: c.tenant.id, timezone })).updateTenant.timezone).toBe(timezone);
      const midnight = startOfDay(timezone);
      const { tenant } = await ts.ok(TenantQueueStatsDocument, { id: c.tenant.id }, c.viewerKey);
      expect(tenant.timezone).toBe(timezone);
      expect([timezone, tenant.queues[0].stats.answeredToday]).toEqual([timezone, answeredAt.filter((at) => at >= midnight).length]);
    }
    for (const timezone of ["Mars/Olympus_Mons", "+01:00", "", "Europe/Berlin; DROP TABLE tenant"]) {
      const refused = await ts.gql(SetTenantTimezoneDocument, { id: c.tenant.id, timezone });
      expect(refused.errors?.[0].extensions).toMatchObject({
        code: "BAD_USER_INPUT",
        fields: { timezone: ["The timezone must be an IANA time zone name such as Europe/Berlin or UTC."] },
      });
    }
  });
});

/** The instant the current day began in `timeZone` (zones without a DST change today). */
function startOfDay(timeZone: string): Date {
  const now = new Date();
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(now)
      .map((p) => [p.type, Number(p.value)]),
  );
  const wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  const offset = wall - Math.floor(now.getTime() / 1000) * 1000;
  return new Date(Date.UTC(parts.year, parts.month - 1, parts.day) - offset);
}

describe("the queueStats subscription", () => {
  it("sends the current figures at once, then each change; a change that moves nothing sends nothing", async () => {
    const c = await callCentre();
    await postEvents(ts, ingestKey, c.queueEvent("join", "l1", { occurred_at: ago(12) }));
    const sub = await subscribe(ts, QueueStatsLiveDocument, { queueId: c.queue.id }, c.viewerKey);
    try {
      const first = (await sub.next()).queueStats;
      expect(first).toMatchObject({ queueId: c.queue.id, callsWaiting: 1, answeredToday: 0, agentsAvailable: 2 });
      expect(first.longestWaitSeconds).toBeGreaterThanOrEqual(12);

      const answer = c.queueEvent("answer", "l1", { agent: "201" });
      await postEvents(ts, ingestKey, answer);
      expect((await sub.next()).queueStats).toMatchObject({ callsWaiting: 0, answeredToday: 1, longestWaitSeconds: 0 });

      await ts.ok(UpdateQueueAgentDocument, { id: c.agents[1].membershipId, paused: true }, c.adminKey);
      const paused = (await sub.next()).queueStats;
      expect(paused).toMatchObject({ agentsPaused: 1, agentsAvailable: 1 });
      // What the subscriber holds is what a query answers.
      expect(stable(await c.stats())).toEqual(stable(paused));

      const count = sub.received.length;
      const recomputes = (outcome: string) => scrapeMetric(ts.server.metricsUrl, "queue_stats_recomputes_total", { outcome });
      const [published, unchanged] = [await recomputes("published"), await recomputes("unchanged")];
      await postEvents(ts, ingestKey, answer);
      await ts.ok(UpdateQueueAgentDocument, { id: c.agents[1].membershipId, penalty: 3 }, c.adminKey);
      // The server recomputed after them and found nothing to send ...
      await waitFor("a recompute after changes that moved nothing", async () => (await recomputes("unchanged")) > unchanged);
      expect(await recomputes("published")).toBe(published);
      // ... and a change that moves the figures, made after them, is the next message.
      await ts.ok(UpdateQueueAgentDocument, { id: c.agents[1].membershipId, paused: false }, c.adminKey);
      expect((await sub.next()).queueStats).toMatchObject({ agentsPaused: 0, agentsAvailable: 2 });
      expect(sub.received).toHaveLength(count + 1);
      expect(await recomputes("published")).toBe(published + 1);
    } finally {
      await sub.close();
    }
  });

  it("coalesces a burst: 50 events give a few updates, the last equal to the figures queried", async () => {
    const c = await callCentre(ts, 4);
    const sub = await subscribe(ts, QueueStatsLiveDocument, { queueId: c.queue.id }, c.viewerKey);
    try {
      await sub.next();
      const burst = [];
      for (let i = 0; i < 25; i++) burst.push(c.queueEvent("join", `b${i}`, { occurred_at: ago(60 - i) }));
      for (let i = 0; i < 15; i++) burst.push(c.queueEvent("answer", `b${i}`, { agent: c.agents[i % 4].number }));
      for (let i = 15; i < 25; i += 2) burst.push(c.queueEvent("abandon", `b${i}`));
      for (let i = 0; i < 5; i++) burst.push(c.callEvent("start", c.agents[i % 4].number, `burst-call-${i}`));
      expect(burst).toHaveLength(50);

      const started = Date.now();
      const posted = await postEvents(ts, ingestKey, burst);
      expect(posted.status).toBe(200);
      // The update with the burst's final figures (a condition, not a quiet period: on a loaded
      // machine updates may be further apart than any fixed window).
      await sub.next((d) => d.queueStats.callsWaiting === 5 && d.queueStats.answeredToday === 15 && d.queueStats.abandonedToday === 5 && d.queueStats.agentsBusy === 4, 15_000);
      const lastArrival = Date.now();
      const updates = sub.received.slice(1).map((m) => m.data!.queueStats);
      expect(updates.length).toBeGreaterThanOrEqual(1);
      // At most one per window while the burst lasted (plus the trailing one), far fewer than the events.
      expect(updates.length).toBeLessThanOrEqual(Math.ceil((lastArrival - started) / WINDOW_MS) + 1);
      expect(updates.length).toBeLessThan(25);

      const last = updates[updates.length - 1];
      expect(last).toMatchObject({ callsWaiting: 5, answeredToday: 15, abandonedToday: 5, agentsBusy: 4, agentsAvailable: 0 });
      const queried = await c.stats();
      expect(stable(queried)).toEqual(stable(last));
      expect(Math.abs(queried.longestWaitSeconds - last.longestWaitSeconds)).toBeLessThanOrEqual(3);
    } finally {
      await sub.close();
    }
  });

  it("another tenant's queue is not found, by query and by subscription; an INGEST key is refused", async () => {
    const c = await callCentre();
    const other = await tenantWithKeys(ts);
    const query = await ts.gql(QueueStatsNowDocument, { id: c.queue.id }, other.viewerKey);
    expect(query.errors?.[0].extensions?.code).toBe("NOT_FOUND");
    expect(query.data).toBeNull();

    const foreign = await subscribe(ts, QueueStatsLiveDocument, { queueId: c.queue.id }, other.viewerKey, { expectError: true });
    const missing = await subscribe(ts, QueueStatsLiveDocument, { queueId: "999999" }, other.viewerKey, { expectError: true });
    const ingest = await subscribe(ts, QueueStatsLiveDocument, { queueId: c.queue.id }, ingestKey, { expectError: true });
    try {
      const [a, b, d] = await Promise.all([foreign.error(), missing.error(), ingest.error()]);
      expect(a).toMatchObject({ message: "Queue not found.", extensions: { code: "NOT_FOUND" } });
      expect(b).toMatchObject({ message: "Queue not found.", extensions: { code: "NOT_FOUND" } });
      expect(d.extensions?.code).toBe("FORBIDDEN");
      expect(foreign.received.filter((m) => m.data)).toEqual([]);
    } finally {
      await Promise.all([foreign.close(), missing.close(), ingest.close()]);
    }

    // Its own tenant's admin and the platform admin may follow it.
    for (const key of [c.adminKey, ts.adminKey]) {
      const sub = await subscribe(ts, QueueStatsLiveDocument, { queueId: c.queue.id }, key);
      expect((await sub.next()).queueStats.queueId).toBe(c.queue.id);
      await sub.close();
    }
  });

  it("tells subscribers when the queue is deleted, and an agent's forced delete moves the figures", async () => {
    const c = await callCentre();
    const sub = await subscribe(ts, QueueStatsLiveDocument, { queueId: c.queue.id }, c.viewerKey);
    try {
      expect((await sub.next()).queueStats.agentsTotal).toBe(2);
      await ts.ok(DeleteExtensionDocument, { id: c.agents[0].extensionId, force: true }, c.adminKey);
      expect((await sub.next()).queueStats).toMatchObject({ agentsTotal: 1, agentsAvailable: 1 });
      await ts.ok(DeleteQueueDocument, { id: c.queue.id }, c.adminKey);
      expect(await sub.error()).toMatchObject({ message: "Queue not found.", extensions: { code: "NOT_FOUND" } });
    } finally {
      await sub.close();
    }
  });
});

describe("the wallboard page", () => {
  it("is served with a same-origin Content-Security-Policy, with graphql-ws's browser build beside it", async () => {
    const page = await ts.http("/wallboard", { key: null });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toMatch(/connect-src 'self' ws:\/\/127\.0\.0\.1:\d+/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:\/\/(?!127)/);
    const html = await page.text();
    expect(html).toContain('<script src="/wallboard/wallboard.js" defer></script>');
    expect(html).not.toMatch(/<script>|https?:\/\//);

    const client = await ts.http("/wallboard/graphql-ws.js", { key: null });
    expect(client.status).toBe(200);
    expect(await client.text()).toContain("graphql-transport-ws");
    for (const file of ["wallboard.js", "wallboard.css"]) expect((await ts.http(`/wallboard/${file}`, { key: null })).status).toBe(200);
    expect((await ts.http("/wallboard/..%2fpackage.json", { key: null })).status).toBe(404);
    expect((await ts.http("/wallboard/secrets.txt", { key: null })).status).toBe(404);
  });
});

const realServices = requireReal("redis") && requireReal("postgres");
(realServices ? describe : describe.skip)("two instances on one PostgreSQL and Redis", () => {
  let b: TestServer;
  beforeAll(async () => {
    b = await startTestServer({ shareSchemaOf: ts });
  });
  afterAll(() => b?.stop());

  it("a subscriber on B follows what is ingested on A, coalesced, ending on the figures A and B both answer", async () => {
    const c = await callCentre(ts);
    const sub = await subscribe(b, QueueStatsLiveDocument, { queueId: c.queue.id }, c.viewerKey);
    try {
      expect((await sub.next()).queueStats.callsWaiting).toBe(0);
      await postEvents(ts, ingestKey, c.queueEvent("join", "m1"));
      expect((await sub.next((d) => d.queueStats.callsWaiting === 1, 15_000)).queueStats.callsWaiting).toBe(1);

      const burst = Array.from({ length: 30 }, (_, i) => c.queueEvent("join", `m-${i}`));
      await postEvents(ts, ingestKey, burst);
      await postEvents(b, ingestKey, c.queueEvent("answer", "m1", { agent: "201" }));
      const last = (await sub.next((d) => d.queueStats.callsWaiting === 30 && d.queueStats.answeredToday === 1, 15_000)).queueStats;
      // Coalesced: far fewer updates than the 31 events (more windows pass on a loaded machine).
      expect(sub.received.length).toBeLessThan(20);
      expect(stable(await c.stats(c.viewerKey, ts))).toEqual(stable(last));
      expect(stable(await c.stats(c.viewerKey, b))).toEqual(stable(last));
    } finally {
      await sub.close();
    }
  });
});
