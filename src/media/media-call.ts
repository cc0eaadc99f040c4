import dgram from "node:dgram";
import { EventEmitter } from "node:events";
import * as sdpTransform from "sdp-transform";
import type { Logger } from "../common/logger";
import { decodeG711, parseRtp, parseTelephoneEvent } from "./rtp";
import type { Rtpengine } from "./rtpengine";
import { header, InboundDialog, type SipMessage, type SipUa } from "./sip-ua";

/** A played prompt's end is awaited this much past the length rtpengine reported (its pacing, the network). */
const PLAY_SLACK_MS = 150;

export class CallEnded extends Error {
  constructor() {
    super("the call ended");
  }
}

/**
 * One call the media application answers: the caller's SIP dialog, rtpengine's call with our RTP
 * socket as party B, the caller's audio (G.711 decoded, for whoever records it) and digits (RFC 4733
 * packets, which rtpengine passes on to party B like any other RTP). Applications (voicemail, queue,
 * *98) drive it with play(), digits and record hooks, and end it with hangup().
 */
export class MediaCall extends EventEmitter {
  readonly dialog: InboundDialog;
  /** rtpengine's call id: apart from the caller's Call-ID, which Kamailio's own rtpengine_manage may use. */
  readonly mediaId: string;
  private socket: dgram.Socket | undefined;
  private eventPayloadType: number | undefined;
  private lastEventTimestamp: number | undefined;
  /** Receives the caller's decoded audio while set. */
  onAudio: ((samples: Int16Array) => void) | undefined;
  answered = false;
  /** The SDP our 200 OK carried: a re-INVITE without a change is answered with it again. */
  answerSdp = "";
  /** rtpengine's SDP for party B: what an agent's INVITE offers, so the agent can take our socket's place. */
  offerToB = "";

  constructor(
    private readonly ua: SipUa,
    private readonly rtpengine: Rtpengine,
    private readonly rtpHost: string,
    readonly invite: SipMessage,
    readonly log: Logger,
  ) {
    super();
    this.dialog = new InboundDialog(ua, invite);
    this.mediaId = `${this.dialog.callId}~media`;
    this.dialog.onEnd(() => this.emit("ended"));
  }

  get ended(): boolean {
    return this.dialog.ended;
  }

  /** The caller as the INVITE's From names them. */
  get caller(): { number: string | null; name: string | null } {
    const from = this.invite.headers.from;
    const number = from ? (/^sips?:([^@;]+)@/.exec(String(from.uri))?.[1] ?? null) : null;
    const name = from?.name ? from.name.replace(/^"|"$/g, "").trim() || null : null;
    return { number, name };
  }

  /**
   * A carrier's call (the engine's X-Pbx-Trunk, X-Pbx-Phone-Number, X-Pbx-External): its trunk, the
   * tenant's number dialled and the other party, for the legs we report; null for a call from inside.
   */
  get carrier(): { trunkId: number; phoneNumber: string; externalNumber: string } | null {
    const trunk = this.header("X-Pbx-Trunk")?.trim() ?? "";
    const phoneNumber = this.header("X-Pbx-Phone-Number")?.trim() ?? "";
    const externalNumber = this.header("X-Pbx-External")?.trim() ?? "";
    if (!/^[1-9][0-9]{0,9}$/.test(trunk) || !/^\+[1-9][0-9]{6,14}$/.test(phoneNumber) || externalNumber.length < 1 || externalNumber.length > 64) return null;
    return { trunkId: Number(trunk), phoneNumber, externalNumber };
  }

  header(name: string): string | undefined {
    return header(this.invite, name);
  }

  /** Sets up the media (rtpengine offer with the caller's SDP, our answer) and answers 200 OK. */
  async answer(): Promise<void> {
    const offer = this.invite.content;
    if (!offer || !/^v=0/m.test(offer)) throw new Error("the INVITE carries no SDP offer");
    const socket = (this.socket = dgram.createSocket("udp4"));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, this.rtpHost, () => resolve());
    });
    socket.on("message", (data) => this.onRtp(data));
    this.offerToB = await this.rtpengine.offer(this.mediaId, this.dialog.remoteTag, offer);
    const toB = sdpTransform.parse(this.offerToB);
    const audio = toB.media.find((m) => m.type === "audio");
    if (!audio) throw new Error("rtpengine's offer has no audio");
    const codec = audio.rtp.find((r) => /^(PCMU|PCMA)$/i.test(r.codec));
    if (!codec) throw new Error("no G.711 codec in common with the caller");
    const event = audio.rtp.find((r) => /^telephone-event$/i.test(r.codec) && r.rate === 8000);
    this.eventPayloadType = event?.payload;
    const port = socket.address().port;
    const session = Date.now();
    const localSdp = [
      "v=0",
      `o=pbx-media ${session} ${session} IN IP4 ${this.rtpHost}`,
      "s=pbx-media",
      `c=IN IP4 ${this.rtpHost}`,
      "t=0 0",
      `m=audio ${port} RTP/AVP ${codec.payload}${event ? ` ${event.payload}` : ""}`,
      `a=rtpmap:${codec.payload} ${codec.codec}/8000`,
      ...(event ? [`a=rtpmap:${event.payload} telephone-event/8000`, `a=fmtp:${event.payload} 0-16`] : []),
      "a=ptime:20",
      "a=sendrecv",
      "",
    ].join("\r\n");
    const toA = await this.rtpengine.answer(this.mediaId, this.dialog.remoteTag, this.dialog.localTag, localSdp);
    if (this.ended) throw new CallEnded();
    this.answered = true;
    this.answerSdp = toA;
    void this.ua.answerInvite(this.invite, this.dialog.localTag, toA).then((acked) => {
      if (!acked && !this.ended) {
        this.log.warn({ callId: this.dialog.callId }, "no ACK for our 200 OK: ending the call");
        void this.hangup();
      }
    });
  }

  private onRtp(data: Buffer): void {
    const packet = parseRtp(data);
    if (!packet) return;
    if (packet.payloadType === this.eventPayloadType) {
      const event = parseTelephoneEvent(packet.payload);
      // One event is many packets with the same timestamp: it counts once, at its first packet.
      if (!event || packet.timestamp === this.lastEventTimestamp) return;
      this.lastEventTimestamp = packet.timestamp;
      this.emit("digit", event.digit);
      return;
    }
    if (packet.payloadType === 0 || packet.payloadType === 8) this.onAudio?.(decodeG711(packet.payload, packet.payloadType));
  }

  /** Plays a WAV to the caller and resolves when it has been heard (rejects with CallEnded when the caller hangs up first). */
  async play(file: string, options: { interruptDigits?: string } = {}): Promise<string | undefined> {
    if (this.ended) throw new CallEnded();
    const ms = await this.rtpengine.play(this.mediaId, this.dialog.remoteTag, file);
    return this.waitFor(ms + PLAY_SLACK_MS, options.interruptDigits);
  }

  /** Loops a WAV to the caller until stopMedia() (music on hold). */
  async loop(file: string): Promise<void> {
    await this.rtpengine.play(this.mediaId, this.dialog.remoteTag, file, 1000);
  }

  async stopMedia(): Promise<void> {
    await this.rtpengine.stop(this.mediaId, this.dialog.remoteTag);
  }

  /**
   * Waits `ms`, or until one of `digits` is pressed (resolves with it), or the caller hangs up
   * (rejects with CallEnded).
   */
  waitFor(ms: number, digits = ""): Promise<string | undefined> {
    if (this.ended) return Promise.reject(new CallEnded());
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.off("digit", onDigit);
        this.off("ended", onEnded);
      };
      const onDigit = (digit: string) => {
        if (!digits.includes(digit)) return;
        done();
        resolve(digit);
      };
      const onEnded = () => {
        done();
        reject(new CallEnded());
      };
      const timer = setTimeout(() => {
        done();
        resolve(undefined);
      }, ms);
      this.on("digit", onDigit);
      this.on("ended", onEnded);
    });
  }

  /**
   * Connects the caller to another party (an agent) in place of our socket: rtpengine's party B is
   * answered again, same tags, with the agent's SDP; rtpengine then relays caller and agent to each
   * other (research §5.3 step 10). The caller keeps sending where it did (no re-INVITE needed).
   */
  async connectTo(sdp: string): Promise<void> {
    await this.stopMedia();
    this.onAudio = undefined;
    await this.rtpengine.answer(this.mediaId, this.dialog.remoteTag, this.dialog.localTag, sdp);
  }

  /** Refuses the call before it is answered. */
  reject(status: number, reason: string): void {
    if (this.answered || this.dialog.ended) return;
    this.dialog.endedByRemote();
    this.ua.reply(this.invite, status, reason, { tag: this.dialog.localTag });
    void this.release();
  }

  /** Ends the call from our side (BYE once answered) and frees its media. */
  async hangup(): Promise<void> {
    if (!this.answered) return this.reject(480, "Temporarily Unavailable");
    await this.dialog.bye();
    await this.release();
  }

  /** Frees rtpengine's call and our socket; the caller's BYE leads here too. */
  async release(): Promise<void> {
    this.onAudio = undefined;
    if (this.socket) {
      const socket = this.socket;
      this.socket = undefined;
      socket.close();
      await this.rtpengine.delete(this.mediaId);
    }
  }
}
