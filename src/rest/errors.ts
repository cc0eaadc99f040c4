import type { ErrorRequestHandler, RequestHandler } from "express";
import { AppError, ErrorCode, HTTP_STATUS, valueRefusal, type FieldErrors } from "../common/errors";
import type { Logger } from "../common/logger";
import { DATABASE_RETRY_AFTER_S, isDatabaseUnavailable } from "../db/replica";

/** extensionNumber → extension_number: service field names as the REST body spells them. */
export const snakeCase = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function snakeFields(fields: FieldErrors): FieldErrors {
  return Object.fromEntries(Object.entries(fields).map(([field, messages]) => [snakeCase(field), messages]));
}

/** A refusal of the HTTP request itself (its body's form), before any service is asked. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * AppError → Laravel-shaped answer. Field errors are 422 whatever their code (a taken number, a
 * tenant at its limit, a tenant named in the body that the caller cannot see); the rest follow
 * HTTP_STATUS. Anything else is logged and answered as a bare 500.
 */
export function restErrors(log: Logger): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) return next(error);
    // Refused before its body was read (a streamed import stopped at a bad line): the unread rest
    // makes the connection unusable, so say so rather than let the client reuse it into a reset.
    if (!req.complete) res.setHeader("Connection", "close");
    error = valueRefusal(error) ?? error;
    if (error instanceof HttpError) return void res.status(error.status).json({ message: error.message });
    const bodyError = bodyParserRefusal(error);
    if (bodyError) return void res.status(bodyError.status).json({ message: bodyError.message });
    if (error instanceof AppError) {
      if (error.fields) return void res.status(422).json({ message: error.message, errors: snakeFields(error.fields) });
      if (error.code === ErrorCode.UNAUTHENTICATED) res.setHeader("WWW-Authenticate", "Bearer");
      if (error.code === ErrorCode.CONFLICT && Array.isArray(error.details?.queues)) {
        const ringGroups = Array.isArray(error.details.ringGroups) ? { ring_groups: error.details.ringGroups } : {};
        return void res.status(409).json({ message: error.message, queues: error.details.queues, ...ringGroups });
      }
      if (error.code === ErrorCode.CONFLICT && Array.isArray(error.details?.references)) {
        return void res.status(409).json({ message: error.message, references: error.details.references });
      }
      if (error.code === ErrorCode.SERVICE_UNAVAILABLE) res.setHeader("Retry-After", String(DATABASE_RETRY_AFTER_S));
      if (error.code !== ErrorCode.INTERNAL_SERVER_ERROR) return void res.status(HTTP_STATUS[error.code]).json({ message: error.message });
    }
    // The primary lost (a failover under way): fail fast and say when to come back, never a 500.
    if (isDatabaseUnavailable(error)) {
      log.warn({ err: error, requestId: res.locals.requestId }, "database unreachable: REST request answered 503");
      res.setHeader("Retry-After", String(DATABASE_RETRY_AFTER_S));
      return void res.status(503).json({ message: "The database is unreachable right now; retry shortly." });
    }
    log.error({ err: error, requestId: res.locals.requestId }, "unexpected error in REST request");
    res.status(500).json({ message: "Server Error" });
  };
}

/**
 * A body parser's refusal (body-parser marks its client errors with a `type` and `expose`): the
 * client's 4xx with a message of ours, never a 500. A route that reads its own body type (the raw
 * WAV of a greeting) gets this for whatever its parser refuses.
 */
function bodyParserRefusal(error: unknown): { status: number; message: string } | null {
  const e = error as { type?: unknown; status?: unknown; expose?: unknown } | null;
  if (!e || typeof e.type !== "string" || e.expose !== true || typeof e.status !== "number" || e.status < 400 || e.status > 499) return null;
  if (e.type === "entity.too.large") return { status: 413, message: "The request body is too large." };
  if (e.type === "encoding.unsupported" || e.type === "charset.unsupported") return { status: 415, message: "Unsupported content encoding." };
  return { status: 400, message: "The request body could not be read." };
}

/** A known route asked with a method it does not serve: 405 naming the ones it does (OPTIONS just lists them). */
export function methodNotAllowed(allowed: string[]): RequestHandler {
  const allow = allowed.join(", ");
  return (req, res) => {
    res.setHeader("Allow", `${allow}, OPTIONS`);
    if (req.method === "OPTIONS") return void res.status(204).end();
    res.status(405).json({ message: `The ${req.method} method is not supported for this route. Supported methods: ${allow}.` });
  };
}
