import os from "node:os";
import path from "node:path";
import { ConfigError } from "../config/config";

/** The media application's own settings (contract §13); the database and Redis come from the API's config. */
export interface MediaConfig {
  /** Our SIP listener: udp:HOST:PORT. */
  sipHost: string;
  sipPort: number;
  /** rtpengine's ng control socket. */
  rtpengineHost: string;
  rtpenginePort: number;
  /** Where requests we originate go (agents' INVITEs, NOTIFYs): the engine. Its host is also the only source whose INVITEs we answer. */
  engineUri: string;
  engineHost: string;
  enginePort: number;
  /** The address our RTP sockets bind (rtpengine sends the caller's audio there). */
  rtpHost: string;
  voicemailMaxSeconds: number;
  /** Where uploaded greetings are written for rtpengine to play (rtpengine reads files from its own disk: same host). */
  filesDir: string;
}

function hostPort(name: string, raw: string, scheme: RegExp): { host: string; port: number } {
  const match = scheme.exec(raw);
  if (!match) throw new ConfigError(`${name} must look like ${name === "ENGINE_SIP_URI" ? "sip:127.0.0.1:5060" : "udp:127.0.0.1:5070"}, got "${raw}"`);
  const port = Number(match[2] ?? 5060);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`${name} has an invalid port: "${raw}"`);
  return { host: match[1], port };
}

export function loadMediaConfig(env: NodeJS.ProcessEnv = process.env): MediaConfig {
  const sip = hostPort("MEDIA_SIP_LISTEN", env.MEDIA_SIP_LISTEN?.trim() || "udp:127.0.0.1:5070", /^udp:(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/);
  const ng = hostPort("RTPENGINE_NG", env.RTPENGINE_NG?.trim() || "udp:127.0.0.1:22222", /^udp:(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/);
  const engineUri = env.ENGINE_SIP_URI?.trim() || "sip:127.0.0.1:5060";
  const engine = hostPort("ENGINE_SIP_URI", engineUri, /^sip:(\d{1,3}(?:\.\d{1,3}){3})(?::(\d+))?$/);
  const rawMax = env.VOICEMAIL_MAX_SECONDS?.trim() || "120";
  const voicemailMaxSeconds = Number(rawMax);
  if (!Number.isInteger(voicemailMaxSeconds) || voicemailMaxSeconds < 2 || voicemailMaxSeconds > 3600) {
    throw new ConfigError(`VOICEMAIL_MAX_SECONDS must be an integer between 2 and 3600, got "${rawMax}"`);
  }
  return {
    sipHost: sip.host,
    sipPort: sip.port,
    rtpengineHost: ng.host,
    rtpenginePort: ng.port,
    engineUri,
    engineHost: engine.host,
    enginePort: engine.port,
    rtpHost: env.MEDIA_RTP_HOST?.trim() || sip.host,
    voicemailMaxSeconds,
    filesDir: path.resolve(env.MEDIA_FILES_DIR?.trim() || path.join(os.tmpdir(), "pbx-media")),
  };
}
