import { Router } from "express";
import type { RestDeps } from "./deps";

/** The REST adapter (`/api/...`): thin routes over the same services as GraphQL. */
export function createRestRouter(_deps: RestDeps): Router {
  const router = Router();
  return router;
}
