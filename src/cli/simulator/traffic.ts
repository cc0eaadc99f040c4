/**
 * Synthetic telephony traffic as a SIP engine would report it (contract §6): registrations that
 * refresh before they expire and then unregister or lapse, call legs that ring and are answered,
 * held, resumed and ended with realistic dispositions, and queue callers who are answered by an
 * agent or give up. Pure: the caller supplies the clock and the seed, so a run is reproducible and
 * testable without a server.
 */

export interface SimExtension {
  number: string;
  voicemailEnabled: boolean;
}

export interface SimQueue {
  number: string;
  /** Extension numbers of the queue's agents. */
  agents: string[];
}

export interface SimTenant {
  domain: string;
  extensions: SimExtension[];
  queues: SimQueue[];
}

export type Direction = "inbound" | "outbound" | "internal";
export type Disposition = "answered" | "no_answer" | "busy" | "failed" | "voicemail";

export interface RegistrationEvent {
  type: "registration";
  action: "register" | "unregister";
  domain: string;
  extension: string;
  contact: string;
  user_agent?: string;
  source_address?: string;
  transport?: "udp" | "tcp" | "tls" | "wss";
  expires?: number;
  occurred_at: string;
}

export interface CallEvent {
  type: "call";
  action: "start" | "answer" | "hold" | "resume" | "end";
  domain: string;
  extension: string;
  call_id: string;
  linked_id?: string;
  direction?: Direction;
  caller_number?: string;
  caller_name?: string;
  callee_number?: string;
  queue?: string;
  disposition?: Disposition;
  hangup_cause?: string;
  occurred_at: string;
}

export interface QueueEvent {
  type: "queue";
  action: "join" | "answer" | "abandon";
  domain: string;
  queue: string;
  call_id: string;
  agent?: string;
  caller_number?: string;
  caller_name?: string;
  occurred_at: string;
}

export type SimEvent = RegistrationEvent | CallEvent | QueueEvent;

/** A voicemail message the engine would hand over: one per call leg that rang out to voicemail. */
export interface VoicemailDrop {
  domain: string;
  extension: string;
  message_id: string;
  call_id: string;
  caller_number?: string;
  duration_seconds: number;
  received_at: string;
}

/**
 * The voicemail the engine leaves for a batch's events: every leg that ended with disposition
 * voicemail (the simulator gives it only to unanswered calls to extensions with voicemail enabled).
 * The message lasts 2 to 9 seconds, derived from the call id so a rerun leaves the same messages.
 */
export function voicemailDrops(events: readonly SimEvent[]): VoicemailDrop[] {
  return events
    .filter((e): e is CallEvent => e.type === "call" && e.action === "end" && e.disposition === "voicemail")
    .map((e) => ({
      domain: e.domain,
      extension: e.extension,
      message_id: `vm-${e.call_id}`,
      call_id: e.call_id,
      ...(e.caller_number ? { caller_number: e.caller_number } : {}),
      duration_seconds: 2 + ([...e.call_id].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % 8),
      received_at: e.occurred_at,
    }));
}

export interface TrafficOptions {
  /** Events per second, over every tenant. */
  rate: number;
  /** Seeds the random choices: the same seed, tenants and clock give the same events. */
  seed: number;
  /** Goes into every call id, so that two runs never share one (the server deduplicates by call id). */
  runId: string;
  /** Simulated time at which the traffic starts, in ms since the epoch. */
  startAt: number;
  /**
   * Call and queue timings are divided by this (1 = real time). Registrations keep real time: their
   * expiry is enforced by the server's clock.
   */
  speed?: number;
}

export interface TrafficStats {
  activeLegs: number;
  waitingInQueues: number;
  registeredDevices: number;
}

/** Most devices an extension registers at once (a desk phone and a softphone). */
const MAX_DEVICES = 2;
/** A tick may carry unused budget forward for this long, so a slow request does not turn into a burst. */
const MAX_CARRY_SECONDS = 2;
const EXPIRES = [60, 120, 300, 600, 1800, 3600];
const EXPIRES_WEIGHTS = [3, 2, 3, 2, 1, 3];
const USER_AGENTS: Array<[string, RegistrationEvent["transport"]]> = [
  ["Yealink SIP-T54W 96.86.0.100", "udp"],
  ["Poly VVX 450 6.4.3", "udp"],
  ["Grandstream GXP2170 1.0.11.64", "tcp"],
  ["Cisco SPA504G 7.6.2", "udp"],
  ["Zoiper rv2.10.20.2", "tls"],
  ["Linphone/5.2.5 (belle-sip/5.2.4)", "tls"],
  ["MicroSIP/3.21.3", "udp"],
  ["JsSIP 3.10.1", "wss"],
  ["SIP.js/0.21.2", "wss"],
];
const CALLER_NAMES = ["ACME CORP", "J SMITH", "WIRELESS CALLER", "M GARCIA", "GLOBEX INC", "A NGUYEN", "UNKNOWN", "K MULLER"];

/** A follow-up due at a set time; several events when they happen at one instant (an agent answers a queue caller). */
type Step = () => SimEvent | SimEvent[] | null;

interface Scheduled {
  at: number;
  seq: number;
  step: Step;
}

interface Leg {
  tenant: SimTenant;
  extension: string;
  callId: string;
  linkedId: string;
  direction: Direction;
  callerNumber: string;
  callerName?: string;
  calleeNumber: string;
  queue?: string;
  answered: boolean;
}

interface QueueCaller {
  tenant: SimTenant;
  queue: SimQueue;
  callId: string;
  callerNumber: string;
  callerName: string;
  joinedAt: number;
  /** When the caller gives up if no agent has answered. */
  patienceUntil: number;
}

/** mulberry32: small, fast and good enough for traffic shapes; Math.random cannot be seeded. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class TrafficGenerator {
  private readonly random: () => number;
  private readonly speed: number;
  private readonly queue: Scheduled[] = [];
  private seq = 0;
  private callSeq = 0;
  private budget = 0;
  private last: number;
  /** Per "domain/number": devices registered now (contact → expiry), and calls in progress. */
  private readonly devices = new Map<string, Map<string, number>>();
  private readonly busy = new Map<string, number>();
  private readonly slots = new Map<string, number>();
  private readonly legs = new Map<string, Leg>();
  private readonly waiting = new Map<string, QueueCaller>();

  constructor(
    private readonly tenants: SimTenant[],
    private readonly options: TrafficOptions,
  ) {
    if (!(options.rate > 0)) throw new RangeError("rate must be positive");
    if (tenants.every((t) => t.extensions.length === 0)) throw new RangeError("the tenants have no extensions");
    if (options.speed !== undefined && !(options.speed >= 1)) throw new RangeError("speed must be at least 1");
    this.random = seeded(options.seed);
    this.speed = options.speed ?? 1;
    this.last = options.startAt;
    for (const t of tenants) for (const e of t.extensions) this.slots.set(key(t, e.number), this.random() < 0.3 ? MAX_DEVICES : 1);
  }

  /**
   * The events due by `now` (ms), about rate x elapsed in all: every follow-up of the calls and
   * registrations in progress that is due (never late: a refresh must beat its expiry), then new
   * calls, queue callers and registrations with what is left of the budget. Follow-ups may overdraw
   * it; new starts then wait until it is paid back, so the average rate holds.
   */
  tick(now: number): SimEvent[] {
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.last = Math.max(this.last, now);
    this.budget = Math.min(this.budget + elapsed * this.options.rate, this.options.rate * MAX_CARRY_SECONDS + 1);
    const out: SimEvent[] = [];
    while (this.queue.length && this.queue[0].at <= now) {
      const due = this.pop().step();
      const events = due === null ? [] : Array.isArray(due) ? due : [due];
      out.push(...events);
      this.budget -= events.length;
    }
    let attempts = 0;
    while (this.budget >= 1 && attempts++ < 50) {
      const event = this.begin(now);
      if (!event) continue;
      out.push(event);
      this.budget--;
    }
    return out;
  }

  /** Ends whatever is in progress (calls hang up, queue callers give up), so a stopped run leaves no call behind. */
  finish(now: number): SimEvent[] {
    const out: SimEvent[] = [];
    for (const leg of this.legs.values()) {
      out.push(this.end(leg, now, leg.answered ? "answered" : "no_answer", leg.answered ? "NORMAL_CLEARING" : "ORIGINATOR_CANCEL"));
    }
    for (const caller of this.waiting.values()) out.push(queueEvent(caller, "abandon", now));
    this.legs.clear();
    this.waiting.clear();
    this.busy.clear();
    this.queue.length = 0;
    return out;
  }

  stats(now: number): TrafficStats {
    let registeredDevices = 0;
    for (const contacts of this.devices.values()) for (const expiry of contacts.values()) if (expiry > now) registeredDevices++;
    return { activeLegs: this.legs.size, waitingInQueues: this.waiting.size, registeredDevices };
  }

  // --- starting something new ------------------------------------------------------------------

  private begin(now: number): SimEvent | null {
    const tenant = this.pick(this.tenants.filter((t) => t.extensions.length > 0));
    const unfilled = this.unfilledShare(tenant, now);
    const hasQueue = this.openQueues(tenant).length > 0;
    const r = this.random();
    // Phones register first; once most are up, calls dominate.
    const pRegister = unfilled > 0 ? 0.15 + 0.7 * unfilled : 0;
    if (r < pRegister) return this.register(tenant, now);
    if (hasQueue && r < pRegister + (1 - pRegister) * 0.2) return this.joinQueue(tenant, now);
    return this.call(tenant, now);
  }

  /** Queues that take callers: with agents, and fewer than two callers waiting per agent (beyond that the line is busy). */
  private openQueues(tenant: SimTenant): SimQueue[] {
    return tenant.queues.filter((q) => {
      let waiting = 0;
      for (const c of this.waiting.values()) if (c.queue === q) waiting++;
      return q.agents.length > 0 && waiting < 2 * q.agents.length;
    });
  }

  private unfilledShare(tenant: SimTenant, now: number): number {
    let free = 0;
    let total = 0;
    for (const e of tenant.extensions) {
      const slots = this.slots.get(key(tenant, e.number)) ?? 1;
      total += slots;
      free += Math.max(0, slots - this.liveDevices(tenant, e.number, now));
    }
    return total ? free / total : 0;
  }

  private liveDevices(tenant: SimTenant, number: string, now: number): number {
    let n = 0;
    for (const expiry of this.devices.get(key(tenant, number))?.values() ?? []) if (expiry > now) n++;
    return n;
  }

  private isFree(tenant: SimTenant, number: string): boolean {
    return !this.busy.has(key(tenant, number));
  }

  private markBusy(tenant: SimTenant, number: string, busy: boolean): void {
    const k = key(tenant, number);
    const n = (this.busy.get(k) ?? 0) + (busy ? 1 : -1);
    if (n > 0) this.busy.set(k, n);
    else this.busy.delete(k);
  }

  // --- registrations ---------------------------------------------------------------------------

  private register(tenant: SimTenant, now: number): SimEvent | null {
    const candidates = tenant.extensions.filter((e) => this.liveDevices(tenant, e.number, now) < (this.slots.get(key(tenant, e.number)) ?? 1));
    if (candidates.length === 0) return null;
    const ext = this.pick(candidates);
    const [userAgent, transport] = this.pick(USER_AGENTS);
    const ip = `${this.pick(["192.0.2", "198.51.100", "203.0.113"])}.${1 + Math.floor(this.random() * 254)}`;
    const port = transport === "wss" ? 443 : 1024 + Math.floor(this.random() * 64_000);
    const contact = `sip:${ext.number}@${ip}:${port}${transport === "udp" ? "" : `;transport=${transport}`}`;
    const expires = this.weighted(EXPIRES, EXPIRES_WEIGHTS);
    const device = { tenant, ext: ext.number, contact, userAgent, transport, source: `${ip}:${port}`, expires };
    // Real user agents keep re-registering for hours; each refresh comes at 50-90 % of the interval.
    const refreshes = Math.floor(-Math.log(1 - this.random()) * 4);
    return this.registerNow(device, now, refreshes);
  }

  private registerNow(
    d: { tenant: SimTenant; ext: string; contact: string; userAgent: string; transport: RegistrationEvent["transport"]; source: string; expires: number },
    now: number,
    refreshesLeft: number,
  ): RegistrationEvent {
    const k = key(d.tenant, d.ext);
    if (!this.devices.has(k)) this.devices.set(k, new Map());
    this.devices.get(k)!.set(d.contact, now + d.expires * 1000);
    const next = now + d.expires * 1000 * (0.5 + 0.4 * this.random());
    if (refreshesLeft > 0) {
      this.schedule(next, () => this.registerNow(d, this.last, refreshesLeft - 1));
    } else if (this.random() < 0.75) {
      // The phone is switched off or logs out: it unregisters before its registration runs out.
      this.schedule(next, () => {
        this.devices.get(k)?.delete(d.contact);
        return { type: "registration", action: "unregister", domain: d.tenant.domain, extension: d.ext, contact: d.contact, occurred_at: iso(this.last) };
      });
    } else {
      // The phone vanishes (network gone): the server expires the registration by itself.
      this.schedule(now + d.expires * 1000, () => {
        this.devices.get(k)?.delete(d.contact);
        return null;
      });
    }
    return {
      type: "registration",
      action: "register",
      domain: d.tenant.domain,
      extension: d.ext,
      contact: d.contact,
      user_agent: d.userAgent,
      source_address: d.source,
      transport: d.transport,
      expires: d.expires,
      occurred_at: iso(now),
    };
  }

  // --- calls -----------------------------------------------------------------------------------

  private call(tenant: SimTenant, now: number): SimEvent | null {
    const free = tenant.extensions.filter((e) => this.isFree(tenant, e.number));
    if (free.length === 0) return null;
    const registered = free.filter((e) => this.liveDevices(tenant, e.number, now) > 0);
    const ext = registered.length && this.random() < 0.9 ? this.pick(registered) : this.pick(free);
    const r = this.random();
    const direction: Direction = r < 0.45 ? "inbound" : r < 0.85 ? "outbound" : "internal";
    const callId = this.nextCallId();
    if (direction === "internal") {
      const others = free.filter((e) => e.number !== ext.number);
      if (others.length === 0) return null;
      return this.internalCall(tenant, ext, this.pick(others), callId, now);
    }
    const external = this.externalNumber();
    const leg: Leg = {
      tenant,
      extension: ext.number,
      callId,
      linkedId: callId,
      direction,
      callerNumber: direction === "inbound" ? external : ext.number,
      callerName: direction === "inbound" ? this.pick(CALLER_NAMES) : undefined,
      calleeNumber: direction === "inbound" ? ext.number : external,
      answered: false,
    };
    return this.startLeg(leg, now, this.outcome(ext, direction === "inbound"));
  }

  /** Both legs of a call between two extensions: one call id each, one linked id. */
  private internalCall(tenant: SimTenant, caller: SimExtension, callee: SimExtension, callId: string, now: number): SimEvent {
    const outcome = this.outcome(callee, true);
    const base = { tenant, linkedId: callId, direction: "internal" as const, callerNumber: caller.number, callerName: `Ext ${caller.number}`, calleeNumber: callee.number, answered: false };
    const a: Leg = { ...base, extension: caller.number, callId };
    const b: Leg = { ...base, extension: callee.number, callId: `${callId}-b` };
    const first = this.startLeg(a, now, { ...outcome, dispositionOfCaller: true });
    // The callee's phone rings a moment after the caller's leg starts (taken now, so no other call picks it meanwhile);
    // the caller is the one who may hold.
    this.markBusy(tenant, callee.number, true);
    this.schedule(now + 50, () => this.startLeg(b, this.last, { ...outcome, hold: false }, true));
    return first;
  }

  /** About 70 % of calls are answered; the rest ring out to voicemail (where enabled) or no answer, are busy, or fail. */
  private outcome(callee: SimExtension, calleeIsExtension: boolean): CallPlan {
    if (this.random() < 0.7) return { disposition: "answered", ringMs: this.span(2_000, 15_000), talkMs: this.talkMs(), hold: this.random() < 0.15 };
    const r = this.random();
    if (calleeIsExtension && callee.voicemailEnabled) {
      if (r < 0.8) return { disposition: "voicemail", ringMs: this.span(15_000, 25_000) };
      if (r < 0.95) return { disposition: "busy", ringMs: this.span(500, 3_000) };
    } else {
      if (r < 0.6) return { disposition: "no_answer", ringMs: this.span(15_000, 30_000) };
      if (r < 0.93) return { disposition: "busy", ringMs: this.span(500, 3_000) };
    }
    return { disposition: "failed", ringMs: this.span(200, 1_700) };
  }

  /** Talk time: log-normal with a median of 90 s (mean about 2 min), 5 s to 20 min. */
  private talkMs(): number {
    const normal = Math.sqrt(-2 * Math.log(1 - this.random())) * Math.cos(2 * Math.PI * this.random());
    return Math.min(1_200_000, Math.max(5_000, Math.exp(Math.log(90) + 0.9 * normal) * 1000)) / this.speed;
  }

  /** A duration drawn uniformly from [min, max) ms of real time, compressed by `speed`. */
  private span(min: number, max: number): number {
    return (min + this.random() * (max - min)) / this.speed;
  }

  private startLeg(leg: Leg, now: number, plan: CallPlan & { dispositionOfCaller?: boolean }, reserved = false): CallEvent {
    this.legs.set(leg.callId, leg);
    if (!reserved) this.markBusy(leg.tenant, leg.extension, true);
    const answerAt = now + plan.ringMs;
    if (plan.disposition === "answered") {
      this.schedule(answerAt, () => this.answer(leg, this.last));
      let endAt = answerAt + plan.talkMs!;
      if (plan.hold) {
        const holdAt = answerAt + plan.talkMs! * (0.2 + 0.5 * this.random());
        const resumeAt = holdAt + this.span(5_000, 60_000);
        this.schedule(holdAt, () => this.callEvent(leg, "hold", this.last));
        this.schedule(resumeAt, () => this.callEvent(leg, "resume", this.last));
        endAt = Math.max(endAt, resumeAt + this.span(3_000, 33_000));
      }
      this.schedule(endAt, () => this.end(leg, this.last, "answered", "NORMAL_CLEARING"));
    } else {
      // An internal caller's own leg sees the callee's no-answer/busy as its result too, but never "voicemail" as an extension it rang.
      const disposition = plan.dispositionOfCaller && plan.disposition === "voicemail" ? "no_answer" : plan.disposition;
      this.schedule(answerAt, () => this.end(leg, this.last, disposition, CAUSES[disposition]));
    }
    return this.startFields(leg, now);
  }

  private answer(leg: Leg, now: number): CallEvent | null {
    if (!this.legs.has(leg.callId)) return null;
    leg.answered = true;
    return this.callEvent(leg, "answer", now);
  }

  private callEvent(leg: Leg, action: "answer" | "hold" | "resume", now: number): CallEvent | null {
    return this.legs.has(leg.callId) ? this.legFields(leg, action, now) : null;
  }

  private end(leg: Leg, now: number, disposition: Disposition, cause: string): CallEvent {
    this.legs.delete(leg.callId);
    this.markBusy(leg.tenant, leg.extension, false);
    return {
      ...this.legFields(leg, "end", now),
      direction: leg.direction,
      caller_number: leg.callerNumber,
      callee_number: leg.calleeNumber,
      ...(leg.queue ? { queue: leg.queue } : {}),
      disposition,
      hangup_cause: cause,
    };
  }

  private legFields(leg: Leg, action: CallEvent["action"], now: number): CallEvent {
    return {
      type: "call",
      action,
      domain: leg.tenant.domain,
      extension: leg.extension,
      call_id: leg.callId,
      ...(leg.linkedId !== leg.callId ? { linked_id: leg.linkedId } : {}),
      occurred_at: iso(now),
    };
  }

  // --- queues ----------------------------------------------------------------------------------

  private joinQueue(tenant: SimTenant, now: number): SimEvent {
    const queue = this.pick(this.openQueues(tenant));
    const caller: QueueCaller = {
      tenant,
      queue,
      callId: this.nextCallId(),
      callerNumber: this.externalNumber(),
      callerName: this.pick(CALLER_NAMES),
      joinedAt: now,
      // Most callers wait a minute or two; some give up within seconds.
      patienceUntil: now + this.span(10_000, 180_000),
    };
    this.waiting.set(caller.callId, caller);
    this.schedule(now + this.span(3_000, 43_000), () => this.offerToAgent(caller, this.last));
    return queueEvent(caller, "join", now);
  }

  /** Rings a free agent (the agent's leg starts); with none free, the caller keeps waiting or gives up. */
  private offerToAgent(caller: QueueCaller, now: number): SimEvent | null {
    if (!this.waiting.has(caller.callId)) return null;
    const free = caller.queue.agents.filter((a) => this.isFree(caller.tenant, a));
    if (free.length === 0 || now >= caller.patienceUntil) {
      if (now >= caller.patienceUntil) return this.abandon(caller, now);
      this.schedule(Math.min(caller.patienceUntil, now + this.span(2_000, 7_000)), () => this.offerToAgent(caller, this.last));
      return null;
    }
    const agent = this.pick(free);
    const leg: Leg = {
      tenant: caller.tenant,
      extension: agent,
      callId: `${caller.callId}-${agent}`,
      linkedId: caller.callId,
      direction: "inbound",
      callerNumber: caller.callerNumber,
      callerName: caller.callerName,
      calleeNumber: caller.queue.number,
      queue: caller.queue.number,
      answered: false,
    };
    const ringMs = this.span(1_500, 7_500);
    if (now + ringMs >= caller.patienceUntil) {
      // The caller hangs up while the agent's phone rings.
      this.legs.set(leg.callId, leg);
      this.markBusy(leg.tenant, leg.extension, true);
      this.schedule(caller.patienceUntil, () => this.abandon(caller, this.last));
      this.schedule(caller.patienceUntil + 1, () => this.end(leg, this.last, "no_answer", "ORIGINATOR_CANCEL"));
      return this.startFields(leg, now);
    }
    const talkMs = this.talkMs();
    this.legs.set(leg.callId, leg);
    this.markBusy(leg.tenant, leg.extension, true);
    // The agent picks up and the queue reports it at the same instant.
    this.schedule(now + ringMs, () => {
      const answered = this.answer(leg, this.last);
      if (!answered || !this.waiting.delete(caller.callId)) return answered;
      return [answered, { ...queueEvent(caller, "answer", this.last), agent }];
    });
    this.schedule(now + ringMs + talkMs, () => this.end(leg, this.last, "answered", "NORMAL_CLEARING"));
    return this.startFields(leg, now);
  }

  private startFields(leg: Leg, now: number): CallEvent {
    return {
      ...this.legFields(leg, "start", now),
      direction: leg.direction,
      caller_number: leg.callerNumber,
      ...(leg.callerName ? { caller_name: leg.callerName } : {}),
      callee_number: leg.calleeNumber,
      ...(leg.queue ? { queue: leg.queue } : {}),
    };
  }

  private abandon(caller: QueueCaller, now: number): QueueEvent | null {
    return this.waiting.delete(caller.callId) ? queueEvent(caller, "abandon", now) : null;
  }

  // --- helpers ---------------------------------------------------------------------------------

  private nextCallId(): string {
    return `${this.options.runId}-${(++this.callSeq).toString(36)}`;
  }

  private externalNumber(): string {
    return `+1${this.pick(["212", "312", "415", "617", "702"])}555${String(Math.floor(this.random() * 10_000)).padStart(4, "0")}`;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)];
  }

  private weighted<T>(items: readonly T[], weights: readonly number[]): T {
    let r = this.random() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < items.length; i++) if ((r -= weights[i]) < 0) return items[i];
    return items[items.length - 1];
  }

  private schedule(at: number, step: Step): void {
    const item = { at, seq: ++this.seq, step };
    const q = this.queue;
    q.push(item);
    for (let i = q.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!before(q[i], q[parent])) break;
      [q[i], q[parent]] = [q[parent], q[i]];
      i = parent;
    }
  }

  private pop(): Scheduled {
    const q = this.queue;
    const top = q[0];
    const last = q.pop()!;
    if (q.length) {
      q[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < q.length && before(q[l], q[m])) m = l;
        if (r < q.length && before(q[r], q[m])) m = r;
        if (m === i) break;
        [q[i], q[m]] = [q[m], q[i]];
        i = m;
      }
    }
    return top;
  }
}

interface CallPlan {
  disposition: Disposition;
  ringMs: number;
  talkMs?: number;
  hold?: boolean;
}

const CAUSES: Record<Disposition, string> = {
  answered: "NORMAL_CLEARING",
  no_answer: "NO_ANSWER",
  busy: "USER_BUSY",
  failed: "CALL_REJECTED",
  voicemail: "NORMAL_CLEARING",
};

/**
 * The `speed` at which `extensions` stay about 40 % occupied while producing `rate` events per
 * second: a call leg lasts about 106 s and yields about 2.9 events at real time, so an extension
 * sustains about 0.011 events/s at that occupancy. Real-time pacing needs about 90 extensions per
 * event per second; with fewer, calls are compressed rather than piled onto one extension.
 */
export function speedFor(rate: number, extensions: number): number {
  return Math.max(1, rate / (Math.max(1, extensions) * 0.011));
}

const key = (tenant: SimTenant, number: string): string => `${tenant.domain}/${number}`;
const iso = (ms: number): string => new Date(ms).toISOString();
const before = (a: Scheduled, b: Scheduled): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

function queueEvent(caller: QueueCaller, action: QueueEvent["action"], now: number): QueueEvent {
  const who = action === "join" ? { caller_number: caller.callerNumber, caller_name: caller.callerName } : {};
  return { type: "queue", action, domain: caller.tenant.domain, queue: caller.queue.number, call_id: caller.callId, ...who, occurred_at: iso(now) };
}
