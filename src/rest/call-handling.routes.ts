import type { RequestHandler, Router } from "express";
import { callHandlingInput, callHandlingResource } from "./call-handling.resource";
import type { RestDeps } from "./deps";
import { methodNotAllowed } from "./errors";
import { ctxOf, jsonBody, type Access } from "./http";

/** `/api/extensions/{id}/call-handling` (contract §12): the same service as updateCallHandling. */
export function callHandlingRoutes(router: Router, _deps: RestDeps, authenticated: (access: Access) => RequestHandler): void {
  router
    .route("/extensions/:id/call-handling")
    .get(authenticated("read"), async (req, res) => {
      const ctx = ctxOf(res);
      res.json({ data: callHandlingResource(await ctx.services.callHandling.get(ctx, req.params.id)) });
    })
    .put(authenticated("write"), jsonBody, async (req, res) => {
      const ctx = ctxOf(res);
      const saved = await ctx.services.callHandling.update(ctx, req.params.id, callHandlingInput(req.body ?? {}));
      res.json({ data: callHandlingResource(saved) });
    })
    .all(methodNotAllowed(["GET", "HEAD", "PUT"]));
}
