import "reflect-metadata";
import { speedFor, TrafficGenerator, voicemailDrops, type CallEvent, type QueueEvent, type RegistrationEvent, type SimEvent, type SimTenant } from "../../src/cli/simulator/traffic";
import { parseTelephonyEvent } from "../../src/ingest/telephony-event";

const tenant = (n: number): SimTenant => ({
  domain: `sim-${n}.pbx.example`,
  extensions: Array.from({ length: 20 }, (_, i) => ({ number: String(1001 + i), voicemailEnabled: i % 3 === 0 })),
  queues: [
    { number: "8001", agents: ["1001", "1002", "1003", "1004", "1005"] },
    { number: "8002", agents: ["1006", "1007", "1008", "1009", "1010"] },
  ],
});
const tenants = [tenant(1), tenant(2), tenant(3)];
const START = Date.parse("2026-03-02T09:00:00.000Z");
const TICK = 250;

/** Runs the generator on a simulated clock and then winds it down, as the CLI does on stop. */
function run(seconds: number, rate: number, seed = 42, speed = 1): SimEvent[] {
  const gen = new TrafficGenerator(tenants, { rate, seed, runId: "run1", startAt: START, speed });
  const events: SimEvent[] = [];
  for (let t = START + TICK; t <= START + seconds * 1000; t += TICK) events.push(...gen.tick(t));
  events.push(...gen.finish(START + seconds * 1000 + TICK));
  return events;
}

// Real-time pacing: 60 extensions sustain about 0.66 events/s.
const SECONDS = 7200;
const RATE = 0.5;
const events = run(SECONDS, RATE);
const calls = events.filter((e): e is CallEvent => e.type === "call");
const regs = events.filter((e): e is RegistrationEvent => e.type === "registration");
const queueEvents = events.filter((e): e is QueueEvent => e.type === "queue");

function groupBy<T>(items: T[], by: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) map.set(by(item), [...(map.get(by(item)) ?? []), item]);
  return map;
}

describe("simulated traffic", () => {
  it("leaves voicemail for unanswered calls to extensions with voicemail enabled, and only those", () => {
    const drops = voicemailDrops(events);
    expect(drops.length).toBeGreaterThan(0);
    const withVoicemail = new Set(tenants.flatMap((t) => t.extensions.filter((e) => e.voicemailEnabled).map((e) => `${t.domain}/${e.number}`)));
    const rangOut = calls.filter((c) => c.action === "end" && c.disposition === "voicemail");
    expect(drops).toHaveLength(rangOut.length);
    for (const drop of drops) {
      expect(withVoicemail.has(`${drop.domain}/${drop.extension}`)).toBe(true);
      // Never a call that was answered.
      expect(calls.some((c) => c.call_id === drop.call_id && c.extension === drop.extension && c.action === "answer")).toBe(false);
      expect(drop.duration_seconds).toBeGreaterThanOrEqual(2);
      expect(drop.message_id).toBe(`vm-${drop.call_id}`);
    }
    expect(new Set(drops.map((d) => `${d.extension}/${d.message_id}`)).size).toBe(drops.length);
  });

  it("emits about `rate` events per second, of every kind", () => {
    const steady = events.filter((e) => Date.parse(e.occurred_at) <= START + SECONDS * 1000).length;
    expect(steady / SECONDS).toBeGreaterThan(RATE * 0.95);
    expect(steady / SECONDS).toBeLessThanOrEqual(RATE * 1.02);
    expect(new Set(events.map((e) => `${e.type}:${e.action}`))).toEqual(
      new Set(["registration:register", "registration:unregister", ...["start", "answer", "hold", "resume", "end"].map((a) => `call:${a}`), "queue:join", "queue:answer", "queue:abandon"]),
    );
  });

  it("produces only events the ingestion validator accepts", async () => {
    const refused: Array<{ event: SimEvent; errors: unknown }> = [];
    for (const event of events) {
      const parsed = await parseTelephonyEvent(JSON.parse(JSON.stringify(event)));
      if ("errors" in parsed) refused.push({ event, errors: parsed.errors });
    }
    expect(refused).toEqual([]);
  });

  it("moves every call leg through a valid order: start, ring, answer, hold/resume, end, nothing after", () => {
    const legs = groupBy(calls, (c) => `${c.domain}/${c.call_id}/${c.extension}`);
    expect(legs.size).toBeGreaterThan(500);
    for (const [leg, list] of legs) {
      const actions = list.map((c) => c.action).join(" ");
      // Every leg starts, ends exactly once, is answered at most once, and holds only while answered (it may hang up on hold).
      expect({ leg, actions }).toEqual({ leg, actions: expect.stringMatching(/^start( answer( hold resume)*( hold)?)? end$/) });
      const times = list.map((c) => Date.parse(c.occurred_at));
      expect(times).toEqual([...times].sort((a, b) => a - b));
      const end = list[list.length - 1];
      expect(end.disposition).toEqual(list.some((c) => c.action === "answer") ? "answered" : expect.stringMatching(/^(no_answer|busy|failed|voicemail)$/));
    }
    // Every call id is used by one leg only (the server deduplicates by call id and extension).
    expect(new Set(calls.map((c) => c.call_id)).size).toBe(legs.size);
  });

  it("has realistic outcomes: mostly answered, voicemail only where enabled, all three directions, linked internal legs", () => {
    const ends = calls.filter((c) => c.action === "end" && !c.queue);
    const share = (d: string) => ends.filter((c) => c.disposition === d).length / ends.length;
    expect(share("answered")).toBeGreaterThan(0.6);
    expect(share("answered")).toBeLessThan(0.8);
    for (const d of ["no_answer", "busy", "voicemail"]) expect(share(d)).toBeGreaterThan(0);
    const voicemail = new Set(tenants[0].extensions.filter((e) => e.voicemailEnabled).map((e) => e.number));
    for (const c of ends.filter((e) => e.disposition === "voicemail")) expect(voicemail.has(c.extension)).toBe(true);
    const starts = calls.filter((c) => c.action === "start");
    expect(new Set(starts.map((c) => c.direction))).toEqual(new Set(["inbound", "outbound", "internal"]));
    for (const [, legs] of groupBy(starts.filter((c) => c.direction === "internal"), (c) => c.linked_id ?? c.call_id)) {
      expect(legs.map((l) => l.extension)).toEqual([legs[0].caller_number, legs[0].callee_number]);
    }
    // A call that was answered lasted a plausible time.
    const talk = [...groupBy(calls.filter((c) => !c.queue), (c) => c.call_id).values()]
      .filter((l) => l.some((c) => c.action === "answer"))
      .map((l) => (Date.parse(l[l.length - 1].occurred_at) - Date.parse(l.find((c) => c.action === "answer")!.occurred_at)) / 1000);
    const median = talk.sort((a, b) => a - b)[Math.floor(talk.length / 2)];
    expect(median).toBeGreaterThan(30);
    expect(median).toBeLessThan(300);
  });

  it("joins queue callers who are then answered by one of the queue's agents or abandon", () => {
    const byCaller = groupBy(queueEvents, (q) => `${q.domain}/${q.call_id}`);
    expect(byCaller.size).toBeGreaterThan(50);
    let answered = 0;
    for (const [, list] of byCaller) {
      expect(list.map((q) => q.action).join(" ")).toMatch(/^join (answer|abandon)$/);
      const outcome = list[1];
      if (outcome.action !== "answer") continue;
      answered++;
      expect(tenants[0].queues.find((q) => q.number === outcome.queue)!.agents).toContain(outcome.agent);
      // The agent's leg carries the queue and links to the caller.
      const agentLeg = calls.filter((c) => c.call_id === `${outcome.call_id}-${outcome.agent}`);
      expect(agentLeg.map((c) => c.action)).toEqual(expect.arrayContaining(["start", "answer", "end"]));
      expect(agentLeg[0]).toMatchObject({ queue: outcome.queue, linked_id: outcome.call_id, extension: outcome.agent });
    }
    expect(answered / byCaller.size).toBeGreaterThan(0.5);
  });

  it("refreshes registrations before they expire, then unregisters some and lets others lapse", () => {
    const byContact = groupBy(regs, (r) => `${r.domain}/${r.extension}/${r.contact}`);
    let refreshed = 0;
    let unregistered = 0;
    for (const [, list] of byContact) {
      expect(list[0].action).toBe("register");
      expect(list.filter((r) => r.action === "unregister").length).toBeLessThanOrEqual(1);
      if (list[list.length - 1].action === "unregister") unregistered++;
      for (let i = 1; i < list.length; i++) {
        expect(list[i - 1].action).toBe("register");
        // The next message for this contact comes before the previous registration runs out.
        expect(Date.parse(list[i].occurred_at) - Date.parse(list[i - 1].occurred_at)).toBeLessThan(list[i - 1].expires! * 1000);
        if (list[i].action === "register") refreshed++;
      }
      for (const r of list.filter((r) => r.action === "register")) {
        expect(r.expires).toBeGreaterThanOrEqual(60);
        expect(r.expires).toBeLessThanOrEqual(3600);
      }
    }
    expect(refreshed).toBeGreaterThan(0);
    expect(unregistered).toBeGreaterThan(0);
    expect(unregistered).toBeLessThan(byContact.size);
  });

  it("never has one extension on two calls at once", () => {
    const open = new Map<string, string>();
    for (const c of calls) {
      const ext = `${c.domain}/${c.extension}`;
      if (c.action === "start") {
        expect({ ext, busyWith: open.get(ext) }).toEqual({ ext, busyWith: undefined });
        open.set(ext, c.call_id);
      } else if (c.action === "end") open.delete(ext);
    }
    expect(open.size).toBe(0);
  });

  it("reaches a high rate on few extensions by compressing call timings, without saturating them", () => {
    const rate = 40;
    const speed = speedFor(rate, 60);
    expect(speed).toBeGreaterThan(30);
    const fast = run(300, rate, 3, speed);
    const inWindow = fast.filter((e) => Date.parse(e.occurred_at) <= START + 300_000);
    expect(inWindow.length / 300).toBeGreaterThan(rate * 0.95);
    const calls = inWindow.filter((e) => e.type === "call").length;
    expect(calls / inWindow.length).toBeGreaterThan(0.5);
    const outcomes = fast.filter((e): e is QueueEvent => e.type === "queue" && e.action !== "join");
    expect(outcomes.filter((q) => q.action === "answer").length / outcomes.length).toBeGreaterThan(0.5);
  });

  it("leaves nothing in progress after finish, and is reproducible from its seed", () => {
    const gen = new TrafficGenerator(tenants, { rate: 50, seed: 7, runId: "r2", startAt: START });
    for (let t = START; t <= START + 60_000; t += TICK) gen.tick(t);
    expect(gen.stats(START + 60_000).activeLegs).toBeGreaterThan(0);
    gen.finish(START + 60_001);
    expect(gen.stats(START + 60_001)).toMatchObject({ activeLegs: 0, waitingInQueues: 0 });
    expect(run(60, 30, 5)).toEqual(run(60, 30, 5));
    expect(run(60, 30, 5)).not.toEqual(run(60, 30, 6));
  });

  it("refuses a rate that is not positive and tenants without extensions", () => {
    expect(() => new TrafficGenerator(tenants, { rate: 0, seed: 1, runId: "x", startAt: START })).toThrow(RangeError);
    expect(() => new TrafficGenerator([{ domain: "d.example", extensions: [], queues: [] }], { rate: 5, seed: 1, runId: "x", startAt: START })).toThrow(RangeError);
  });
});
