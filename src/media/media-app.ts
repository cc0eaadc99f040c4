import type { Logger } from "../common/logger";
import type { ContextDeps } from "../context/build-context";
import type { Services } from "../services";
import type { MediaConfig } from "./config";
import { CallEnded, MediaCall } from "./media-call";
import { MediaEnv, shippedAssets } from "./media-env";
import { Rtpengine } from "./rtpengine";
import { header, SipUa, type Remote, type SipMessage } from "./sip-ua";
import { MessageWaiting } from "./mwi";
import { depositVoicemail } from "./voicemail";
import { listenToVoicemail } from "./voicemail-main";
import { runQueueCall } from "./queue";

/**
 * What the engine asks of us, in the INVITE's X-Pbx-* headers (deploy/kamailio/routes/media.cfg):
 * `X-Pbx-App` voicemail | queue | voicemail-main, `X-Pbx-Domain` the tenant's SIP domain,
 * `X-Pbx-Target` the extension or queue number (for voicemail-main: the caller's own extension).
 */
export const APP_HEADER = "X-Pbx-App";
export const DOMAIN_HEADER = "X-Pbx-Domain";
export const TARGET_HEADER = "X-Pbx-Target";

export interface MediaApp {
  /** Calls in progress on this instance. */
  calls(): number;
  /** Ends every call with BYE, then closes SIP and rtpengine sockets. */
  stop(): Promise<void>;
}

/**
 * The media application (contract §13): a SIP user agent that answers the calls the engine sends it
 * and runs one application per call. Calls live in this instance's memory: several instances can
 * run, each handles the calls that reached it.
 */
export async function startMediaApp(config: MediaConfig, services: Services, deps: ContextDeps, log: Logger): Promise<MediaApp> {
  const rtpengine = new Rtpengine(config.rtpengineHost, config.rtpenginePort, log);
  const calls = new Map<string, MediaCall>();
  let stopping = false;

  const onRequest = (request: SipMessage, remote: Remote) => {
    const callId = String(request.headers["call-id"] ?? "");
    const method = request.method;
    const inDialog = Boolean(request.headers.to?.params.tag);
    if (method === "OPTIONS") return ua.reply(request, 200, "OK");
    if (method === "BYE") {
      const leg = env.legs.get(callId);
      if (leg) {
        ua.reply(request, 200, "OK");
        return leg();
      }
      const call = calls.get(callId);
      if (!call) return ua.reply(request, 481, "Call/Transaction Does Not Exist");
      ua.reply(request, 200, "OK");
      return call.dialog.endedByRemote();
    }
    if (method === "CANCEL") {
      const call = calls.get(callId);
      ua.reply(request, call ? 200 : 481, call ? "OK" : "Call/Transaction Does Not Exist");
      if (call && !call.answered) {
        ua.reply(call.invite, 487, "Request Terminated", { tag: call.dialog.localTag });
        call.dialog.endedByRemote();
      }
      return;
    }
    if (method === "INVITE" && inDialog) {
      // A re-INVITE (session refresh, hold): we keep the media as it is and say so.
      const call = calls.get(callId);
      if (!call) return ua.reply(request, 481, "Call/Transaction Does Not Exist");
      return ua.reply(request, 200, "OK", { headers: { contact: [{ uri: ua.contact, params: {} }], "content-type": "application/sdp" }, content: call.answerSdp });
    }
    if (method === "INVITE") return onInvite(request, remote);
    if (method === "SUBSCRIBE") {
      if (remote.address !== config.engineHost) return ua.reply(request, 403, "Forbidden");
      return void mwi.onSubscribe(request).catch((error: unknown) => {
        log.error({ err: error }, "SUBSCRIBE failed");
        ua.reply(request, 500, "Server Internal Error");
      });
    }
    ua.reply(request, 405, "Method Not Allowed", { headers: { allow: "INVITE, ACK, BYE, CANCEL, OPTIONS, SUBSCRIBE" } });
  };

  const onInvite = (invite: SipMessage, remote: Remote) => {
    if (remote.address !== config.engineHost) {
      log.warn({ source: remote.address }, "INVITE from an address that is not the engine: refused");
      return ua.reply(invite, 403, "Forbidden");
    }
    if (stopping) return ua.reply(invite, 503, "Service Unavailable", { headers: { "retry-after": 5 } });
    const callId = String(invite.headers["call-id"]);
    if (calls.has(callId)) return; // a retransmission: the transaction layer has answered it
    ua.reply(invite, 100, "Trying");
    const call = new MediaCall(ua, rtpengine, config.rtpHost, invite, log.child({ callId }));
    calls.set(callId, call);
    call.once("ended", () => void call.release());
    const app = header(invite, APP_HEADER)?.trim().toLowerCase();
    const domain = header(invite, DOMAIN_HEADER)?.trim() ?? "";
    const target = header(invite, TARGET_HEADER)?.trim() ?? "";
    const run = async () => {
      if (app === "voicemail" && domain && /^[0-9]{1,20}$/.test(target)) return depositVoicemail(env, call, domain, target);
      if (app === "queue" && domain && /^[0-9]{1,20}$/.test(target)) return runQueueCall(env, call, domain, target);
      if (app === "voicemail-main" && domain && /^[0-9]{1,20}$/.test(target)) return listenToVoicemail(env, call, domain, target);
      call.reject(404, "Not Found");
    };
    run()
      .catch((error: unknown) => {
        if (error instanceof CallEnded) return;
        call.log.error({ err: error, app }, "media application failed on a call");
        if (call.answered) return call.hangup();
        call.reject(500, "Server Internal Error");
      })
      .finally(() => {
        calls.delete(callId);
        void call.release();
      });
  };

  const ua = new SipUa({ host: config.sipHost, port: config.sipPort, log, onRequest });
  const env = new MediaEnv(config, services, deps, ua, rtpengine, shippedAssets(), log);
  const mwi = new MessageWaiting(env, log);
  mwi.start(deps.pubsub);
  if (!(await rtpengine.ping())) log.warn({ rtpengine: `${config.rtpengineHost}:${config.rtpenginePort}` }, "rtpengine does not answer (yet): calls fail until it does");

  return {
    calls: () => calls.size,
    stop: async () => {
      stopping = true;
      mwi.stop();
      await Promise.all([...calls.values()].map((call) => call.hangup().catch(() => undefined)));
      ua.close();
      rtpengine.close();
    },
  };
}
