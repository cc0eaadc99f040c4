import { extensionResource } from "../../rest/extension.resource";
import type { RegistrationEventPayload } from "../events";
import type { EventKind } from "./kind";
import { restShape } from "./rest-shape";

export const registrationKind: EventKind<RegistrationEventPayload> = {
  name: "registrations",
  live: "registrations",
  webhookType: (p) => `registration.${p.type.toLowerCase()}`,
  webhookData: (p) => ({ extension: extensionResource(p.extension), device: restShape(p.device) }),
};
