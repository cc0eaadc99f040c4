import type { CallDestination } from "../modules/call-destination/call-destination.type";
import type { CallHandling } from "../modules/call-handling/call-handling.types";
import { CallHandlingInput } from "../modules/call-handling/call-handling.types";
import { HttpError } from "./errors";

/** A destination as REST spells it: `{"type": "extension", "target": "1002"}` (types in lower case, as §6), or null. */
export const destinationResource = (d: CallDestination | null) => (d ? { type: d.type, target: d.target } : null);

/** GET/PUT /api/extensions/{id}/call-handling (contract §12). */
export function callHandlingResource(c: CallHandling) {
  return {
    do_not_disturb: c.doNotDisturb,
    ring_seconds: c.ringSeconds,
    forward_always: destinationResource(c.forwardAlways),
    forward_busy: destinationResource(c.forwardBusy),
    forward_no_answer: destinationResource(c.forwardNoAnswer),
  };
}

const FIELDS = { do_not_disturb: "doNotDisturb", ring_seconds: "ringSeconds", forward_always: "forwardAlways", forward_busy: "forwardBusy", forward_no_answer: "forwardNoAnswer" } as const;
const FORWARDS = new Set(["forward_always", "forward_busy", "forward_no_answer"]);

/**
 * The body of a PUT as the service's input: only the fields given (a field left out keeps its
 * value, a forward given as null is removed). A destination's type may come in either case; what
 * it is otherwise is for validateDestination to judge, with the same messages as GraphQL.
 */
export function callHandlingInput(body: unknown): CallHandlingInput {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "The request body must be a JSON object.");
  const input = new CallHandlingInput();
  for (const [name, field] of Object.entries(FIELDS)) {
    if (!Object.hasOwn(body, name)) continue;
    let value = (body as Record<string, unknown>)[name];
    if (FORWARDS.has(name) && value !== null && typeof value === "object" && !Array.isArray(value)) {
      const { type, target } = value as { type?: unknown; target?: unknown };
      value = { type: typeof type === "string" ? type.toLowerCase() : type, target };
    }
    (input as Record<string, unknown>)[field] = value;
  }
  return input;
}
