import { Client, type NgReply } from "rtpengine-client";
import type { Logger } from "../common/logger";

/** One ng command waits this long for rtpengine's answer. */
const NG_TIMEOUT_MS = 3_000;

export class RtpengineError extends Error {}

/**
 * rtpengine over its ng protocol (npm `rtpengine-client`, bencode over UDP): the media plane of
 * every call the media application answers. A call here is rtpengine's call: the caller's SDP is
 * offered as party A, our own RTP socket answers as a synthetic party B (research §5.3), and files
 * are played to the caller as A's "media". Every command has a deadline, so a missing rtpengine
 * fails the call instead of freezing it.
 */
export class Rtpengine {
  private readonly client: Client;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly log: Logger,
  ) {
    this.client = new Client({ localAddress: host === "127.0.0.1" ? "127.0.0.1" : undefined, timeout: NG_TIMEOUT_MS });
    this.client.on("error", (error: unknown) => this.log.warn({ err: error }, "rtpengine client error"));
  }

  private async command(name: "ping" | "offer" | "answer" | "delete" | "playMedia" | "stopMedia", options: Record<string, unknown> = {}): Promise<NgReply> {
    let reply: NgReply;
    try {
      reply = await this.client[name](this.port, this.host, options);
    } catch (error) {
      throw new RtpengineError(`rtpengine at ${this.host}:${this.port} did not answer ${name}: ${String(error)}`);
    }
    if (reply.result !== "ok" && reply.result !== "pong") throw new RtpengineError(`rtpengine refused ${name}: ${reply["error-reason"] ?? reply.result}`);
    return reply;
  }

  async ping(): Promise<boolean> {
    try {
      await this.command("ping");
      return true;
    } catch {
      return false;
    }
  }

  /** Party A's SDP offered; answers the SDP that party B (our RTP socket) is to be told. */
  async offer(callId: string, fromTag: string, sdp: string): Promise<string> {
    const reply = await this.command("offer", {
      "call-id": callId,
      "from-tag": fromTag,
      sdp,
      replace: ["origin", "session-connection"],
      "transport-protocol": "RTP/AVP",
      ICE: "remove",
      "rtcp-mux": ["demux"],
      codec: { strip: ["all"], except: ["PCMU", "PCMA", "telephone-event"] },
    });
    return String(reply.sdp);
  }

  /** Party B's SDP (ours) answered; returns the SDP for party A (the caller's 200 OK). */
  async answer(callId: string, fromTag: string, toTag: string, sdp: string): Promise<string> {
    const reply = await this.command("answer", { "call-id": callId, "from-tag": fromTag, "to-tag": toTag, sdp, replace: ["origin", "session-connection"], ICE: "remove" });
    return String(reply.sdp);
  }

  /** Plays a WAV to party `tag` (the caller); resolves with its length in ms. `repeat` loops it (music on hold). */
  async play(callId: string, tag: string, file: string, repeat?: number): Promise<number> {
    const reply = await this.command("playMedia", { "call-id": callId, "from-tag": tag, file, ...(repeat ? { "repeat-times": repeat } : {}) });
    return Number(reply.duration ?? 0);
  }

  async stop(callId: string, tag: string): Promise<void> {
    await this.command("stopMedia", { "call-id": callId, "from-tag": tag }).catch(() => undefined);
  }

  async delete(callId: string): Promise<void> {
    await this.command("delete", { "call-id": callId }).catch((error: unknown) => this.log.debug({ err: error, callId }, "rtpengine delete"));
  }

  close(): void {
    this.client.socket.close();
  }
}
