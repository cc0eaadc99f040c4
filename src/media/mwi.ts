import type { Logger } from "../common/logger";
import type { PubSubEngine } from "../events/pubsub";
import type { VoicemailSummary } from "../modules/voicemail/voicemail.service";
import type { VoicemailEventPayload } from "../subscriptions/events";
import { allTenantsTopic } from "../subscriptions/topics";
import type { MediaEnv } from "./media-env";
import { header, newTag, type SipMessage } from "./sip-ua";

/** A subscription lives at most this long without a refresh (RFC 6665: the notifier may shorten it). */
const MAX_EXPIRES = 3600;
const DEFAULT_EXPIRES = 3600;

/** The RFC 3842 body: `Messages-Waiting` and `Voice-Message: new/old (urgent new/urgent old)`. */
export function messageSummary(summary: VoicemailSummary, account: string): string {
  const heard = summary.total - summary.unheard;
  return [`Messages-Waiting: ${summary.unheard > 0 ? "yes" : "no"}`, `Message-Account: ${account}`, `Voice-Message: ${summary.unheard}/${heard} (0/0)`, ""].join("\r\n");
}

interface Subscription {
  callId: string;
  /** Our tag (the To tag of our 200), the phone's tag, its contact and the route set back to it. */
  localTag: string;
  remoteTag: string;
  remoteTarget: string;
  routes: NonNullable<SipMessage["headers"]["record-route"]>;
  from: NonNullable<SipMessage["headers"]["to"]>;
  to: NonNullable<SipMessage["headers"]["from"]>;
  cseq: number;
  domain: string;
  number: string;
  expiresAt: number;
  timer: NodeJS.Timeout;
}

/**
 * Message waiting (contract §13): every change of an extension's unheard count (the voicemail events
 * of every instance, through pub/sub) becomes a NOTIFY message-summary to its registered phones,
 * sent through the engine (which forks it to every contact of the extension), and an in-dialog NOTIFY
 * to each subscription this instance holds. SUBSCRIBEs reach us only after the engine authenticated
 * them for the subscriber's own mailbox (routes/media.cfg).
 */
export class MessageWaiting {
  private readonly subscriptions = new Map<string, Subscription>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly env: MediaEnv,
    private readonly log: Logger,
  ) {}

  start(pubsub: PubSubEngine): void {
    this.unsubscribe = pubsub.subscribe(allTenantsTopic("voicemail"), (payload) => void this.onVoicemailEvent(payload as VoicemailEventPayload));
  }

  private async onVoicemailEvent(event: VoicemailEventPayload): Promise<void> {
    try {
      const mailbox = await this.env.services.voicemail.mailboxOf(this.env.context("ingest"), event.extension.id);
      if (!mailbox) return;
      const number = mailbox.extension.extensionNumber;
      await Promise.all([
        this.notifyPhones(mailbox.domain, number, event.summary),
        ...[...this.subscriptions.values()].filter((s) => s.domain === mailbox.domain && s.number === number).map((s) => this.notify(s, event.summary)),
      ]);
    } catch (error) {
      this.log.warn({ err: error }, "message-waiting notification failed");
    }
  }

  /** An unsolicited NOTIFY to sip:number@domain, through the engine, which forks it to the registered contacts. */
  private async notifyPhones(domain: string, number: string, summary: VoicemailSummary): Promise<void> {
    const aor = `sip:${number}@${domain}`;
    const { ua, config } = this.env;
    const response = await ua.request({
      method: "NOTIFY",
      uri: aor,
      headers: {
        via: ua.via(),
        to: { uri: aor, params: {} },
        from: { uri: `sip:voicemail@${domain}`, params: { tag: newTag() } },
        "call-id": `${newTag()}${newTag()}@pbx-media`,
        cseq: { seq: 1, method: "NOTIFY" },
        route: [{ uri: `${config.engineUri};lr`, params: {} }],
        contact: [{ uri: ua.contact, params: {} }],
        event: "message-summary",
        "subscription-state": "active",
        "content-type": "application/simple-message-summary",
        "max-forwards": 70,
      },
      content: messageSummary(summary, aor),
    });
    this.log.debug({ aor, status: response.status }, "message-waiting NOTIFY");
  }

  /** A SUBSCRIBE to message-summary: answered, then the current state at once (RFC 6665). */
  async onSubscribe(request: SipMessage): Promise<void> {
    const { ua } = this.env;
    const callId = String(request.headers["call-id"]);
    const existing = this.subscriptions.get(callId);
    if (header(request, "event")?.split(";")[0].trim().toLowerCase() !== "message-summary") return ua.reply(request, 489, "Bad Event", { headers: { "allow-events": "message-summary" } });
    // A refresh comes inside the dialog (no X-Pbx-Domain then): the subscription says whose mailbox.
    const domain = existing?.domain ?? header(request, "X-Pbx-Domain")?.trim();
    const number = existing?.number ?? /^sips?:([0-9]{1,20})@/.exec(String(request.headers.to?.uri ?? ""))?.[1];
    if (!domain || !number) return ua.reply(request, 404, "Not Found");
    const mailbox = await this.env.services.voicemail.mailbox(this.env.context("ingest"), domain, number);
    if (!mailbox) return ua.reply(request, 404, "Not Found");
    const requested = Number(header(request, "expires") ?? DEFAULT_EXPIRES);
    const expires = Math.max(0, Math.min(Number.isFinite(requested) ? requested : DEFAULT_EXPIRES, MAX_EXPIRES));
    const localTag = existing?.localTag ?? (request.headers.to?.params.tag as string | undefined) ?? newTag();
    ua.reply(request, 200, "OK", { tag: localTag, headers: { expires, contact: [{ uri: ua.contact, params: {} }], ...(request.headers["record-route"] ? { "record-route": request.headers["record-route"] } : {}) } });
    if (existing) clearTimeout(existing.timer);
    const contact = Array.isArray(request.headers.contact) ? request.headers.contact[0]?.uri : undefined;
    const subscription: Subscription = existing ?? {
      callId,
      localTag,
      remoteTag: String(request.headers.from?.params.tag ?? ""),
      remoteTarget: contact ?? String(request.headers.from!.uri),
      routes: request.headers["record-route"] ?? [],
      from: { ...request.headers.to!, params: { ...request.headers.to!.params, tag: localTag } },
      to: request.headers.from!,
      cseq: 0,
      domain: mailbox.domain,
      number,
      expiresAt: 0,
      timer: setTimeout(() => undefined, 0),
    };
    subscription.expiresAt = Date.now() + expires * 1000;
    if (expires === 0) {
      this.subscriptions.delete(callId);
      return void (await this.notify(subscription, mailbox.summary, "terminated;reason=timeout"));
    }
    subscription.timer = setTimeout(() => this.subscriptions.delete(callId), expires * 1000);
    subscription.timer.unref();
    this.subscriptions.set(callId, subscription);
    await this.notify(subscription, mailbox.summary);
  }

  private async notify(s: Subscription, summary: VoicemailSummary, state?: string): Promise<void> {
    const { ua } = this.env;
    const left = Math.max(0, Math.round((s.expiresAt - Date.now()) / 1000));
    const response = await ua.request({
      method: "NOTIFY",
      uri: s.remoteTarget,
      headers: {
        via: ua.via(),
        to: s.to,
        from: s.from,
        "call-id": s.callId,
        cseq: { seq: ++s.cseq, method: "NOTIFY" },
        ...(s.routes.length ? { route: s.routes } : {}),
        contact: [{ uri: ua.contact, params: {} }],
        event: "message-summary",
        "subscription-state": state ?? `active;expires=${left}`,
        "content-type": "application/simple-message-summary",
        "max-forwards": 70,
      },
      content: messageSummary(summary, `sip:${s.number}@${s.domain}`),
    });
    // The phone forgot the subscription (481) or is gone: stop telling it.
    if (response.status === 481 || response.status === 408) {
      clearTimeout(s.timer);
      this.subscriptions.delete(s.callId);
    }
  }

  stop(): void {
    this.unsubscribe?.();
    for (const s of this.subscriptions.values()) clearTimeout(s.timer);
    this.subscriptions.clear();
  }
}
