import { ingestTypeLabel } from "../observability/platform-gauges";
import { Router, type ErrorRequestHandler, type Request, type Response } from "express";
import { DATABASE_RETRY_AFTER_S, isDatabaseUnavailable } from "../db/replica";
import { requireRole } from "../auth/access";
import { Role } from "../auth/role";
import { AppError, ErrorCode, HTTP_STATUS } from "../common/errors";
import { buildContext, type ContextDeps } from "../context/build-context";
import { bearerKey } from "../modules/api-key/api-key.service";
import type { Metrics } from "../observability/metrics";
import { HttpError } from "../rest/errors";
import { jsonBody } from "../rest/http";
import type { Drain } from "../server/drain";
import { IngestInterrupted, type IngestOutcome } from "./ingest.service";

export const MAX_EVENTS_PER_REQUEST = 1000;

/** An event the handler could not reach because the database stopped answering part-way. */
const UNREACHED: IngestOutcome = {
  status: "rejected",
  code: ErrorCode.SERVICE_UNAVAILABLE,
  message: "The database did not answer: this event was not applied. Send it again.",
};

/**
 * `POST /api/events`: the SIP engine's events (INGEST key; one event or an array of up to 1,000).
 * Events of an array are applied in order, many per transaction; the good ones apply even when
 * others are refused, and the answer lists every outcome. 200 when none was refused, 207 when some
 * were, 422 when a single event (or every event) was refused. A batch cut short — the server began
 * shutting down, or the database stopped answering — answers what was applied; the events it did
 * not reach are `rejected` with code SERVICE_UNAVAILABLE (send them again): 207, or 503 when none
 * was applied.
 */
export function createEventsRouter(deps: ContextDeps, metrics: Metrics, drain: Drain): Router {
  const router = Router();
  router.post("/", async (req: Request, res: Response) => {
    const ctx = buildContext(deps, await deps.services.apiKeys.authenticate(bearerKey(req.headers.authorization)), "ingest", String(res.locals.requestId));
    try {
      requireRole(ctx, Role.INGEST, Role.ADMIN);
    } catch (error) {
      const code = (error as AppError).code;
      return void res.status(HTTP_STATUS[code]).json({ message: code === "UNAUTHENTICATED" ? "Unauthenticated." : "This action is unauthorized." });
    }
    try {
      // Like REST: a body that is not JSON is 415, not an empty event refused with 422.
      jsonBody(req, res, () => undefined);
    } catch (error) {
      if (error instanceof HttpError) return void res.status(error.status).json({ message: error.message });
      throw error;
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
    let outcomes: IngestOutcome[];
    try {
      outcomes = await deps.services.ingest.ingestMany(ctx, events, { proceed: (stepMs) => drain.mayContinue(stepMs) });
    } catch (error) {
      if (!(error instanceof IngestInterrupted)) throw error;
      ctx.log.error({ err: error.cause }, "the database failed part-way through a batch of telephony events");
      outcomes = events.map((_, index) => error.outcomes[index] ?? UNREACHED);
    }
    const results = outcomes.map((outcome, index) => ({ index, ...outcome }));
    for (const r of results) {
      metrics.ingestEvents.inc({ source: "http", type: ingestTypeLabel(events[r.index]), outcome: r.status });
      if (r.status === "rejected" && r.code !== ErrorCode.SERVICE_UNAVAILABLE) ctx.log.warn({ index: r.index, code: r.code, errors: r.errors }, "telephony event refused");
    }
    const rejected = results.filter((r) => r.status === "rejected").length;
    const unapplied = results.filter((r) => r.status === "rejected" && r.code === ErrorCode.SERVICE_UNAVAILABLE).length;
    if (unapplied > 0) res.set("Retry-After", "1");
    if (single) {
      const [only] = results;
      if (only.status === "rejected") return void res.status(only.code === ErrorCode.SERVICE_UNAVAILABLE ? 503 : 422).json({ message: only.message, errors: only.errors ?? {} });
      return void res.status(200).json({ data: only });
    }
    if (rejected === 0) return void res.status(200).json({ data: results });
    const status = rejected < results.length ? 207 : unapplied > 0 ? 503 : 422;
    res.status(status).json({
      message:
        unapplied > 0
          ? `${unapplied} of ${results.length} events were not applied (send them again)${rejected > unapplied ? `, ${rejected - unapplied} were refused` : ""}; the others were applied.`
          : `${rejected} of ${results.length} events were refused; the others were applied.`,
      data: results,
    });
  });
  // The database lost before the batch began (the key's look-up, the first transaction): 503 + Retry-After, as for a batch cut short.
  router.use(((error, _req, res, next) => {
    if (res.headersSent || !isDatabaseUnavailable(error)) return next(error);
    res.set("Retry-After", String(DATABASE_RETRY_AFTER_S));
    res.status(503).json({ message: "The database did not answer: no event was applied. Send them again." });
  }) as ErrorRequestHandler);
  router.all("/", (_req, res) => void res.status(405).set("Allow", "POST").json({ message: "The method is not allowed for this route." }));
  return router;
}
