import { GraphQLError, type DocumentNode, type GraphQLSchema } from "graphql";
import depthLimit from "graphql-depth-limit";
import { fieldExtensionsEstimator, getComplexity, simpleEstimator } from "graphql-query-complexity";

export interface QueryLimits {
  maxDepth: number;
  maxComplexity: number;
}

export function depthRule(limits: QueryLimits) {
  return depthLimit(limits.maxDepth);
}

/**
 * Refuses operations whose estimated cost is above the limit. Connection fields declare their cost
 * as `first × child cost` (see connectionComplexity); other lists count as 10 items.
 */
export function assertComplexity(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
  operationName: string | undefined | null,
  limits: QueryLimits,
): void {
  let complexity: number;
  try {
    complexity = getComplexity({
      schema,
      query: document,
      variables: variables ?? {},
      operationName: operationName ?? undefined,
      estimators: [fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })],
    });
  } catch (error) {
    // Variables that do not coerce (a malformed DateTime, a string for an Int): nothing can run, and
    // execution refuses them next with BAD_USER_INPUT. Thrown from here they would become a 500.
    if (error instanceof GraphQLError) return;
    throw error;
  }
  if (complexity > limits.maxComplexity) {
    throw new GraphQLError(`The query is too complex: ${complexity} exceeds the limit of ${limits.maxComplexity}.`, {
      extensions: { code: "BAD_USER_INPUT", complexity, maxComplexity: limits.maxComplexity },
    });
  }
}
