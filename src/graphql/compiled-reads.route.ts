import type { RequestHandler } from "express";
import type { IncomingHttpHeaders } from "node:http";
import { getVariableValues, parse, specifiedRules, validate, type GraphQLSchema, type OperationDefinitionNode, type ValidationRule } from "graphql";
import { randomUUID } from "node:crypto";
import type { Principal } from "../auth/principal";
import { buildContext, type ContextDeps } from "../context/build-context";
import type { DbScope } from "../db/replica";
import { boundedOperationName, type Metrics } from "../observability/metrics";
import { compileRead, type CompiledRead, type PreparedRead } from "./compiled-reads";
import { assertComplexity, parseOptions, type QueryLimits } from "./limits";

interface Plan {
  read: CompiledRead;
  operation: OperationDefinitionNode;
  document: ReturnType<typeof parse>;
  operationName: string | null;
  /**
   * Per caller scope (role and tenant) and variables as sent: the request's statement, once the
   * variables were coerced, the complexity judged (it depends on nothing else) and the read
   * judged and built (it depends on nothing else either). A page asked again with the same
   * variables goes straight to the database.
   */
  prepared: Map<string, PreparedRead>;
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
 * once (the same rules as Apollo's, depth included); then, per distinct variables and caller scope,
 * its variables are coerced and its complexity judged exactly as Apollo does and its statement is
 * built (all three depend on nothing else, and were a measured share of a page's server time), and
 * any refusal, any unplannable document and any doubt at run time fall through to Apollo, which
 * answers as it always has.
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
        if (read && operation) plan = { read, operation, document, operationName, prepared: new Map() };
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
    const principal = await authenticate(headers.authorization);
    const ctx = buildContext(deps, principal, "graphql", requestId, db);
    const key = `${principal?.role ?? ""}\u0000${principal?.tenantId ?? ""}\u0000${JSON.stringify(inputs)}`;
    let prepared = plan.prepared.get(key);
    if (prepared === undefined) {
      const coerced = getVariableValues(schema, plan.operation.variableDefinitions ?? [], inputs, { maxErrors: 1 });
      if (coerced.errors) return null;
      try {
        assertComplexity(schema, plan.document, inputs, plan.operationName, limits);
      } catch {
        return null;
      }
      const judged = await plan.read.prepare(ctx, coerced.coerced);
      if (judged === null) return null;
      if (plan.prepared.size >= MAX_PLANS) plan.prepared.clear();
      plan.prepared.set(key, (prepared = judged));
    }
    // A query writes nothing: its reads may go to the replica (contract §14).
    db?.allowReplica();
    const text = await plan.read.execute(ctx, prepared);
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
