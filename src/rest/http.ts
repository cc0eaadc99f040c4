import type { Request, RequestHandler, Response } from "express";
import { badInput } from "../common/errors";
import type { RequestContext } from "../context/request-context";
import { HttpError } from "./errors";

/** Small pieces every REST route shares: the request's context, query parameters, body checks. */

export const ctxOf = (res: Response): RequestContext => res.locals.ctx as RequestContext;

/** What a route's key must allow: reading or writing tenant data, or handing over from the SIP engine (INGEST or ADMIN). */
export type Access = "read" | "write" | "ingest";

/** A query parameter as sent (a repeated one is an array, for the service to refuse); empty counts as absent, as in Laravel. */
export const param = (value: unknown): unknown => (value === "" ? undefined : value);

/** Digits become a number; anything else becomes NaN for the service to refuse with its message. */
export function integerParam(value: unknown): number | undefined {
  const text = param(value);
  if (text === undefined) return undefined;
  return typeof text === "string" && /^[0-9]{1,10}$/.test(text) ? Number(text) : Number.NaN;
}

/** A boolean query parameter as Laravel's boolean rule reads it (`force`, `dry_run`). */
export function booleanParam(value: unknown, name: string): boolean {
  const text = param(value);
  if (text === undefined || text === "false" || text === "0") return false;
  if (text === "true" || text === "1") return true;
  throw badInput({ [name]: [`The ${name.replace(/_/g, " ")} field must be true or false.`] });
}

/** A write with a body must send JSON; a body of another type would otherwise read as empty. */
export const jsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  if (hasBody && !req.is("application/json")) throw new HttpError(415, "The request body must be JSON (Content-Type: application/json).");
  next();
};

export const collectionPath = (req: Request): string => `${req.protocol}://${req.get("host")}${req.baseUrl}${req.path}`;
