import { randomBytes } from "node:crypto";
import * as sip from "sip";
import type { Logger } from "../common/logger";

export type { SipMessage, Remote } from "sip";

/** RFC 3261 T1: a 2xx to an INVITE is sent again at T1, 2·T1, … (at most T2) until its ACK comes. */
const T1_MS = 500;
const T2_MS = 4_000;
const ACK_WAIT_MS = 32_000;
/** An in-dialog request (BYE, NOTIFY) gives up after this long without a final answer. */
const REQUEST_TIMEOUT_MS = 8_000;

/** See the comment at sip.create: the name our Via carries instead of our IP. */
export const VIA_HOST = "localhost";

export const newTag = (): string => randomBytes(6).toString("hex");

/** The first value of a header the stack left as text (unknown headers), or undefined. */
export function header(message: sip.SipMessage, name: string): string | undefined {
  const value = message.headers[name.toLowerCase()];
  if (value === undefined || value === null) return undefined;
  return Array.isArray(value) ? String(value[0]) : String(value);
}

export interface SipUaOptions {
  host: string;
  port: number;
  log: Logger;
  onRequest: (request: sip.SipMessage, remote: sip.Remote) => void;
}

/**
 * The media application's SIP side: npm `sip`'s transaction and UDP transport layers, with the
 * dialog handling the media application needs (a UAS that answers, a UAC that sends BYE and NOTIFY).
 */
export class SipUa {
  private readonly stack: sip.SipStack;
  readonly contact: string;
  private readonly pendingAcks = new Map<string, () => void>();

  constructor(private readonly options: SipUaOptions) {
    this.contact = `sip:media@${options.host}:${options.port}`;
    this.stack = sip.create(
      // npm sip treats a Route or Request-URI whose host equals its own Via host as addressed to
      // itself (a flow token): with Kamailio on the same IP as us, the Via must name us otherwise.
      // Replies still come back to our address (rport/received), and our Contact carries the IP.
      { address: options.host, port: options.port, publicAddress: VIA_HOST, tcp: false, logger: { error: (e) => options.log.warn({ err: e }, "SIP stack error") } },
      (request, remote) => {
        if (request.method === "ACK") {
          const key = `${request.headers["call-id"]}:${request.headers.cseq?.seq}`;
          this.pendingAcks.get(key)?.();
          return;
        }
        try {
          options.onRequest(request, remote);
        } catch (error) {
          options.log.error({ err: error, method: request.method }, "SIP request handler failed");
          this.reply(request, 500, "Server Internal Error");
        }
      },
    );
  }

  /** Answers a request; a final answer without a To tag gets `tag` (the dialog's, when there is one). */
  reply(request: sip.SipMessage, status: number, reason: string, extra: { headers?: Record<string, unknown>; content?: string; tag?: string } = {}): void {
    const response = sip.makeResponse(request, status, reason, { headers: extra.headers as sip.SipHeaders, content: extra.content });
    if (status >= 200 && request.headers.to && !request.headers.to.params.tag) {
      response.headers.to = { ...request.headers.to, params: { ...request.headers.to.params, tag: extra.tag ?? newTag() } };
    }
    this.stack.send(response);
  }

  /**
   * Answers an INVITE with 200 OK (our tag, our Contact, its Record-Route, the SDP) and sends it again
   * until the ACK arrives; resolves true on the ACK, false when none came in time.
   */
  answerInvite(invite: sip.SipMessage, localTag: string, sdp: string): Promise<boolean> {
    const response = sip.makeResponse(invite, 200, "OK", {
      headers: {
        to: { ...invite.headers.to!, params: { ...invite.headers.to!.params, tag: localTag } },
        contact: [{ uri: this.contact, params: {} }],
        ...(invite.headers["record-route"] ? { "record-route": invite.headers["record-route"] } : {}),
        "content-type": "application/sdp",
      },
      content: sdp,
    });
    const key = `${invite.headers["call-id"]}:${invite.headers.cseq?.seq}`;
    return new Promise<boolean>((resolve) => {
      let wait = T1_MS;
      let timer: NodeJS.Timeout;
      const resend = () => {
        this.stack.send(response);
        timer = setTimeout(resend, wait);
        wait = Math.min(wait * 2, T2_MS);
      };
      const giveUp = setTimeout(() => finish(false), ACK_WAIT_MS);
      const finish = (acked: boolean) => {
        clearTimeout(timer);
        clearTimeout(giveUp);
        this.pendingAcks.delete(key);
        resolve(acked);
      };
      this.pendingAcks.set(key, () => finish(true));
      resend();
    });
  }

  /** Sends a request (a new one or inside a dialog); resolves with its final response (408 when none came). */
  request(message: sip.SipMessage): Promise<sip.SipMessage> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ status: 408, reason: "Request Timeout", headers: message.headers }), REQUEST_TIMEOUT_MS);
      this.stack.send(message, (response) => {
        if ((response.status ?? 0) < 200) return;
        clearTimeout(timer);
        resolve(response);
      });
    });
  }

  /**
   * Sends an INVITE we originate (an agent's leg): `final` resolves with its final response (after
   * the ACK of a 2xx is sent), `cancel()` sends CANCEL while it has none.
   */
  invite(message: sip.SipMessage): { final: Promise<sip.SipMessage>; cancel(): void } {
    let settled = false;
    let cancelled = false;
    const final = new Promise<sip.SipMessage>((resolve) => {
      this.stack.send(message, (response) => {
        if ((response.status ?? 0) < 200 || settled) {
          // A second 2xx (a forked INVITE answered twice): acknowledge and end that extra dialog.
          if (settled && (response.status ?? 0) < 300 && (response.status ?? 0) >= 200) {
            this.ackFor(message, response);
            void new OutboundDialog(this, message, response).bye();
          }
          return;
        }
        settled = true;
        if ((response.status ?? 0) < 300) this.ackFor(message, response);
        resolve(response);
      });
    });
    const cancel = () => {
      if (settled || cancelled) return;
      cancelled = true;
      this.stack.send({
        method: "CANCEL",
        uri: message.uri,
        headers: {
          via: message.headers.via,
          to: message.headers.to,
          from: message.headers.from,
          "call-id": message.headers["call-id"],
          cseq: { seq: message.headers.cseq!.seq, method: "CANCEL" },
          ...(message.headers.route ? { route: message.headers.route } : {}),
          "max-forwards": 70,
        },
      });
    };
    return { final, cancel };
  }

  /** The ACK of a 2xx to our INVITE: a request of its own, along the dialog's route set. */
  ackFor(invite: sip.SipMessage, response: sip.SipMessage): void {
    const dialog = new OutboundDialog(this, invite, response);
    this.stack.send({
      method: "ACK",
      uri: dialog.remoteTarget,
      headers: {
        via: [],
        to: response.headers.to,
        from: invite.headers.from,
        "call-id": invite.headers["call-id"],
        cseq: { seq: invite.headers.cseq!.seq, method: "ACK" },
        ...(dialog.routes.length ? { route: dialog.routes } : {}),
        "max-forwards": 70,
        "content-length": 0,
      },
    });
  }

  /** The Via list of a request we originate: empty, the stack adds its own. */
  via(): sip.Via[] {
    return [];
  }

  close(): void {
    for (const finish of this.pendingAcks.values()) finish();
    this.stack.destroy();
  }
}

/**
 * One call answered by the media application (we are the UAS): what is needed to end it from our side
 * (BYE along the route set it was set up with) and to tell that the caller ended it.
 */
export class InboundDialog {
  readonly callId: string;
  readonly localTag = newTag();
  readonly remoteTag: string;
  private cseq = 1;
  ended = false;
  private readonly endListeners: Array<(by: "remote" | "local") => void> = [];

  constructor(
    private readonly ua: SipUa,
    readonly invite: sip.SipMessage,
  ) {
    this.callId = String(invite.headers["call-id"]);
    this.remoteTag = String(invite.headers.from?.params.tag ?? "");
  }

  onEnd(listener: (by: "remote" | "local") => void): void {
    this.endListeners.push(listener);
  }

  /** The caller's BYE (or CANCEL before the answer): the dialog is over. */
  endedByRemote(): void {
    if (this.ended) return;
    this.ended = true;
    for (const l of this.endListeners) l("remote");
  }

  async bye(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    for (const l of this.endListeners) l("local");
    const contact = Array.isArray(this.invite.headers.contact) ? this.invite.headers.contact[0]?.uri : undefined;
    const routes = this.invite.headers["record-route"];
    await this.ua.request({
      method: "BYE",
      uri: contact ?? String(this.invite.headers.from!.uri),
      headers: {
        via: this.ua.via(),
        to: this.invite.headers.from,
        from: { ...this.invite.headers.to!, params: { ...this.invite.headers.to!.params, tag: this.localTag } },
        "call-id": this.callId,
        cseq: { seq: this.cseq++, method: "BYE" },
        ...(routes && routes.length ? { route: routes } : {}),
        "max-forwards": 70,
        "content-length": 0,
      },
    });
  }
}

/** A call leg we set up (an agent's): enough to end it with BYE. */
export class OutboundDialog {
  readonly callId: string;
  readonly remoteTarget: string;
  /** The route set: the 2xx's Record-Route, reversed (RFC 3261 §12.1.2). */
  readonly routes: sip.NameAddr[];
  ended = false;

  constructor(
    private readonly ua: SipUa,
    private readonly invite: sip.SipMessage,
    private readonly response: sip.SipMessage,
  ) {
    this.callId = String(invite.headers["call-id"]);
    const contact = Array.isArray(response.headers.contact) ? response.headers.contact[0]?.uri : undefined;
    this.remoteTarget = contact ?? String(invite.uri);
    this.routes = [...(response.headers["record-route"] ?? [])].reverse();
  }

  async bye(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.ua.request({
      method: "BYE",
      uri: this.remoteTarget,
      headers: {
        via: [],
        to: this.response.headers.to,
        from: this.invite.headers.from,
        "call-id": this.callId,
        cseq: { seq: this.invite.headers.cseq!.seq + 1, method: "BYE" },
        ...(this.routes.length ? { route: this.routes } : {}),
        "max-forwards": 70,
        "content-length": 0,
      },
    });
  }
}
