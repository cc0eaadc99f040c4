import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import type { Logger } from "../common/logger";
import { parseJson } from "../common/json";
import { TRIED, type CompiledReads, type GraphQLBody } from "../graphql/compiled-reads.route";
import type { Metrics } from "../observability/metrics";
import { requestScope } from "./request-scope";
import { READ_AFTER_HEADER, type DbScope } from "../db/replica";

/** Set on a response whose request id, metrics and log line the front already owns (Express must not add its own). */
export const FRONT_LOGGED = Symbol("frontLogged");

/** Set on a response the compiled path answered: its log line says `compiled: true`. */
const COMPILED = Symbol("compiledAnswer");

const REQUEST_ID = /^[\w.-]{1,128}$/;

/** The request id a client sent (when it is a plain token), else a fresh one: the same rule as Express's. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers["x-request-id"];
  return typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * Per request, once: the x-request-id header, the HTTP duration metric and the access log line, as
 * Express's request logging writes them (route "/graphql").
 */
export function logRequest(req: IncomingMessage, res: ServerResponse, requestId: string, log: Logger, metrics: Metrics, route?: () => string): void {
  const started = process.hrtime.bigint();
  res.setHeader("x-request-id", requestId);
  res.on("finish", () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.httpDuration.observe({ method: req.method ?? "", route: route ? route() : "/graphql", status: String(res.statusCode) }, seconds);
    const compiled = (res as unknown as Record<symbol, boolean>)[COMPILED] ? { compiled: true } : {};
    log.info({ requestId, method: req.method, url: (req.url ?? "").split("?")[0], status: res.statusCode, ms: Math.round(seconds * 1e4) / 10, ...compiled }, "request");
  });
}

/** application/json, with no charset or utf-8 (what express.json reads without a 415). */
function plainJsonBody(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const [type, ...params] = contentType.toLowerCase().split(";").map((s) => s.trim());
  if (type !== "application/json") return false;
  return params.every((p) => !p.startsWith("charset=") || p === "charset=utf-8" || p === 'charset="utf-8"');
}

function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The node:http front of POST /graphql: a plannable read (compiled-reads.ts) is answered here,
 * before Express, body parsing middleware, Apollo and its context are involved. It keeps what the
 * Express path guarantees: the request id (x-request-id), the HTTP duration metric and the access
 * log line, the operation metric, the process guard's request scope, the body limit
 * (BODY_LIMIT_BYTES), the same JSON refusals (400 for a malformed body), auth (the compiled read
 * judges access with the resolvers' own functions and leaves every refusal to them), depth,
 * complexity and token limits (judged by the planner exactly as Apollo judges them).
 *
 * Everything else reaches Express untouched: other paths and methods, other content types or
 * encodings, a body without Content-Length or over the limit (Express answers 413 as before)
 * — their streams are never read here. A read body that turns out not to be plannable goes on to
 * Express already parsed (body-parser sees a finished stream and keeps `req.body`), marked so that
 * the compiled path is not tried twice, with this request's id.
 */
export function graphqlFront(options: {
  reads: CompiledReads;
  bodyLimitBytes: number;
  log: Logger;
  metrics: Metrics;
  next: RequestListener;
  /** A request's database scope (replica routing, contract §14) on real PostgreSQL; none on PGlite. */
  dbScope?: () => DbScope;
}): RequestListener {
  const { reads, bodyLimitBytes, log, metrics, next, dbScope } = options;
  return (req, res) => {
    const length = req.headers["content-length"];
    if (
      req.method !== "POST" ||
      req.url !== "/graphql" ||
      length === undefined ||
      !(Number(length) <= bodyLimitBytes) ||
      !plainJsonBody(req.headers["content-type"]) ||
      (req.headers["content-encoding"] !== undefined && req.headers["content-encoding"].toLowerCase() !== "identity") ||
      // A read after a write (x-pbx-read-after) is Express's: it validates the position and waits for the replica.
      req.headers[READ_AFTER_HEADER] !== undefined
    ) {
      return next(req, res);
    }
    const requestId = requestIdOf(req);
    logRequest(req, res, requestId, log, metrics);
    (res as unknown as Record<symbol, string>)[FRONT_LOGGED] = requestId;
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("error", () => res.destroy());
    // Everything this request starts runs in its scope: the process guard finds it there.
    req.on("end", () =>
      requestScope.run({ requestId, res }, () => {
        let body: unknown;
        const text = Buffer.concat(chunks).toString("utf8");
        // express.json (strict): an empty body is no body; one that is not an object or array is malformed.
        if (text.trim() !== "") {
          const first = text.trimStart()[0];
          try {
            if (first !== "{" && first !== "[") throw new SyntaxError("not an object or array");
            body = parseJson(text);
          } catch {
            return sendJson(res, 400, JSON.stringify({ message: "The request body is not valid JSON." }));
          }
        }
        const toExpress = () => {
          (req as unknown as { body: unknown }).body = body;
          (req as unknown as Record<symbol, boolean>)[TRIED] = true;
          next(req, res);
        };
        reads.answer(body as GraphQLBody | undefined, req.headers, requestId, dbScope?.()).then(
          (answer) => {
            if (answer === null) return toExpress();
            (res as unknown as Record<symbol, boolean>)[COMPILED] = true;
            sendJson(res, 200, answer);
          },
          // Any doubt goes to Apollo, unless this path already answered.
          () => {
            if (!res.headersSent) toExpress();
          },
        );
      }),
    );
  };
}
