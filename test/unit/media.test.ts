import { ConfigError } from "../../src/config/config";
import { loadMediaConfig } from "../../src/media/config";
import { messageSummary } from "../../src/media/mwi";
import { chooseAgents } from "../../src/media/queue";
import { buildRtp, decodeG711, encodeUlaw, parseRtp, parseTelephoneEvent, telephoneEventPayload } from "../../src/media/rtp";
import { QueueStrategy } from "../../src/modules/queue/queue.entity";
import type { OfferableAgent } from "../../src/modules/queue/queue.service";

const agent = (agentId: number, penalty: number, extra: Partial<OfferableAgent> = {}): OfferableAgent => ({
  agentId,
  extensionId: agentId,
  number: String(1000 + agentId),
  penalty,
  lastCallEndedAt: null,
  answeredToday: 0,
  ...extra,
});

describe("queue strategies (chooseAgents)", () => {
  const q = (strategy: QueueStrategy, id = Math.floor(Math.random() * 1e9)) => ({ id, strategy });

  it("offers only the lowest penalty that has anyone: RING_ALL all of them, LINEAR the first enrolled", () => {
    const agents = [agent(1, 1), agent(2, 0), agent(3, 0)];
    expect(chooseAgents(q(QueueStrategy.RING_ALL), agents).map((a) => a.agentId)).toEqual([2, 3]);
    expect(chooseAgents(q(QueueStrategy.LINEAR), agents).map((a) => a.agentId)).toEqual([2]);
    // With the penalty-0 agents excluded (they did not answer), the next tier is offered.
    expect(chooseAgents(q(QueueStrategy.LINEAR), agents, new Set([2, 3])).map((a) => a.agentId)).toEqual([1]);
    expect(chooseAgents(q(QueueStrategy.RING_ALL), [])).toEqual([]);
  });

  it("LEAST_RECENT takes the agent never called or whose last call ended longest ago; FEWEST_CALLS the fewest answered today", () => {
    const agents = [agent(1, 0, { lastCallEndedAt: new Date("2026-12-07T10:00:00Z"), answeredToday: 3 }), agent(2, 0, { lastCallEndedAt: new Date("2026-12-07T09:00:00Z"), answeredToday: 1 }), agent(3, 0, { lastCallEndedAt: new Date("2026-12-07T11:00:00Z"), answeredToday: 2 })];
    expect(chooseAgents(q(QueueStrategy.LEAST_RECENT), agents)[0].agentId).toBe(2);
    expect(chooseAgents(q(QueueStrategy.LEAST_RECENT), [...agents, agent(4, 0)])[0].agentId).toBe(4);
    expect(chooseAgents(q(QueueStrategy.FEWEST_CALLS), agents)[0].agentId).toBe(2);
  });

  it("RANDOM picks one of the tier; ROUND_ROBIN starts at the first", () => {
    const agents = [agent(1, 0), agent(2, 0), agent(3, 5)];
    for (let i = 0; i < 20; i++) expect([1, 2]).toContain(chooseAgents(q(QueueStrategy.RANDOM), agents)[0].agentId);
    expect(chooseAgents(q(QueueStrategy.ROUND_ROBIN), agents)[0].agentId).toBe(1);
  });
});

describe("RTP and G.711", () => {
  it("µ-law round-trips a sine within G.711's precision, and RTP headers parse back", () => {
    const samples = Array.from({ length: 160 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 1000 * i) / 8000)));
    const payload = Buffer.from(samples.map(encodeUlaw));
    const packet = parseRtp(buildRtp({ payloadType: 0, sequence: 65535, timestamp: 4294967295, ssrc: 42, payload, marker: true }))!;
    expect(packet).toMatchObject({ payloadType: 0, sequence: 65535, timestamp: 4294967295, ssrc: 42, marker: true });
    const decoded = decodeG711(packet.payload, 0);
    samples.forEach((s, i) => expect(Math.abs(decoded[i] - s)).toBeLessThanOrEqual(Math.max(16, Math.abs(s) * 0.07)));
    expect(parseRtp(Buffer.from([0x80, 200, 0, 1]))).toBeUndefined();
  });

  it("RFC 4733 digits", () => {
    expect(parseTelephoneEvent(telephoneEventPayload("#", true, 800))).toEqual({ digit: "#", end: true, duration: 800 });
    expect(parseTelephoneEvent(telephoneEventPayload("7", false, 160))).toEqual({ digit: "7", end: false, duration: 160 });
  });
});

describe("message-summary body (RFC 3842)", () => {
  it("says whether messages wait, and unheard/heard", () => {
    expect(messageSummary({ unheard: 2, total: 5 }, "sip:1001@a.test")).toBe("Messages-Waiting: yes\r\nMessage-Account: sip:1001@a.test\r\nVoice-Message: 2/3 (0/0)\r\n");
    expect(messageSummary({ unheard: 0, total: 1 }, "sip:1001@a.test")).toMatch(/^Messages-Waiting: no\r\n.*Voice-Message: 0\/1 \(0\/0\)/s);
  });
});

describe("media configuration", () => {
  it("has the contract's defaults and refuses malformed values with the variable named", () => {
    expect(loadMediaConfig({})).toMatchObject({ sipHost: "127.0.0.1", sipPort: 5070, rtpengineHost: "127.0.0.1", rtpenginePort: 22222, engineHost: "127.0.0.1", enginePort: 5060, voicemailMaxSeconds: 120 });
    expect(() => loadMediaConfig({ MEDIA_SIP_LISTEN: "tcp:1.2.3.4:5" })).toThrow(ConfigError);
    expect(() => loadMediaConfig({ RTPENGINE_NG: "udp:127.0.0.1:99999" })).toThrow(/RTPENGINE_NG/);
    expect(() => loadMediaConfig({ ENGINE_SIP_URI: "http://x" })).toThrow(/ENGINE_SIP_URI/);
    expect(() => loadMediaConfig({ VOICEMAIL_MAX_SECONDS: "1" })).toThrow(/VOICEMAIL_MAX_SECONDS/);
    expect(loadMediaConfig({ ENGINE_SIP_URI: "sip:10.0.0.5" })).toMatchObject({ engineHost: "10.0.0.5", enginePort: 5060 });
  });
});
