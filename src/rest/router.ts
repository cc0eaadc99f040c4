import { randomUUID } from "node:crypto";
import { Router, type RequestHandler } from "express";
import { requireRole } from "../auth/access";
import { Role } from "../auth/role";
import { unauthenticated } from "../common/errors";
import { buildContext } from "../context/build-context";
import { bearerKey } from "../modules/api-key/api-key.service";
import { CreateExtensionInput, UpdateExtensionInput } from "../modules/extension/extension.inputs";
import type { RestDeps } from "./deps";
import { methodNotAllowed, restErrors } from "./errors";
import { extensionResource, inputFields, paginated, subscriberResource } from "./extension.resource";
import { OPENAPI_DOCUMENT } from "./openapi";
import { voicemailRoutes } from "./voicemail.routes";
import { booleanParam, collectionPath, ctxOf, integerParam, jsonBody, param, type Access } from "./http";

/**
 * The REST adapter (`/api/...`, contract §5): thin routes over the same services and input classes
 * as GraphQL. Each route authenticates, maps snake_case to the service input, calls one service
 * method and shapes the answer as a Laravel API resource; restErrors maps every refusal.
 */
export function createRestRouter(deps: RestDeps): Router {
  const router = Router();

  /** Bearer key → principal → request context, then the role gate for reads or writes. */
  const authenticated =
    (access: Access): RequestHandler =>
    async (req, res, next) => {
      const principal = await deps.services.apiKeys.authenticate(bearerKey(req.headers.authorization));
      if (!principal) throw unauthenticated();
      const ctx = buildContext(deps, principal, String(res.locals.requestId ?? randomUUID()));
      if (access === "ingest") requireRole(ctx, Role.INGEST, Role.ADMIN);
      else ctx.services.extensions.authorize(ctx, access);
      res.locals.ctx = ctx;
      next();
    };

  router
    .route("/openapi.json")
    .get((_req, res) => void res.json(OPENAPI_DOCUMENT))
    .all(methodNotAllowed(["GET", "HEAD"]));

  router
    .route("/extensions")
    .get(authenticated("read"), async (req, res) => {
      const ctx = ctxOf(res);
      const filters = { search: param(req.query.search), tenant_id: param(req.query.tenant_id), status: param(req.query.status) };
      const tenantId = filters.tenant_id === undefined ? undefined : String(filters.tenant_id);
      const page = await ctx.services.extensions.paginate(ctx, tenantId, {
        search: filters.search,
        status: filters.status,
        page: integerParam(req.query.page),
        perPage: integerParam(req.query.per_page),
      });
      const given = Object.fromEntries(Object.entries(filters).filter((entry): entry is [string, string] => typeof entry[1] === "string"));
      res.json(paginated(page, collectionPath(req), given, extensionResource));
    })
    .post(authenticated("write"), jsonBody, async (req, res) => {
      const ctx = ctxOf(res);
      const row = await ctx.services.extensions.createInTenant(ctx, Object.assign(new CreateExtensionInput(), inputFields(req.body)));
      res.status(201).location(`${req.baseUrl}/extensions/${row.id}`).json({ data: extensionResource(row) });
    })
    .all(methodNotAllowed(["GET", "HEAD", "POST"]));

  router
    .route("/extensions/:id")
    .get(authenticated("read"), async (req, res) => {
      const ctx = ctxOf(res);
      res.json({ data: extensionResource(await ctx.services.extensions.get(ctx, req.params.id)) });
    })
    .put(authenticated("write"), jsonBody, async (req, res) => {
      const ctx = ctxOf(res);
      const row = await ctx.services.extensions.replace(ctx, req.params.id, Object.assign(new CreateExtensionInput(), inputFields(req.body)));
      res.json({ data: extensionResource(row) });
    })
    .patch(authenticated("write"), jsonBody, async (req, res) => {
      const ctx = ctxOf(res);
      const { tenantId, ...fields } = inputFields(req.body);
      const row = await ctx.services.extensions.updateInTenant(ctx, req.params.id, Object.assign(new UpdateExtensionInput(), fields), tenantId);
      res.json({ data: extensionResource(row) });
    })
    .delete(authenticated("write"), async (req, res) => {
      const ctx = ctxOf(res);
      await ctx.services.extensions.delete(ctx, req.params.id, booleanParam(req.query.force, "force"));
      res.status(204).end();
    })
    .all(methodNotAllowed(["GET", "HEAD", "PUT", "PATCH", "DELETE"]));

  router
    .route("/engine/credentials")
    .get(async (req, res) => {
      const principal = await deps.services.apiKeys.authenticate(bearerKey(req.headers.authorization));
      if (!principal) throw unauthenticated();
      const ctx = buildContext(deps, principal, String(res.locals.requestId ?? randomUUID()));
      const row = await ctx.services.credentials.subscriber(ctx, param(req.query.domain), param(req.query.username));
      res.setHeader("Cache-Control", "no-store");
      res.json({ data: subscriberResource(row) });
    })
    .all(methodNotAllowed(["GET", "HEAD"]));

  voicemailRoutes(router, deps, authenticated);

  router.use(restErrors(deps.log));
  return router;
}
