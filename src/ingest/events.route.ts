import { Router, type Request, type Response } from "express";
import { requireRole } from "../auth/access";
import { Role } from "../auth/role";
import { AppError, HTTP_STATUS } from "../common/errors";
import { buildContext, type ContextDeps } from "../context/build-context";
import { bearerKey } from "../modules/api-key/api-key.service";
import type { Metrics } from "../observability/metrics";
import type { IngestOutcome } from "./ingest.service";

export const MAX_EVENTS_PER_REQUEST = 1000;

/**
 * `POST /api/events`: the SIP engine's events (INGEST key; one event or an array of up to 1,000).
 * Events of an array are applied in order, each in its own transaction: the good ones apply even
 * when others are refused, and the answer lists every outcome. 200 when none was refused, 207
 * when some were, 422 when a single event (or every event) was refused.
 */
export function createEventsRouter(deps: ContextDeps, metrics: Metrics): Router {
  const router = Router();
  router.post("/", async (req: Request, res: Response) => {
    const ctx = buildContext(deps, await deps.services.apiKeys.authenticate(bearerKey(req.headers.authorization)), "ingest", String(res.locals.requestId));
    try {
      requireRole(ctx, Role.INGEST, Role.ADMIN);
    } catch (error) {
      const code = (error as AppError).code;
      return void res.status(HTTP_STATUS[code]).json({ message: code === "UNAUTHENTICATED" ? "Unauthenticated." : "This action is unauthorized." });
    }
    const body: unknown = req.body;
    const single = !Array.isArray(body);
    const events: unknown[] = single ? [body] : (body as unknown[]);
    if (events.length === 0 || events.length > MAX_EVENTS_PER_REQUEST) {
      return void res.status(422).json({
        message: "The given data was invalid.",
        errors: { events: [`Send one event or an array of 1 to ${MAX_EVENTS_PER_REQUEST} events.`] },
      });
    }
    const results: Array<IngestOutcome & { index: number }> = [];
    for (const [index, event] of events.entries()) {
      const outcome = await deps.services.ingest.ingest(ctx, event);
      metrics.ingestEvents.inc({ source: "http", outcome: outcome.status });
      if (outcome.status === "rejected") ctx.log.warn({ index, code: outcome.code, errors: outcome.errors }, "telephony event refused");
      results.push({ index, ...outcome });
    }
    const rejected = results.filter((r) => r.status === "rejected").length;
    if (single) {
      const [only] = results;
      if (only.status === "rejected") return void res.status(422).json({ message: only.message, errors: only.errors ?? {} });
      return void res.status(200).json({ data: only });
    }
    if (rejected === 0) return void res.status(200).json({ data: results });
    res.status(rejected === results.length ? 422 : 207).json({
      message: `${rejected} of ${results.length} events were refused; the others were applied.`,
      data: results,
    });
  });
  router.all("/", (_req, res) => void res.status(405).set("Allow", "POST").json({ message: "The method is not allowed for this route." }));
  return router;
}
