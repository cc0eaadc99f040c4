import { extensionResource } from "../../rest/extension.resource";
import { voicemailResource } from "../../rest/voicemail.resource";
import type { VoicemailEventPayload } from "../events";
import type { EventKind } from "./kind";

/** Voicemail: the message as REST shows it (never its audio) and the mailbox as the change left it. */
export const voicemailKind: EventKind<VoicemailEventPayload> = {
  name: "voicemail",
  live: "voicemail",
  webhookType: (p) => `voicemail.${p.type.toLowerCase()}`,
  webhookData: (p) => ({ extension: extensionResource(p.extension), message: voicemailResource(p.message), summary: { unheard: p.summary.unheard, total: p.summary.total } }),
};
