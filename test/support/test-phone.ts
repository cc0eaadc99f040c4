import { createHash, randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { EventEmitter } from "node:events";
import * as sip from "sip";
import * as sdpTransform from "sdp-transform";
import { buildRtp, decodeG711, encodeUlaw, parseRtp, telephoneEventPayload } from "../../src/media/rtp";
import { freeUdpPort } from "./sip";
import { waitFor } from "./wait";

/**
 * A small SIP/RTP phone of our own for the media tests (baresip cannot both play a chosen tone and
 * send digits on cue): it calls (through Kamailio with digest authentication, or straight to the
 * media application), sends a sine tone as PCMU every 20 ms, records what it hears, sends RFC 4733
 * digits, hangs up or is hung up on; it also registers and collects the NOTIFYs it receives.
 */

const md5 = (s: string) => createHash("md5").update(s).digest("hex");

export interface PhoneOptions {
  /** Where requests go: Kamailio (or the media application for a direct call). */
  proxy: { host: string; port: number };
  user: string;
  domain: string;
  password?: string;
  displayName?: string;
  /**
   * Behave as a phone behind NAT: claim this (private) address in Contact and SDP while sending from
   * 127.0.0.1, so only a proxy that uses the source address (nathelper) and a relay that latches onto
   * where the media really comes from (rtpengine) can reach it.
   */
  natAddress?: string;
  /** The loopback address to use instead of 127.0.0.1 (SIP and RTP): a carrier plays a phone there. */
  address?: string;
}

export class TestCall extends EventEmitter {
  status = 0;
  /** Everything heard, decoded (8 kHz samples), in arrival order. */
  heard: number[] = [];
  ended = false;
  endedBy: "us" | "them" | undefined;
  toneHz = 0;
  private seq = Math.floor(Math.random() * 60000);
  private ts = Math.floor(Math.random() * 1e9);
  private readonly ssrc = randomBytes(4).readUInt32BE(0);
  private sender: NodeJS.Timeout | undefined;
  private remote: { host: string; port: number } | undefined;
  private phase = 0;
  dialog: { callId: string; localTag: string; remoteTag: string; remoteTarget: string; routes: sip.NameAddr[]; cseq: number; to: sip.NameAddr; from: sip.NameAddr } | undefined;
  final: sip.SipMessage | undefined;

  constructor(
    readonly phone: TestPhone,
    readonly rtp: dgram.Socket,
  ) {
    super();
    rtp.on("message", (data) => {
      const packet = parseRtp(data);
      if (packet && (packet.payloadType === 0 || packet.payloadType === 8)) for (const s of decodeG711(packet.payload, packet.payloadType)) this.heard.push(s);
    });
  }

  /** Starts sending `hz` (0: silence) from now on. */
  sendTone(hz: number): void {
    this.toneHz = hz;
  }

  startMedia(sdp: string): void {
    const parsed = sdpTransform.parse(sdp);
    const audio = parsed.media.find((m) => m.type === "audio")!;
    this.remote = { host: audio.connection?.ip ?? parsed.connection!.ip, port: audio.port };
    // (again after a re-INVITE: the new remote address, one sender)
    if (this.sender) clearInterval(this.sender);
    this.sender = setInterval(() => this.sendFrame(), 20);
  }

  private sendFrame(): void {
    if (!this.remote || this.ended) return;
    const payload = Buffer.alloc(160);
    for (let i = 0; i < 160; i++) {
      const sample = this.toneHz ? 8000 * Math.sin(this.phase) : 0;
      this.phase += (2 * Math.PI * this.toneHz) / 8000;
      payload[i] = encodeUlaw(sample);
    }
    this.phase %= 2 * Math.PI;
    this.rtp.send(buildRtp({ payloadType: 0, sequence: this.seq++, timestamp: (this.ts += 160), ssrc: this.ssrc, payload }), this.remote.port, this.remote.host);
  }

  /** Sends an RFC 4733 digit (three packets, the last one marked end, as phones do). */
  async digit(d: string): Promise<void> {
    if (!this.remote) throw new Error("no media yet");
    const stamp = (this.ts += 160);
    for (let i = 0; i < 3; i++) {
      this.rtp.send(buildRtp({ payloadType: 101, marker: i === 0, sequence: this.seq++, timestamp: stamp, ssrc: this.ssrc, payload: telephoneEventPayload(d, i === 2, 800 + i * 160) }), this.remote.port, this.remote.host);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async hangup(): Promise<void> {
    if (this.ended || !this.dialog) return;
    this.markEnded("us");
    await this.phone.inDialog(this, "BYE");
  }

  markEnded(by: "us" | "them"): void {
    if (this.ended) return;
    this.ended = true;
    this.endedBy = by;
    clearInterval(this.sender);
    this.emit("ended");
  }

  /** Waits until the other side hangs up (or fails after ms). */
  async waitEnded(ms = 20_000): Promise<void> {
    await waitFor("the call to end", () => this.ended, ms);
  }

  close(): void {
    clearInterval(this.sender);
    this.rtp.close();
  }
}

export class TestPhone {
  private stack!: sip.SipStack;
  port = 0;
  readonly calls = new Map<string, TestCall>();
  /** What an incoming INVITE gets: a refusal status, or answered (200 with our tone). */
  incoming: { status: number } | { answer: true; toneHz: number; afterMs?: number } = { status: 486 };
  /** Incoming INVITEs still ringing: how to answer them (a CANCEL answers 487). */
  private readonly ringing = new Map<string, (status: number, reason: string) => sip.SipMessage>();
  /** INVITEs received (answered or not), by their Call-ID. */
  readonly invites: sip.SipMessage[] = [];
  /** Bodies of the NOTIFYs received, with their Event header. */
  readonly notifies: Array<{ event: string; body: string; subscriptionState?: string }> = [];

  private constructor(readonly options: PhoneOptions) {}

  static async start(options: PhoneOptions): Promise<TestPhone> {
    const phone = new TestPhone(options);
    phone.port = await freeUdpPort();
    phone.stack = sip.create({ address: options.address ?? "127.0.0.1", port: phone.port, publicAddress: "localhost", tcp: false }, (rq) => phone.onRequest(rq));
    return phone;
  }

  private get contact(): string {
    return `sip:${this.options.user}@${this.options.natAddress ?? this.options.address ?? "127.0.0.1"}:${this.port}`;
  }

  private onRequest(rq: sip.SipMessage): void {
    if (rq.method === "ACK") return;
    if (rq.method === "BYE") {
      this.stack.send(sip.makeResponse(rq, 200, "OK"));
      this.calls.get(String(rq.headers["call-id"]))?.markEnded("them");
      return;
    }
    if (rq.method === "INVITE" && !rq.headers.to?.params.tag) return void this.onInvite(rq);
    if (rq.method === "CANCEL") {
      this.stack.send(sip.makeResponse(rq, 200, "OK"));
      const callId = String(rq.headers["call-id"]);
      const ringing = this.ringing.get(callId);
      if (ringing) {
        this.ringing.delete(callId);
        this.stack.send(ringing(487, "Request Terminated"));
      }
      return;
    }
    if (rq.method === "NOTIFY") {
      this.notifies.push({ event: String(rq.headers.event ?? ""), body: rq.content ?? "", subscriptionState: rq.headers["subscription-state"] as string | undefined });
      this.stack.send(sip.makeResponse(rq, 200, "OK"));
      return;
    }
    this.stack.send(sip.makeResponse(rq, 405, "Method Not Allowed"));
  }

  private async onInvite(rq: sip.SipMessage): Promise<void> {
    this.invites.push(rq);
    const incoming = this.incoming;
    const tag = randomBytes(4).toString("hex");
    const withTag = (status: number, reason: string, extra: Partial<sip.SipHeaders> = {}, content?: string) => {
      const rs = sip.makeResponse(rq, status, reason, { headers: extra as sip.SipHeaders, content });
      rs.headers.to = { ...rq.headers.to!, params: { ...rq.headers.to!.params, tag } };
      return rs;
    };
    if ("status" in incoming) return this.stack.send(withTag(incoming.status, "Busy Here"));
    this.stack.send(withTag(180, "Ringing"));
    const inviteCallId = String(rq.headers["call-id"]);
    this.ringing.set(inviteCallId, (status, reason) => withTag(status, reason));
    if (incoming.afterMs) await new Promise((r) => setTimeout(r, incoming.afterMs));
    // Cancelled while ringing: answered 487 already.
    if (!this.ringing.delete(inviteCallId)) return;
    const rtpPort = await freeUdpPort();
    const rtp = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => rtp.bind(rtpPort, this.options.address ?? "127.0.0.1", resolve));
    const call = new TestCall(this, rtp);
    call.sendTone(incoming.toneHz);
    const callId = String(rq.headers["call-id"]);
    this.calls.set(callId, call);
    call.dialog = {
      callId,
      localTag: tag,
      remoteTag: String(rq.headers.from!.params.tag),
      remoteTarget: Array.isArray(rq.headers.contact) ? rq.headers.contact[0].uri : String(rq.headers.from!.uri),
      routes: [...(rq.headers["record-route"] ?? [])],
      cseq: 100,
      to: rq.headers.from!,
      from: { ...rq.headers.to!, params: { ...rq.headers.to!.params, tag } },
    };
    call.status = 200;
    this.stack.send(withTag(200, "OK", { contact: [{ uri: this.contact, params: {} }], "record-route": rq.headers["record-route"] ?? [], "content-type": "application/sdp" }, this.sdp(rtpPort)));
    call.startMedia(rq.content!);
    this.emitIncoming(call);
  }

  private readonly incomingWaiters: Array<(call: TestCall) => void> = [];
  private readonly answered: TestCall[] = [];

  private emitIncoming(call: TestCall): void {
    this.answered.push(call);
    this.incomingWaiters.splice(0).forEach((w) => w(call));
  }

  /** The next call this phone answers (or one it already answered and nobody took yet). */
  nextAnswered(ms = 30_000): Promise<TestCall> {
    const ready = this.answered.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.options.user} answered no call`)), ms);
      this.incomingWaiters.push((call) => {
        clearTimeout(timer);
        this.answered.splice(this.answered.indexOf(call), 1);
        resolve(call);
      });
    });
  }

  private sdp(rtpPort: number, version = 1): string {
    return [
      "v=0", `o=test 1 ${version} IN IP4 ${this.options.natAddress ?? this.options.address ?? "127.0.0.1"}`, "s=test", `c=IN IP4 ${this.options.natAddress ?? this.options.address ?? "127.0.0.1"}`, "t=0 0",
      `m=audio ${rtpPort} RTP/AVP 0 101`, "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv", "",
    ].join("\r\n");
  }

  /** SUBSCRIBE (with digest authentication) for `event` of `number`'s mailbox or dialogs; resolves with the final status. */
  async subscribe(number: string, event: string, expires = 600): Promise<number> {
    const callId = randomBytes(8).toString("hex");
    const tag = randomBytes(4).toString("hex");
    let cseq = 1;
    const to = `sip:${number}@${this.options.domain}`;
    const rs = await this.send((auth) => ({
      method: "SUBSCRIBE",
      uri: to,
      headers: { ...this.baseHeaders("SUBSCRIBE", callId, tag, cseq++, to), route: this.route, event, expires, accept: "application/simple-message-summary", ...(auth ?? {}) } as sip.SipHeaders,
    }));
    return rs.status!;
  }

  /** Sends a request out of dialog, answering one digest challenge; resolves with the final response. */
  private send(build: (auth?: Record<string, unknown>) => sip.SipMessage): Promise<sip.SipMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no final response")), 30_000);
      const attempt = (auth?: Record<string, unknown>, tried = false) => {
        const request = build(auth);
        this.stack.send(request, (rs) => {
          if ((rs.status ?? 0) < 200) return this.emitProvisional(request, rs);
          if ((rs.status === 401 || rs.status === 407) && !tried && this.options.password) {
            const name = rs.status === 401 ? "www-authenticate" : "proxy-authenticate";
            const params = (rs.headers[name] as Array<Record<string, string>>)[0];
            const realm = unq(params.realm);
            const nonce = unq(params.nonce);
            const uri = request.uri!;
            const ha1 = md5(`${this.options.user}:${realm}:${this.options.password}`);
            const ha2 = md5(`${request.method}:${uri}`);
            const qop = params.qop ? "auth" : undefined;
            const cnonce = randomBytes(4).toString("hex");
            const response = qop ? md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
            const credentials = {
              scheme: "Digest", username: `"${this.options.user}"`, realm: `"${realm}"`, nonce: `"${nonce}"`, uri: `"${uri}"`, response: `"${response}"`, algorithm: "MD5",
              ...(qop ? { qop: "auth", nc: "00000001", cnonce: `"${cnonce}"` } : {}),
            };
            return attempt({ [rs.status === 401 ? "authorization" : "proxy-authorization"]: [credentials] } as never, true);
          }
          clearTimeout(timer);
          resolve(rs);
        });
      };
      attempt();
    });
  }

  private emitProvisional(_request: sip.SipMessage, _rs: sip.SipMessage): void {}

  private baseHeaders(method: string, callId: string, tag: string, cseq: number, to: string) {
    return {
      via: [],
      to: { uri: to, params: {} },
      from: { name: this.options.displayName ? `"${this.options.displayName}"` : undefined, uri: `sip:${this.options.user}@${this.options.domain}`, params: { tag } },
      "call-id": callId,
      cseq: { seq: cseq, method },
      contact: [{ uri: this.contact, params: {} }],
      "max-forwards": 70,
    };
  }

  private get route(): sip.NameAddr[] {
    return [{ uri: `sip:${this.options.proxy.host}:${this.options.proxy.port};lr`, params: {} }];
  }

  async register(expires = 600): Promise<number> {
    const callId = randomBytes(8).toString("hex");
    const tag = randomBytes(4).toString("hex");
    let cseq = 1;
    const rs = await this.send((auth) => ({
      method: "REGISTER",
      uri: `sip:${this.options.domain}`,
      headers: { ...this.baseHeaders("REGISTER", callId, tag, cseq++, `sip:${this.options.user}@${this.options.domain}`), expires, route: this.route, ...(auth ?? {}) } as sip.SipHeaders,
    }));
    return rs.status!;
  }

  /** Calls `number` (in the phone's domain): resolves once the call has a final answer. */
  async call(number: string, options: { headers?: Record<string, string>; toneHz?: number } = {}): Promise<TestCall> {
    const rtpPort = await freeUdpPort();
    const rtp = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => rtp.bind(rtpPort, this.options.address ?? "127.0.0.1", resolve));
    const call = new TestCall(this, rtp);
    call.sendTone(options.toneHz ?? 0);
    const callId = randomBytes(8).toString("hex");
    const tag = randomBytes(4).toString("hex");
    this.calls.set(callId, call);
    const sdp = this.sdp(rtpPort);
    let cseq = 1;
    const to = `sip:${number}@${this.options.domain}`;
    const rs = await this.send((auth) => ({
      method: "INVITE",
      uri: to,
      headers: {
        ...this.baseHeaders("INVITE", callId, tag, cseq++, to),
        route: this.route,
        "content-type": "application/sdp",
        ...(options.headers ?? {}),
        ...(auth ?? {}),
      } as sip.SipHeaders,
      content: sdp,
    }));
    call.status = rs.status!;
    call.final = rs;
    if (rs.status! >= 200 && rs.status! < 300) {
      const contact = Array.isArray(rs.headers.contact) ? rs.headers.contact[0].uri : to;
      call.dialog = {
        callId,
        localTag: tag,
        remoteTag: String(rs.headers.to!.params.tag),
        remoteTarget: contact,
        routes: [...(rs.headers["record-route"] ?? [])].reverse(),
        cseq,
        to: rs.headers.to!,
        from: rs.headers.from!,
      };
      this.ack(call, rs.headers.cseq!.seq);
      call.startMedia(rs.content!);
    } else {
      call.markEnded("them");
    }
    return call;
  }

  private ack(call: TestCall, seq: number): void {
    const d = call.dialog!;
    this.stack.send({
      method: "ACK",
      uri: d.remoteTarget,
      headers: { via: [], to: d.to, from: d.from, "call-id": d.callId, cseq: { seq, method: "ACK" }, "max-forwards": 70, ...(d.routes.length ? { route: d.routes } : {}) } as sip.SipHeaders,
    });
  }

  /** A request inside the call's dialog (BYE). */
  async inDialog(call: TestCall, method: string): Promise<number> {
    const d = call.dialog!;
    const rs = await new Promise<sip.SipMessage>((resolve) => {
      this.stack.send(
        {
          method,
          uri: d.remoteTarget,
          headers: { via: [], to: d.to, from: d.from, "call-id": d.callId, cseq: { seq: ++d.cseq, method }, "max-forwards": 70, ...(d.routes.length ? { route: d.routes } : {}) } as sip.SipHeaders,
        },
        (r) => (r.status ?? 0) >= 200 && resolve(r),
      );
    });
    return rs.status!;
  }

  /**
   * A re-INVITE offering our media again (a new SDP version, still sendrecv): resolves with its final
   * status; a 2xx is acknowledged and its answer's address taken.
   */
  async reinvite(call: TestCall): Promise<number> {
    const d = call.dialog!;
    const seq = ++d.cseq;
    const rs = await new Promise<sip.SipMessage>((resolve) => {
      this.stack.send(
        {
          method: "INVITE",
          uri: d.remoteTarget,
          headers: {
            via: [], to: d.to, from: d.from, "call-id": d.callId, cseq: { seq, method: "INVITE" }, "max-forwards": 70,
            contact: [{ uri: this.contact, params: {} }], "content-type": "application/sdp", ...(d.routes.length ? { route: d.routes } : {}),
          } as sip.SipHeaders,
          content: this.sdp(call.rtp.address().port, 2 + seq),
        },
        (r) => (r.status ?? 0) >= 200 && resolve(r),
      );
    });
    if (rs.status! < 300) {
      this.ack(call, seq);
      if (rs.content) call.startMedia(rs.content);
    }
    return rs.status!;
  }

  async stop(): Promise<void> {
    for (const call of this.calls.values()) {
      await call.hangup().catch(() => undefined);
      call.close();
    }
    this.stack.destroy();
  }
}

const unq = (s: string | undefined) => (s ?? "").replace(/^"|"$/g, "");
