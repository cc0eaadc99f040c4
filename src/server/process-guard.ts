import type { Logger } from "../common/logger";
import { requestScope, type RequestScope } from "./request-scope";

/** Answers the request a failure belongs to, unless it already answered. */
function answer500(scope: RequestScope): void {
  const { res } = scope;
  if (res.headersSent) {
    // Half an answer cannot be completed truthfully: cut the connection so the client sees a failure.
    if (!res.writableEnded) res.destroy();
    return;
  }
  const body = JSON.stringify({ message: "Server Error" });
  res.writeHead(500, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/**
 * One request must never end the process. An unhandled rejection is logged (with its request id
 * when it happened while serving one, whose answer is then a 500) and the process keeps serving.
 * An uncaught exception raised while serving a request is treated the same way: it belongs to that
 * request's own work (a stream's "error" nobody listened to, a throw in its callback). One outside
 * any request (a timer of the process itself) still ends the process, as Node would: nothing
 * bounds what it left half done, and a supervisor (or the cluster primary) starts a fresh one.
 */
export function guardProcess(log: Logger): void {
  process.on("unhandledRejection", (reason) => {
    const scope = requestScope.getStore();
    log.error({ err: reason, requestId: scope?.requestId }, "unhandled promise rejection; the process keeps serving");
    if (scope) answer500(scope);
  });
  process.on("uncaughtException", (error, origin) => {
    const scope = requestScope.getStore();
    if (!scope) {
      log.fatal({ err: error, origin }, "uncaught exception outside any request; exiting");
      process.exit(1);
    }
    log.error({ err: error, requestId: scope.requestId }, "uncaught exception while serving a request; the process keeps serving");
    answer500(scope);
  });
}
