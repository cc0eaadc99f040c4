import { AsyncLocalStorage } from "node:async_hooks";
import type { ServerResponse } from "node:http";

/**
 * The HTTP request a piece of work belongs to. Node runs `unhandledRejection` and
 * `uncaughtException` listeners in the async context of the failure, so the process guard
 * (process-guard.ts) finds here the request to log and to answer 500.
 */
export interface RequestScope {
  requestId: string;
  res: ServerResponse;
}

export const requestScope = new AsyncLocalStorage<RequestScope>();
