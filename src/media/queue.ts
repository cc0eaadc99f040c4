import { randomBytes } from "node:crypto";
import { CallDestinationType } from "../modules/call-destination/call-destination.type";
import type { OfferableAgent, QueueRow } from "../modules/queue/queue.service";
import { QueueStrategy } from "../modules/queue/queue.entity";
import { CallEnded, type MediaCall } from "./media-call";
import type { MediaEnv } from "./media-env";
import { header, newTag, OutboundDialog, type SipMessage } from "./sip-ua";
import { depositVoicemail } from "./voicemail";

/** With no agent to offer the call to, the queue looks again this often. */
const IDLE_RETRY_MS = 1000;

/** ROUND_ROBIN's memory: the last agent offered a call, per queue (this instance's calls). */
const lastOffered = new Map<number, number>();

/**
 * The agents to ring next, by the queue's strategy (contract §13), among those of the lowest
 * penalty that has anyone offerable: RING_ALL all of them at once, the others one.
 */
export function chooseAgents(queue: Pick<QueueRow, "id" | "strategy">, offerable: OfferableAgent[], exclude: ReadonlySet<number> = new Set()): OfferableAgent[] {
  const candidates = offerable.filter((a) => !exclude.has(a.agentId));
  if (candidates.length === 0) return [];
  const penalty = Math.min(...candidates.map((a) => a.penalty));
  const tier = candidates.filter((a) => a.penalty === penalty);
  switch (queue.strategy) {
    case QueueStrategy.RING_ALL:
      return tier;
    case QueueStrategy.LINEAR:
      return [tier[0]];
    case QueueStrategy.RANDOM:
      return [tier[Math.floor(Math.random() * tier.length)]];
    case QueueStrategy.ROUND_ROBIN: {
      const last = lastOffered.get(queue.id);
      return [tier.find((a) => last !== undefined && a.agentId > last) ?? tier[0]];
    }
    case QueueStrategy.LEAST_RECENT:
      // Never called first, then the longest since their last queue call ended.
      return [[...tier].sort((a, b) => (a.lastCallEndedAt ? new Date(a.lastCallEndedAt).getTime() : 0) - (b.lastCallEndedAt ? new Date(b.lastCallEndedAt).getTime() : 0))[0]];
    case QueueStrategy.FEWEST_CALLS:
      return [[...tier].sort((a, b) => a.answeredToday - b.answeredToday)[0]];
  }
}

interface AnsweredLeg {
  agent: OfferableAgent;
  dialog: OutboundDialog;
  sdp: string;
  callId: string;
}

/**
 * A caller in a queue (contract §13): answered, music on hold while the queue offers the call to its
 * agents by strategy and penalty (each offer rings the agent's phones through the engine for
 * agentRingSeconds), connected to the first agent who answers; maxWaitSeconds sends the caller to the
 * timeoutDestination. The §6 queue events (join, answer with the agent, abandon) and the answering
 * agent's leg are recorded through the ingestion service, as if the engine had sent them.
 */
export async function runQueueCall(env: MediaEnv, call: MediaCall, domain: string, number: string, hops = 0): Promise<void> {
  const ctx = env.context("ingest");
  const queue = await env.services.queues.forCall(ctx, domain, number);
  if (!queue) return call.answered ? call.hangup() : call.reject(404, "Not Found");
  if (!call.answered) await call.answer();
  const log = call.log.child({ app: "queue", queueId: queue.id });
  const callerCallId = call.dialog.callId;
  const event = (action: "join" | "answer" | "abandon", agent?: string) =>
    env.services.ingest.ingestMany(ctx, [{ type: "queue", action, domain, queue: number, call_id: callerCallId, ...(agent ? { agent } : {}), occurred_at: new Date().toISOString() }]);
  let sentOn = false;
  try {
    await event("join");
    await call.loop(env.assets.musicOnHold);
    const deadline = Date.now() + queue.maxWaitSeconds * 1000;
    let answered: AnsweredLeg | null = null;
    const refused = new Set<number>();
    while (!answered && !call.ended && Date.now() < deadline) {
      const agents = chooseAgents(queue, await env.services.queues.offerable(ctx, queue.id), refused);
      if (agents.length === 0) {
        refused.clear();
        await call.waitFor(Math.min(IDLE_RETRY_MS, deadline - Date.now()));
        continue;
      }
      if (queue.strategy === QueueStrategy.ROUND_ROBIN) lastOffered.set(queue.id, agents[0].agentId);
      answered = await offer(env, call, domain, agents, Math.min(queue.agentRingSeconds * 1000, deadline - Date.now()));
      // Who did not answer waits for the others' turn before being rung again.
      if (!answered && queue.strategy !== QueueStrategy.RING_ALL) for (const a of agents) refused.add(a.agentId);
    }
    if (call.ended) throw new CallEnded();
    if (!answered) {
      log.info({ destination: queue.timeoutDestinationType }, "maxWaitSeconds reached");
      // from here on a hang-up is no abandon: the wait limit sent the caller on (contract §13)
      sentOn = true;
      await call.stopMedia();
      return await timeout(env, call, domain, queue, hops);
    }
    await bridge(env, call, domain, number, answered);
    await event("answer", answered.agent.number);
    await endTogether(env, call, answered, domain, number);
  } catch (error) {
    if (!(error instanceof CallEnded)) throw error;
    // The caller hung up while waiting: an abandon (never for one the wait limit sent on).
    if (sentOn) return;
    await event("abandon").catch((e: unknown) => log.warn({ err: e }, "abandon event not recorded"));
  } finally {
    await call.release();
  }
}

/**
 * A new leg from the caller's call to `number` of the tenant, through the engine (Route: the
 * engine's address): the caller's name and number in From, rtpengine's offer for party B as the
 * SDP, and the X-Pbx-* headers that tell the engine what the leg is.
 */
function engineInvite(env: MediaEnv, call: MediaCall, domain: string, number: string, pbxHeaders: Record<string, string>): { invite: SipMessage; callId: string } {
  const caller = call.caller;
  const callId = `${randomBytes(8).toString("hex")}@pbx-media`;
  const uri = `sip:${number}@${domain}`;
  const invite: SipMessage = {
    method: "INVITE",
    uri,
    headers: {
      via: env.ua.via(),
      to: { uri, params: {} },
      from: { name: caller.name ? `"${caller.name.replace(/"/g, "")}"` : undefined, uri: `sip:${caller.number ?? "anonymous"}@${domain}`, params: { tag: newTag() } },
      "call-id": callId,
      cseq: { seq: 1, method: "INVITE" },
      route: [{ uri: `${env.config.engineUri};lr`, params: {} }],
      contact: [{ uri: env.ua.contact, params: {} }],
      ...pbxHeaders,
      "content-type": "application/sdp",
      "max-forwards": 70,
    },
    content: call.offerToB,
  };
  return { invite, callId };
}

/** Rings the agents at once; resolves with the first who answers (the others are cancelled or hung up), or null. */
async function offer(env: MediaEnv, call: MediaCall, domain: string, agents: OfferableAgent[], ringMs: number): Promise<AnsweredLeg | null> {
  const pending = agents.map((agent) => {
    const { invite, callId } = engineInvite(env, call, domain, agent.number, { "x-pbx-app": "queue-agent" });
    const { final, cancel } = env.ua.invite(invite);
    return { agent, invite, final, cancel, callId };
  });
  const winner = await new Promise<(typeof pending)[number] | null>((resolve) => {
    let left = pending.length;
    const timer = setTimeout(() => resolve(null), ringMs);
    const ended = () => resolve(null);
    call.once("ended", ended);
    for (const p of pending) {
      void p.final.then((response) => {
        if ((response.status ?? 0) < 300) {
          clearTimeout(timer);
          call.off("ended", ended);
          return resolve(p);
        }
        if (--left === 0) {
          clearTimeout(timer);
          call.off("ended", ended);
          resolve(null);
        }
      });
    }
  });
  for (const p of pending) {
    if (p === winner) continue;
    p.cancel();
    // An agent who answered at the same moment as the winner is hung up.
    void p.final.then((response) => {
      if ((response.status ?? 0) < 300) void new OutboundDialog(env.ua, p.invite, response).bye();
    });
  }
  if (!winner) return null;
  const response = await winner.final;
  const dialog = new OutboundDialog(env.ua, winner.invite, response);
  if (call.ended) {
    await dialog.bye();
    throw new CallEnded();
  }
  return { agent: winner.agent, dialog, sdp: response.content ?? "", callId: winner.callId };
}

/** Caller and agent hear each other; the agent's leg starts (and is answered) in the product's records. */
async function bridge(env: MediaEnv, call: MediaCall, domain: string, queueNumber: string, leg: AnsweredLeg): Promise<void> {
  await call.connectTo(leg.sdp);
  await env.services.ingest.ingestMany(env.context("ingest"), ["start", "answer"].map((action) => agentLegEvent(call, domain, queueNumber, leg, action)));
}

function agentLegEvent(call: MediaCall, domain: string, queueNumber: string, leg: AnsweredLeg, action: string, end = false) {
  const caller = call.caller;
  const carrier = call.carrier;
  return {
    type: "call",
    action,
    call_id: leg.callId,
    linked_id: call.dialog.callId,
    domain,
    extension: leg.agent.number,
    // a carrier's call: inbound, with its trunk and numbers (contract §11), as the engine's legs
    ...(carrier
      ? { direction: "inbound", trunk_id: carrier.trunkId, phone_number: carrier.phoneNumber, external_number: carrier.externalNumber }
      : { direction: "internal" }),
    ...(caller.number ? { caller_number: caller.number } : {}),
    ...(caller.name ? { caller_name: caller.name } : {}),
    callee_number: leg.agent.number,
    queue: queueNumber,
    ...(end ? { disposition: "answered", hangup_cause: "normal_clearing" } : {}),
    occurred_at: new Date().toISOString(),
  };
}

/** Until one side hangs up; then the other is hung up and the agent's leg ends. */
async function endTogether(env: MediaEnv, call: MediaCall, leg: AnsweredLeg, domain: string, queueNumber: string): Promise<void> {
  await hangUpTogether(env, call, leg.dialog, leg.callId);
  await env.services.ingest.ingestMany(env.context("ingest"), [agentLegEvent(call, domain, queueNumber, leg, "end", true)]);
}

/** Until the caller or the leg `callId` hangs up; then the other is hung up. */
async function hangUpTogether(env: MediaEnv, call: MediaCall, dialog: OutboundDialog, callId: string): Promise<void> {
  const agentGone = new Promise<void>((resolve) => env.legs.set(callId, resolve));
  const callerGone = new Promise<void>((resolve) => (call.ended ? resolve() : call.once("ended", () => resolve())));
  await Promise.race([agentGone, callerGone]);
  env.legs.delete(callId);
  if (call.ended) await dialog.bye();
  else {
    dialog.ended = true;
    await call.hangup();
  }
}

/** A chain of timeout destinations (a queue's, then that queue's, …) stops after this many. */
const MAX_TIMEOUT_HOPS = 5;

/**
 * maxWaitSeconds reached: the queue's timeoutDestination. HANGUP ends the call; VOICEMAIL and QUEUE
 * run here on the same call; EXTENSION, RING_GROUP and EXTERNAL are executed by the engine, like any
 * call of the tenant (destination()): an extension is called as §12 says (its forwardAlways,
 * do-not-disturb, ringSeconds, forwardBusy / forwardNoAnswer, else its voicemail), not rung like an
 * agent.
 */
async function timeout(env: MediaEnv, call: MediaCall, domain: string, queue: QueueRow, hops: number): Promise<void> {
  const target = queue.timeoutDestinationTarget;
  if (hops >= MAX_TIMEOUT_HOPS && queue.timeoutDestinationType !== CallDestinationType.HANGUP) {
    call.log.warn({ queueId: queue.id, hops }, "timeout destinations chained too long: the call ends");
    return call.hangup();
  }
  switch (queue.timeoutDestinationType) {
    case CallDestinationType.VOICEMAIL:
      return depositVoicemail(env, call, domain, target!);
    case CallDestinationType.QUEUE:
      return runQueueCall(env, call, domain, target!, hops + 1);
    case CallDestinationType.EXTENSION:
      return destination(env, call, domain, queue, "extension", target!, hops);
    case CallDestinationType.RING_GROUP:
      return destination(env, call, domain, queue, "ring_group", target!, hops);
    case CallDestinationType.EXTERNAL:
      return destination(env, call, domain, queue, "external", target!, hops);
    default:
      return call.hangup();
  }
}

/** A carrier's call, handed on to the engine with a destination leg (its legs are inbound too). */
function carrierHeaders(call: MediaCall): Record<string, string> {
  const carrier = call.carrier;
  if (!carrier) return {};
  return { "x-pbx-trunk": String(carrier.trunkId), "x-pbx-phone-number": carrier.phoneNumber, "x-pbx-external": carrier.externalNumber };
}

/**
 * How long we wait for the engine's final answer to a destination leg: the engine's own timers
 * (a ring group's ringSeconds per member and its fallback, a carrier's no-answer time) end it
 * first; this only guards against an answer that never comes.
 */
const DESTINATION_MAX_MS = 15 * 60_000;

/**
 * An EXTENSION, RING_GROUP or EXTERNAL timeout destination. We answered the caller, so the
 * destination is a new leg that we originate through the engine (X-Pbx-App: queue-destination,
 * deploy/kamailio/routes/media.cfg) and bridge to the caller as we bridge an agent. The engine
 * executes it as it executes any call of the tenant: an extension by its call handling (§12); a
 * ring group by its strategy, ringSeconds and fallback (members on DND or
 * unregistered skipped); an EXTERNAL number through the tenant's outbound routes as the tenant (its
 * caller ID and default call classes, Diversion naming the queue). The legs that ring are the
 * engine's to report (their CDRs share the caller's linked_id); the caller's leg is ours already.
 * A fallback that is ours to run (voicemail, a queue) comes back as 302 with X-Pbx-App and
 * X-Pbx-Target and runs here, on the caller's call. Anything else unanswered ends the call.
 */
async function destination(env: MediaEnv, call: MediaCall, domain: string, queue: QueueRow, type: "extension" | "ring_group" | "external", target: string, hops: number): Promise<void> {
  const { invite, callId } = engineInvite(env, call, domain, target, {
    "x-pbx-app": "queue-destination",
    "x-pbx-domain": domain,
    "x-pbx-dest": type,
    "x-pbx-target": target,
    "x-pbx-linked-id": call.dialog.callId,
    "x-pbx-queue": queue.number,
    ...carrierHeaders(call),
  });
  await call.loop(env.assets.musicOnHold);
  const { final, cancel } = env.ua.invite(invite);
  const response = await new Promise<SipMessage | null>((resolve) => {
    const timer = setTimeout(() => {
      call.off("ended", ended);
      cancel();
      resolve(null);
    }, DESTINATION_MAX_MS);
    const ended = () => {
      clearTimeout(timer);
      cancel();
      resolve(null);
    };
    call.once("ended", ended);
    void final.then((r) => {
      clearTimeout(timer);
      call.off("ended", ended);
      resolve(r);
    });
  });
  if (!response) {
    // The caller hung up while it rang (or nothing came): a leg that answered meanwhile is hung up.
    void final.then((r) => {
      if ((r.status ?? 0) < 300) void new OutboundDialog(env.ua, invite, r).bye();
    });
    if (call.ended) throw new CallEnded();
    return call.hangup();
  }
  const status = response.status ?? 0;
  if (status >= 200 && status < 300) {
    const dialog = new OutboundDialog(env.ua, invite, response);
    if (call.ended) {
      await dialog.bye();
      throw new CallEnded();
    }
    await call.connectTo(response.content ?? "");
    return hangUpTogether(env, call, dialog, callId);
  }
  const app = header(response, "X-Pbx-App")?.trim().toLowerCase();
  const next = header(response, "X-Pbx-Target")?.trim() ?? "";
  if (status === 302 && /^[0-9]{1,20}$/.test(next) && (app === "voicemail" || app === "queue")) {
    call.log.info({ app, target: next }, "the timeout destination's fallback runs here");
    await call.stopMedia();
    return app === "voicemail" ? depositVoicemail(env, call, domain, next) : runQueueCall(env, call, domain, next, hops + 1);
  }
  call.log.info({ status, type, target }, "the timeout destination did not answer: the call ends");
  return call.hangup();
}
