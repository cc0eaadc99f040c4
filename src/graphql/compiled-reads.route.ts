import type { RequestHandler } from "express";
import type { IncomingHttpHeaders } from "node:http";
import { getVariableValues, parse, specifiedRules, validate, type GraphQLSchema, type OperationDefinitionNode, type ValidationRule } from "graphql";
import { randomUUID } from "node:crypto";
import type { Principal } from "../auth/principal";
import { buildContext, type ContextDeps } from "../context/build-context";
import type { DbScope } from "../db/replica";
import { boundedOperationName, type Metrics } from "../observability/metrics";
import { compileRead, type CompiledRead } from "./compiled-reads";
import { assertComplexity, parseOptions, type QueryLimits } from "./limits";

interface Plan {
  read: CompiledRead;
  operation: OperationDefinitionNode;
  document: ReturnType<typeof parse>;
  operationName: string | null;
  /** Variables (as sent) whose complexity passed the limit: the estimate depends on nothing else. */
  withinLimits: Set<string>;
}

/** Distinct documents planned (or found unplannable) per process; past this they go to Apollo. */
const MAX_PLANS = 500;

/** Only plain JSON answers are served here; any other Accept (graphql-response+json, multipart) goes to Apollo. */
const plainJson = (accept: string | undefined) => accept === undefined || accept === "*/*" || accept === "application/json";

/** What a POST /graphql body may hold; anything else in it is Apollo's to judge. */
export interface GraphQLBody {
  query?: unknown;
  variables?: unknown;
  operationName?: unknown;
  extensions?: unknown;
}

/** Marks a request the compiled path already tried (and left to Apollo), so it is not planned twice. */
export const TRIED = Symbol("compiledReadTried");

export interface CompiledReads {
  /**
   * The response body of a plannable read, or null when Apollo must answer (unplannable, refused,
   * an error likely, any doubt). Counts the operation in the metrics when it answers.
   */
  /** `db`: the request's database scope (replica routing, contract §14), where the server has one. */
  answer(body: GraphQLBody | undefined, headers: IncomingHttpHeaders, requestId: string, db?: DbScope): Promise<string | null>;
  /** The same in front of Apollo inside Express (for requests the node:http front left to Express). */
  middleware: RequestHandler;
}

/**
 * Compiled reads over HTTP, in front of Apollo on POST /graphql. A document is parsed and validated
 * once (the same rules as Apollo's, depth included); then, per request, its variables are coerced
 * and its complexity judged exactly as Apollo does, and any refusal, any unplannable document and
 * any doubt at run time fall through to Apollo, which answers as it always has.
 */
export function compiledReads(
  schema: GraphQLSchema,
  deps: ContextDeps,
  options: { limits: QueryLimits; /** Apollo's own validationRules, run besides graphql's specified rules. */ validationRules: ValidationRule[] },
  metrics: Metrics,
  authenticate: (header: unknown) => Promise<Principal | null>,
): CompiledReads {
  const plans = new Map<string, Plan | null>();
  const { limits } = options;
  const rules = [...specifiedRules, ...options.validationRules];

  const planFor = (query: string, operationName: string | null): Plan | null => {
    const key = `${operationName ?? ""}\u0000${query}`;
    let plan = plans.get(key);
    if (plan !== undefined) return plan;
    plan = null;
    try {
      // Token-capped like Apollo's parser: a document past the cap falls through and is refused there.
      const document = parse(query, parseOptions(limits));
      if (validate(schema, document, rules).length === 0) {
        const read = compileRead(schema, document, operationName);
        const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === "OperationDefinition" && (!operationName || d.name?.value === operationName));
        if (read && operation) plan = { read, operation, document, operationName, withinLimits: new Set() };
      }
    } catch {
      plan = null;
    }
    if (plans.size < MAX_PLANS) plans.set(key, plan);
    return plan;
  };

  const answer = async (body: GraphQLBody | undefined, headers: IncomingHttpHeaders, requestId: string, db?: DbScope): Promise<string | null> => {
    if (
      !body || typeof body !== "object" || Array.isArray(body) || typeof body.query !== "string" || body.extensions !== undefined || !plainJson(headers.accept) ||
      (body.operationName !== undefined && body.operationName !== null && typeof body.operationName !== "string") ||
      (body.variables !== undefined && body.variables !== null && (typeof body.variables !== "object" || Array.isArray(body.variables)))
    ) {
      return null;
    }
    const plan = planFor(body.query, (body.operationName as string | null | undefined) ?? null);
    if (!plan) return null;
    const inputs = (body.variables ?? {}) as Record<string, unknown>;
    const coerced = getVariableValues(schema, plan.operation.variableDefinitions ?? [], inputs, { maxErrors: 1 });
    if (coerced.errors) return null;
    const inputsKey = JSON.stringify(inputs);
    if (!plan.withinLimits.has(inputsKey)) {
      try {
        assertComplexity(schema, plan.document, inputs, plan.operationName, limits);
      } catch {
        return null;
      }
      if (plan.withinLimits.size >= MAX_PLANS) plan.withinLimits.clear();
      plan.withinLimits.add(inputsKey);
    }
    // A query writes nothing: its reads may go to the replica (contract §14).
    db?.allowReplica();
    const ctx = buildContext(deps, await authenticate(headers.authorization), "graphql", requestId, db);
    const text = await plan.read.run(ctx, coerced.coerced);
    if (text === null) return null;
    metrics.graphqlOperations.inc({ operation: boundedOperationName(plan.operation.name?.value), type: "query", outcome: "success", transport: "http" });
    return text;
  };

  const middleware: RequestHandler = (req, res, next) => {
    if (req.method !== "POST" || (req as unknown as Record<symbol, boolean>)[TRIED]) return next();
    answer(req.body as GraphQLBody | undefined, req.headers, String(res.locals.requestId ?? randomUUID()), res.locals.db as DbScope | undefined).then(
      (text) => {
        if (text === null) return next();
        res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
        res.end(text);
      },
      // Any doubt goes to Apollo, unless this path already answered.
      () => {
        if (!res.headersSent) next();
      },
    );
  };

  return { answer, middleware };
}
