import {
  GraphQLError,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  getNamedType,
  isCompositeType,
  isInterfaceType,
  isObjectType,
  Kind,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  TypeNameMetaFieldDef,
  type ASTVisitor,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ParseOptions,
  type SelectionSetNode,
  type ValidationContext,
} from "graphql";
import { getArgumentValues, getDirectiveValues } from "graphql/execution/values";

export interface QueryLimits {
  maxDepth: number;
  maxComplexity: number;
  /** Lexical tokens the parser accepts in one document (bounds every later pass, fragment spreads included). */
  maxTokens: number;
}

/** A root query field reads the database (one statement at least), whatever it selects. */
export const ROOT_FIELD_COST = 100;

/** The parser's options: a document past the token cap is a syntax error before anything else runs. */
export const parseOptions = (limits: QueryLimits): ParseOptions => ({ maxTokens: limits.maxTokens });

/** The error a refused (too costly) operation carries: a client mistake, HTTP 400 as for validation. */
export function complexityError(complexity: number, maxComplexity: number): GraphQLError {
  const shown = Number.isFinite(complexity) ? String(complexity) : `more than ${maxComplexity}`;
  return new GraphQLError(`The query is too complex: ${shown} exceeds the limit of ${maxComplexity}.`, {
    extensions: { code: "BAD_USER_INPUT", complexity: Number.isFinite(complexity) ? complexity : null, maxComplexity, http: { status: 400 } },
  });
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}

/**
 * Depth of every operation, in one pass linear in the document: a fragment's depth is computed
 * once and reused wherever it is spread (a fragment spreading the next one twice, K deep, costs K,
 * not 2^K), and a fragment cycle counts as nothing here (NoFragmentCyclesRule reports it).
 * Introspection fields (`__schema`, `__type`) do not count, as with graphql-depth-limit.
 */
export function depthRule(limits: QueryLimits): (context: ValidationContext) => ASTVisitor {
  return (context) => ({
    Document(document) {
      const fragments = fragmentsOf(document);
      const memo = new Map<string, number>();
      const visiting = new Set<string>();
      const selectionDepth = (set: SelectionSetNode): number => {
        let depth = 0;
        for (const selection of set.selections) {
          if (selection.kind === Kind.FIELD) {
            if (selection.selectionSet && !selection.name.value.startsWith("__")) depth = Math.max(depth, 1 + selectionDepth(selection.selectionSet));
          } else if (selection.kind === Kind.INLINE_FRAGMENT) {
            depth = Math.max(depth, selectionDepth(selection.selectionSet));
          } else {
            depth = Math.max(depth, fragmentDepth(selection.name.value));
          }
        }
        return depth;
      };
      const fragmentDepth = (name: string): number => {
        const known = memo.get(name);
        if (known !== undefined) return known;
        const fragment = fragments.get(name);
        if (!fragment || visiting.has(name)) return 0;
        visiting.add(name);
        const depth = selectionDepth(fragment.selectionSet);
        visiting.delete(name);
        memo.set(name, depth);
        return depth;
      };
      for (const definition of document.definitions) {
        if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
        if (selectionDepth(definition.selectionSet) > limits.maxDepth) {
          context.reportError(
            new GraphQLError(`'${definition.name?.value ?? "anonymous"}' exceeds maximum operation depth of ${limits.maxDepth}`, { nodes: [definition] }),
          );
        }
      }
      return false;
    },
  });
}

type ComplexityEstimator = (options: { args: Record<string, unknown>; childComplexity: number }) => number;

/**
 * The estimated cost of one operation, linear in the document: each (fragment, type) is costed
 * once and reused wherever it is spread, and the sum saturates at `cap` + 1 (no 2^K arithmetic).
 * A field costs `extensions.complexity` when its resolver declares one (a number added to its
 * children, or a function of its arguments and children, e.g. `first × child` for connections),
 * else 1 + its children; a root query field adds ROOT_FIELD_COST for its database work.
 */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown>,
  operationName: string | undefined | null,
  cap: number,
): number {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations.length === 1 ? operations[0] : undefined;
  if (!operation) return 0;
  const rootType = operation.operation === "query" ? schema.getQueryType() : operation.operation === "mutation" ? schema.getMutationType() : schema.getSubscriptionType();
  if (!rootType) return 0;
  const fragments = fragmentsOf(document);
  const memo = new Map<string, number>();
  const visiting = new Set<string>();
  const limit = cap + 1;
  const add = (a: number, b: number) => Math.min(limit, a + b);

  const included = (node: FieldNode | SelectionSetNode["selections"][number]): boolean => {
    if (!node.directives?.length) return true;
    try {
      if (getDirectiveValues(GraphQLSkipDirective, node, variables)?.if === true) return false;
      if (getDirectiveValues(GraphQLIncludeDirective, node, variables)?.if === false) return false;
    } catch {
      // A directive argument that does not coerce: execution refuses it; count the field.
    }
    return true;
  };

  const fieldDef = (parent: GraphQLCompositeType, name: string): GraphQLField<unknown, unknown> | undefined => {
    if (name === "__typename") return TypeNameMetaFieldDef;
    if (parent === schema.getQueryType()) {
      if (name === "__schema") return SchemaMetaFieldDef;
      if (name === "__type") return TypeMetaFieldDef;
    }
    return isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[name] : undefined;
  };

  const fieldCost = (parent: GraphQLCompositeType, node: FieldNode, atRoot: boolean): number => {
    const def = fieldDef(parent, node.name.value);
    if (!def) return 1;
    const named = getNamedType(def.type);
    const childComplexity = node.selectionSet && isCompositeType(named) ? selectionCost(named, node.selectionSet, false) : 0;
    const declared = def.extensions?.complexity as number | ComplexityEstimator | undefined;
    let cost: number;
    if (typeof declared === "function") {
      let args: Record<string, unknown> = {};
      try {
        args = getArgumentValues(def, node, variables);
      } catch {
        // Arguments that do not coerce: execution refuses them with BAD_USER_INPUT; cost the defaults.
      }
      cost = declared({ args, childComplexity });
    } else if (typeof declared === "number") {
      cost = declared + childComplexity;
    } else {
      cost = 1 + childComplexity;
    }
    if (atRoot && operation.operation === "query" && !node.name.value.startsWith("__") && node.name.value !== "me") cost += ROOT_FIELD_COST;
    return Number.isFinite(cost) && cost >= 0 ? Math.min(limit, cost) : limit;
  };

  const selectionCost = (parent: GraphQLCompositeType, set: SelectionSetNode, atRoot: boolean): number => {
    let total = 0;
    for (const selection of set.selections) {
      if (total >= limit) return limit;
      if (!included(selection)) continue;
      if (selection.kind === Kind.FIELD) {
        total = add(total, fieldCost(parent, selection, atRoot));
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        if (type && isCompositeType(type)) total = add(total, selectionCost(type, selection.selectionSet, atRoot));
      } else {
        total = add(total, fragmentCost(selection.name.value, atRoot));
      }
    }
    return total;
  };

  const fragmentCost = (name: string, atRoot: boolean): number => {
    const key = `${name}\u0000${atRoot}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    const fragment = fragments.get(name);
    const type = fragment && schema.getType(fragment.typeCondition.name.value);
    if (!fragment || !type || !isCompositeType(type) || visiting.has(key)) return 0;
    visiting.add(key);
    const cost = selectionCost(type, fragment.selectionSet, atRoot);
    visiting.delete(key);
    memo.set(key, cost);
    return cost;
  };

  return selectionCost(rootType, operation.selectionSet, true);
}

/**
 * Refuses operations whose estimated cost is above the limit. Connection fields declare their cost
 * as `first × child cost` (see connectionComplexity); other lists count as their expected size.
 */
export function assertComplexity(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined | null,
  operationName: string | undefined | null,
  limits: QueryLimits,
): void {
  const complexity = operationCost(schema, document, variables ?? {}, operationName, limits.maxComplexity);
  if (complexity > limits.maxComplexity) {
    // The sum saturates at the limit + 1: past it the exact figure is not worth computing.
    throw complexityError(complexity === limits.maxComplexity + 1 ? Number.POSITIVE_INFINITY : complexity, limits.maxComplexity);
  }
}
