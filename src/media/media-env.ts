import fs from "node:fs";
import path from "node:path";
import { Role } from "../auth/role";
import type { Logger } from "../common/logger";
import { buildContext, type ContextDeps } from "../context/build-context";
import type { RequestContext } from "../context/request-context";
import type { Services } from "../services";
import type { MediaConfig } from "./config";
import type { Rtpengine } from "./rtpengine";
import type { SipUa } from "./sip-ua";

/** The shipped prompts (scripts/make-media-assets.sh); absolute paths, since rtpengine opens them. */
export interface MediaAssets {
  defaultGreeting: string;
  beep: string;
  mailboxFull: string;
  noMessages: string;
  musicOnHold: string;
  queueWelcome: string;
}

export function shippedAssets(): MediaAssets {
  // The repository's assets/media, found upwards from src/media, dist/src/media or a test build.
  let dir: string | undefined;
  for (let up = path.resolve(__dirname, ".."), i = 0; i < 5 && !dir; up = path.dirname(up), i++) {
    if (fs.existsSync(path.join(up, "assets/media/beep.wav"))) dir = path.join(up, "assets/media");
  }
  if (!dir) throw new Error("assets/media is missing: the media application ships its prompts there");
  const file = (name: string) => path.join(dir, `${name}.wav`);
  return {
    defaultGreeting: file("default-greeting"),
    beep: file("beep"),
    mailboxFull: file("mailbox-full"),
    noMessages: file("no-messages"),
    musicOnHold: file("music-on-hold"),
    queueWelcome: file("queue-welcome"),
  };
}

/**
 * What every application of the media process works with: its settings, the product's services,
 * its SIP and rtpengine sides, the prompts, and request contexts for the service calls it makes.
 */
export class MediaEnv {
  /** Legs we set up (agents'), by Call-ID: their BYE resolves the waiting call. */
  readonly legs = new Map<string, () => void>();

  constructor(
    readonly config: MediaConfig,
    readonly services: Services,
    private readonly deps: ContextDeps,
    readonly ua: SipUa,
    readonly rtpengine: Rtpengine,
    readonly assets: MediaAssets,
    readonly log: Logger,
  ) {
    fs.mkdirSync(config.filesDir, { recursive: true });
  }

  /**
   * A context for the services: `ingest` (an INGEST principal: deposits, call and queue events) or
   * `platform` (ADMIN: what a caller does to their own mailbox by phone, e.g. *98 marking heard).
   * Both are the media application, as the audit trail names it.
   */
  context(kind: "ingest" | "platform"): RequestContext {
    const role = kind === "ingest" ? Role.INGEST : Role.ADMIN;
    return buildContext(this.deps, { role, tenantId: null, apiKeyId: null, name: "media application" }, "ingest");
  }

  /** The greeting to play for an extension: its uploaded one, written once per version for rtpengine, else the shipped one. */
  async greetingFile(ctx: RequestContext, extensionId: number): Promise<string> {
    const greeting = await this.services.voicemail.greetingForPlayback(ctx, extensionId);
    if (!greeting) return this.assets.defaultGreeting;
    const file = path.join(this.config.filesDir, `greeting-${extensionId}-${greeting.version}.wav`);
    if (!fs.existsSync(file)) {
      const partial = `${file}.${process.pid}.part`;
      fs.writeFileSync(partial, greeting.audio);
      fs.renameSync(partial, file);
    }
    return file;
  }
}
