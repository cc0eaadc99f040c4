import type { CallEventPayload } from "../events";
import type { EventKind } from "./kind";
import { restShape } from "./rest-shape";

export const callKind: EventKind<CallEventPayload> = {
  name: "calls",
  live: "calls",
  webhookType: (p) => `call.${p.type.toLowerCase()}`,
  webhookData: (p) => ({ call: restShape(p.call), cdr: p.cdr ? restShape(p.cdr) : null }),
};
