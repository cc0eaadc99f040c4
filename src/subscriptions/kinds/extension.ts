import { callHandlingResource } from "../../rest/call-handling.resource";
import { extensionResource } from "../../rest/extension.resource";
import type { ExtensionEventPayload } from "../events";
import type { EventKind } from "./kind";

/** Extension lifecycle: webhooks only (no subscription carries it). */
export const extensionKind: EventKind<ExtensionEventPayload> = {
  name: "extensions",
  live: null,
  webhookType: (p) => `extension.${p.type.toLowerCase()}`,
  webhookData: (p) => ({ extension: extensionResource(p.extension), ...(p.callHandling ? { call_handling: callHandlingResource(p.callHandling) } : {}) }),
};
