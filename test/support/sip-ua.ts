import { createHash, randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { waitFor } from "./wait";

/**
 * A raw SIP user agent over UDP for the engine's security tests: it builds every message itself
 * and computes the digest (RFC 2617, qop=auth) in TypeScript, so a test can capture what a phone
 * sends and send it again — altered, from another address — as an attacker would. It also answers
 * as a callee (UAS) and sends in-dialog requests (ACK, BYE) along the Record-Route set.
 */

export interface SipMessage {
  text: string;
  /** "INVITE" etc. for a request, undefined for a response. */
  method?: string;
  /** The Request-URI of a request. */
  uri?: string;
  status?: number;
  from: { address: string; port: number };
  header(name: string): string | undefined;
  headers(name: string): string[];
}

const rand = (n = 6) => randomBytes(n).toString("hex");
const md5 = (text: string) => createHash("md5").update(text).digest("hex");

export function parseSip(text: string, from: { address: string; port: number }): SipMessage {
  const [head] = text.split("\r\n\r\n");
  const [first, ...lines] = head.split("\r\n");
  const all = lines.map((line) => {
    const i = line.indexOf(":");
    return [line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()] as const;
  });
  const headers = (name: string) => all.filter(([n]) => n === name.toLowerCase()).map(([, v]) => v);
  const response = /^SIP\/2\.0 (\d{3})/.exec(first);
  const request = /^([A-Z]+) (\S+) SIP\/2\.0$/.exec(first);
  return {
    text,
    method: request?.[1],
    uri: request?.[2],
    status: response ? Number(response[1]) : undefined,
    from,
    headers,
    header: (name) => headers(name)[0],
  };
}

/** The Authorization / Proxy-Authorization value answering `challenge` (a WWW-/Proxy-Authenticate value). */
export function digestResponse(challenge: string, o: { method: string; uri: string; user: string; secret: string; nc?: number }): string {
  const param = (name: string) => new RegExp(`${name}="?([^",]+)"?`).exec(challenge)?.[1];
  const realm = param("realm")!;
  const nonce = param("nonce")!;
  const qop = param("qop")?.split(",").includes("auth") ? "auth" : undefined;
  const ha1 = md5(`${o.user}:${realm}:${o.secret}`);
  const ha2 = md5(`${o.method}:${o.uri}`);
  const nc = (o.nc ?? 1).toString(16).padStart(8, "0");
  const cnonce = rand(4);
  const response = qop ? md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
  return (
    `Digest username="${o.user}", realm="${realm}", nonce="${nonce}", uri="${o.uri}", response="${response}", algorithm=MD5` +
    (qop ? `, qop=auth, nc=${nc}, cnonce="${cnonce}"` : "")
  );
}

export interface RequestOptions {
  method: string;
  uri: string;
  callId?: string;
  cseq?: number;
  from: string;
  fromTag?: string;
  to: string;
  toTag?: string;
  contact?: string;
  route?: string[];
  branch?: string;
  extra?: string[];
  body?: string;
}

export class SipUa {
  private readonly received: SipMessage[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly socket: dgram.Socket,
    readonly host: string,
    readonly port: number,
    readonly proxyPort: number,
  ) {
    socket.on("message", (data, rinfo) => {
      this.received.push(parseSip(data.toString(), { address: rinfo.address, port: rinfo.port }));
      for (const wake of this.waiters) wake();
    });
  }

  /** A UA on `host` (127.0.0.1, or 127.0.0.2 for "another address") talking to the proxy on 127.0.0.1:`proxyPort`. */
  static async open(proxyPort: number, host = "127.0.0.1"): Promise<SipUa> {
    const socket = dgram.createSocket("udp4");
    await new Promise<void>((resolve, reject) => socket.once("error", reject).bind(0, host, () => resolve()));
    return new SipUa(socket, host, socket.address().port, proxyPort);
  }

  close(): void {
    this.socket.close();
  }

  /** Everything received so far. */
  messages(): SipMessage[] {
    return [...this.received];
  }

  send(text: string, to: { address: string; port: number } = { address: "127.0.0.1", port: this.proxyPort }): void {
    this.socket.send(text, to.port, to.address);
  }

  /** Waits for a received message matching `match` (already received ones count). */
  async next(what: string, match: (m: SipMessage) => boolean, ms = 5000): Promise<SipMessage> {
    return waitFor(what, () => this.received.find(match), ms, 10);
  }

  /** Resolves with a message matching `match` if one comes within `ms`, else undefined: for "nothing arrived". */
  async within(match: (m: SipMessage) => boolean, ms: number): Promise<SipMessage | undefined> {
    const found = () => this.received.find(match);
    if (found()) return found();
    return new Promise((resolve) => {
      const wake = () => {
        if (found()) done(found());
      };
      const timer = setTimeout(() => done(undefined), ms);
      const done = (m: SipMessage | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(m);
      };
      this.waiters.add(wake);
    });
  }

  build(o: RequestOptions): string {
    const body = o.body ?? "";
    return [
      `${o.method} ${o.uri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${this.host}:${this.port};branch=${o.branch ?? `z9hG4bK${rand()}`};rport`,
      "Max-Forwards: 70",
      ...(o.route ?? []).map((r) => `Route: ${r}`),
      `From: ${o.from};tag=${o.fromTag ?? rand(4)}`,
      `To: ${o.to}${o.toTag ? `;tag=${o.toTag}` : ""}`,
      `Call-ID: ${o.callId ?? rand(8)}`,
      `CSeq: ${o.cseq ?? 1} ${o.method}`,
      // a dialog needs the caller's Contact
      ...(o.contact ? [`Contact: ${o.contact}`] : o.method === "INVITE" ? [`Contact: <sip:${this.host}:${this.port}>`] : []),
      ...(o.extra ?? []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      "",
      body,
    ].join("\r\n");
  }

  /**
   * Sends a request and waits for a final response to it (matched by Call-ID and CSeq) that had not
   * arrived before: sending the same request again (a retransmission) waits for the answer to it.
   */
  async request(text: string, ms = 5000): Promise<SipMessage> {
    const sent = parseSip(text, { address: this.host, port: this.port });
    const isFinal = (m: SipMessage) => (m.status ?? 0) >= 200 && sameTransaction(m, sent);
    const before = this.received.filter(isFinal).length;
    this.send(text);
    return this.next(`a final response to ${sent.header("cseq")}`, (m) => isFinal(m) && this.received.filter(isFinal).indexOf(m) >= before, ms);
  }

  /**
   * An authenticated request as a phone sends it: first without credentials, then with the digest
   * answering the challenge (same Call-ID and tags, CSeq + 1). Answers both messages sent and the final response.
   */
  async authenticated(o: RequestOptions & { user: string; secret: string }): Promise<{ challenge: SipMessage; sent: string; response: SipMessage }> {
    const callId = o.callId ?? rand(8);
    const fromTag = o.fromTag ?? rand(4);
    const cseq = o.cseq ?? 1;
    const first = this.build({ ...o, callId, fromTag, cseq });
    const challenge = await this.request(first);
    if (challenge.status !== 401 && challenge.status !== 407) return { challenge, sent: first, response: challenge };
    if (o.method === "INVITE") this.ackFor(first, challenge);
    const header = challenge.status === 401 ? "WWW-Authenticate" : "Proxy-Authenticate";
    const credentials = digestResponse(challenge.header(header)!, { method: o.method, uri: o.uri, user: o.user, secret: o.secret });
    const name = challenge.status === 401 ? "Authorization" : "Proxy-Authorization";
    const sent = this.build({ ...o, callId, fromTag, cseq: cseq + 1, extra: [...(o.extra ?? []), `${name}: ${credentials}`] });
    const response = await this.request(sent);
    if (o.method === "INVITE" && response.status! >= 300) this.ackFor(sent, response);
    return { challenge, sent, response };
  }

  /** The ACK of a non-2xx final response to an INVITE (same branch, the response's To). */
  ackFor(invite: string, response: SipMessage): void {
    const req = parseSip(invite, { address: this.host, port: this.port });
    const cseq = req.header("cseq")!.split(" ")[0];
    this.send(
      [
        `ACK ${req.uri} SIP/2.0`,
        `Via: ${req.header("via")}`,
        "Max-Forwards: 70",
        `From: ${req.header("from")}`,
        `To: ${response.header("to")}`,
        `Call-ID: ${req.header("call-id")}`,
        `CSeq: ${cseq} ACK`,
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
    );
  }

  /**
   * A request inside the dialog that `invite` (as sent) and its 2xx `ok` made: to the callee's
   * Contact, along the Record-Route set (reversed, as the caller keeps it), with both tags.
   */
  inDialog(invite: string, ok: SipMessage, method: "ACK" | "BYE", cseq: number): string {
    const req = parseSip(invite, { address: this.host, port: this.port });
    const target = /<([^>]+)>/.exec(ok.header("contact")!)![1];
    const routes = ok.headers("record-route").flatMap((h) => h.match(/<[^>]+>/g) ?? []).reverse();
    const fromTag = /;tag=([^;>\s]+)/.exec(req.header("from")!)![1];
    const toTag = /;tag=([^;>\s]+)/.exec(ok.header("to")!)![1];
    return this.build({
      method,
      uri: target,
      route: routes,
      callId: req.header("call-id"),
      cseq,
      from: req.header("from")!.replace(/;tag=[^;>\s]+/, ""),
      fromTag,
      to: ok.header("to")!.replace(/;tag=[^;>\s]+/, ""),
      toTag,
    });
  }

  /** A response to a received request (the callee's side), sent back to where the request came from. */
  reply(req: SipMessage, status: number, reason: string, o: { toTag?: string; contact?: string; extra?: string[] } = {}): void {
    const to = req.header("to")!;
    this.send(
      [
        `SIP/2.0 ${status} ${reason}`,
        ...req.headers("via").map((v) => `Via: ${v}`),
        ...req.headers("record-route").map((r) => `Record-Route: ${r}`),
        `From: ${req.header("from")}`,
        `To: ${/;tag=/.test(to) || !o.toTag ? to : `${to};tag=${o.toTag}`}`,
        `Call-ID: ${req.header("call-id")}`,
        `CSeq: ${req.header("cseq")}`,
        ...(o.contact ? [`Contact: ${o.contact}`] : []),
        ...(o.extra ?? []),
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
      req.from,
    );
  }
}

export function sameTransaction(a: SipMessage, b: SipMessage): boolean {
  return a.header("call-id") === b.header("call-id") && a.header("cseq") === b.header("cseq");
}

/**
 * A REGISTER with digest authentication from `ua`, with `contact` (default: the UA's own address).
 * Answers the final response and the authenticated REGISTER as sent (what an attacker captures).
 */
export async function registerUa(ua: SipUa, number: string, domain: string, secret: string, o: { contact?: string; expires?: number } = {}) {
  const contact = o.contact ?? `<sip:${number}@${ua.host}:${ua.port}>`;
  const result = await ua.authenticated({
    method: "REGISTER",
    uri: `sip:${domain}`,
    from: `<sip:${number}@${domain}>`,
    to: `<sip:${number}@${domain}>`,
    contact,
    extra: [`Expires: ${o.expires ?? 600}`, "User-Agent: pbx-test-ua"],
    user: number,
    secret,
  });
  return { status: result.response.status!, sent: result.sent, response: result.response };
}
