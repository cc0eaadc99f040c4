import {
  GraphQLError,
  getOperationAST,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from "graphql";
import { getVariableValues } from "graphql/execution/values";
import { redactVariables, sensitiveVariables } from "../common/redact";
import { assertComplexity, depthRule, parseOptions, type QueryLimits } from "./limits";

export interface OperationRequest {
  query?: unknown;
  variables?: unknown;
  operationName?: unknown;
}

export interface PreparedOperation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  operationName: string | undefined;
  variableValues: Record<string, unknown> | undefined;
}

/** A refusal of the client's request, with the code Apollo Server gives the same mistake over HTTP. */
export function clientError(message: string, code: string, extra: Record<string, unknown> = {}, original?: GraphQLError): GraphQLError {
  return new GraphQLError(message, {
    nodes: original?.nodes,
    source: original?.source,
    positions: original?.positions,
    extensions: { ...extra, code },
  });
}

/**
 * Everything that happens to an operation before it runs, for transports Apollo does not serve
 * (graphql-ws): parse (token-capped), validate (with the depth rule), pick the operation, coerce
 * the variables, check the cost. Each failure is the client's, answered with Apollo's code for it
 * (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, OPERATION_RESOLUTION_FAILURE, BAD_USER_INPUT,
 * BAD_REQUEST); a variable's write-only value is never echoed.
 */
export function prepareOperation(schema: GraphQLSchema, request: OperationRequest, limits: QueryLimits): PreparedOperation | GraphQLError[] {
  if (typeof request.query !== "string" || request.query.trim() === "") return [clientError("The operation has no query document.", "BAD_REQUEST")];
  if (request.operationName !== undefined && request.operationName !== null && typeof request.operationName !== "string") return [clientError("operationName must be a string.", "BAD_REQUEST")];
  if (request.variables !== undefined && request.variables !== null && (typeof request.variables !== "object" || Array.isArray(request.variables))) {
    return [clientError("variables must be an object.", "BAD_REQUEST")];
  }
  let document: DocumentNode;
  try {
    document = parse(request.query, parseOptions(limits));
  } catch (error) {
    if (error instanceof GraphQLError) return [clientError(error.message, "GRAPHQL_PARSE_FAILED", {}, error)];
    return [clientError("The query document could not be parsed.", "GRAPHQL_PARSE_FAILED")];
  }
  const invalid = validate(schema, document, [...specifiedRules, depthRule(limits)]);
  if (invalid.length) return invalid.map((e) => clientError(e.message, "GRAPHQL_VALIDATION_FAILED", {}, e));
  const operationName = (request.operationName as string | null | undefined) ?? undefined;
  const operation = getOperationAST(document, operationName);
  if (!operation) {
    return [clientError(operationName ? `Unknown operation named "${operationName}".` : "Must provide operation name if query contains multiple operations.", "OPERATION_RESOLUTION_FAILURE")];
  }
  const variableValues = (request.variables ?? undefined) as Record<string, unknown> | undefined;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variableValues ?? {}, { maxErrors: 50 });
  if (coerced.errors) {
    const sensitive = sensitiveVariables(document);
    return coerced.errors.map((e) => clientError(redactVariables(e.message, sensitive), "BAD_USER_INPUT", {}, e));
  }
  try {
    assertComplexity(schema, document, variableValues, operationName, limits);
  } catch (error) {
    if (error instanceof GraphQLError) return [error];
    throw error;
  }
  return { document, operation, operationName, variableValues };
}
