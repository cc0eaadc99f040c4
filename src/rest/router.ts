import { randomUUID } from "node:crypto";
import { Transform, type Readable } from "node:stream";
import { Router, type Request, type RequestHandler } from "express";
import { requireRole } from "../auth/access";
import { Role } from "../auth/role";
import { badInput, unauthenticated } from "../common/errors";
import { buildContext } from "../context/build-context";
import type { DbScope } from "../db/replica";
import { bearerKey } from "../modules/api-key/api-key.service";
import { CreateExtensionInput, UpdateExtensionInput } from "../modules/extension/extension.inputs";
import { readCsvRecords, readJsonRecords } from "../modules/extension/extension-import";
import { ImportMode } from "../modules/extension/extension-import.types";
import type { RestDeps } from "./deps";
import { HttpError, methodNotAllowed, restErrors } from "./errors";
import { extensionResource, importResultResource, inputFields, paginated, subscriberResource } from "./extension.resource";
import { OPENAPI_DOCUMENT } from "./openapi";
import { booleanParam, collectionPath, ctxOf, integerParam, jsonBody, param, type Access } from "./http";
import { voicemailRoutes } from "./voicemail.routes";
import { assignOwn } from "../common/json";
import { callHandlingRoutes } from "./call-handling.routes";

function modeParam(value: unknown): ImportMode {
  const text = param(value);
  if (text === undefined) return ImportMode.CREATE;
  const mode = typeof text === "string" ? (text.toUpperCase() as ImportMode) : undefined;
  if (mode && Object.values(ImportMode).includes(mode)) return mode;
  throw badInput({ mode: ["The mode must be create or upsert."] });
}

/** The request body as a stream that fails with 413 past `limit` bytes: a CSV import is parsed as it arrives, never buffered whole. */
function limitedBody(req: Request, limit: number): Readable {
  // The rest of a refused body is read and dropped, so the client gets the 413 rather than a reset connection.
  const refuse = () => {
    req.unpipe();
    req.resume();
    return new HttpError(413, "The request body is too large.");
  };
  if (Number(req.headers["content-length"] ?? 0) > limit) throw refuse();
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      done(seen > limit ? refuse() : null, chunk);
    },
  });
  req.once("error", (error) => counter.destroy(error));
  return req.pipe(counter);
}

/** The query parameters a list takes; each must be given once, as a plain value. */
const LIST_PARAMS = ["search", "tenant_id", "status", "page", "per_page"] as const;

/**
 * Refuses a list parameter given as an array or an object (`tenant_id[]=1`, `search[a]=b`,
 * `status=a&status=b`) with 422 on that field: ignored, it would widen the list (every tenant's
 * extensions instead of one).
 */
function assertPlainListParams(query: Record<string, unknown>): void {
  const fields: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(query)) {
    const name = /^([a-z_]+)\[/.exec(key)?.[1] ?? key;
    if (!(LIST_PARAMS as readonly string[]).includes(name)) continue;
    if (name !== key || typeof value !== "string") fields[name] = [`The ${name.replace(/_/g, " ")} must be a string.`];
  }
  if (Object.keys(fields).length) throw badInput(fields);
}

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
      // The engine's hand-overs (voicemail) are ingestion, whatever door they come through.
      const ctx = buildContext(deps, principal, access === "ingest" ? "ingest" : "rest", String(res.locals.requestId ?? randomUUID()), res.locals.db as DbScope | undefined);
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
      assertPlainListParams(req.query as Record<string, unknown>);
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
      const row = await ctx.services.extensions.createInTenant(ctx, assignOwn(new CreateExtensionInput(), inputFields(req.body)));
      res.status(201).location(`${req.baseUrl}/extensions/${row.id}`).json({ data: extensionResource(row) });
    })
    .all(methodNotAllowed(["GET", "HEAD", "POST"]));

  // Before /extensions/:id, which would otherwise take "import" and "export" for ids.
  router
    .route("/extensions/import")
    .post(authenticated("write"), async (req, res) => {
      const ctx = ctxOf(res);
      const options = { dryRun: booleanParam(req.query.dry_run, "dry_run"), mode: modeParam(req.query.mode) };
      let read: () => Promise<ReturnType<typeof readJsonRecords>>;
      if (req.is("text/csv")) read = () => readCsvRecords(limitedBody(req, deps.config.importBodyLimitBytes));
      else if (req.is("application/json")) read = async () => readJsonRecords(req.body);
      else throw new HttpError(415, "The import body must be text/csv or a JSON array (application/json).");
      const result = await ctx.services.extensionImport.run(ctx, param(req.query.tenant_id), read, options);
      if (result.failed > 0) {
        return void res.status(422).json({ message: `The import was refused: ${result.failed} of ${result.rows.length} rows failed; nothing was written.`, data: importResultResource(result) });
      }
      res.json({ data: importResultResource(result) });
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route("/extensions/export")
    .get(authenticated("read"), async (req, res) => {
      const ctx = ctxOf(res);
      const csv = await ctx.services.extensionImport.exportCsv(ctx, param(req.query.tenant_id));
      res.status(200).type("text/csv; charset=utf-8").attachment("extensions.csv");
      csv.once("error", (error) => {
        ctx.log.error({ err: error }, "extension export failed mid-stream");
        res.destroy(error);
      });
      csv.pipe(res);
    })
    .all(methodNotAllowed(["GET", "HEAD"]));

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
      const ctx = buildContext(deps, principal, "rest", String(res.locals.requestId ?? randomUUID()));
      const row = await ctx.services.credentials.subscriber(ctx, param(req.query.domain), param(req.query.username));
      res.setHeader("Cache-Control", "no-store");
      res.json({ data: subscriberResource(row) });
    })
    .all(methodNotAllowed(["GET", "HEAD"]));

  voicemailRoutes(router, deps, authenticated);
  callHandlingRoutes(router, deps, authenticated);

  router.use(restErrors(deps.log));
  return router;
}
