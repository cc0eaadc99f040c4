import { createHash } from "node:crypto";
import {
  astFromValue,
  getArgumentValues,
  getDirectiveValues,
  getNamedType,
  getOperationAST,
  getVariableValues,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  isObjectType,
  Kind,
  print,
  TypeNameMetaFieldDef,
  type ArgumentNode,
  type DocumentNode,
  type ExecutionArgs,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLObjectType,
  type SelectionNode,
  type SelectionSetNode,
} from "graphql";

/**
 * A subscription's selection with aliases, fragments, directives and variables taken out of the
 * way: each field sits under a canonical key (its name, plus a digest of its arguments when it
 * has any), so documents that differ only in aliases, fragments, spelling or field order select the
 * same canonical fields. Executing the union of every canonical selection of a feed once per event
 * and projecting each subscriber's shape from it makes an event's cost independent of how many
 * distinct documents watch it (issue 19 item 4, issue 26 item 4).
 */
export interface CanonicalField {
  name: string;
  /** The field's arguments as literals (variables substituted, defaults applied), absent when it has none. */
  arguments: readonly ArgumentNode[];
  children: CanonicalTree | null;
}
export type CanonicalTree = Map<string, CanonicalField>;

/** What the client asked for: its response keys in its order, each read from a canonical key. */
export interface ShapeEntry {
  key: string;
  canonical: string;
  sub: Shape | null;
}
export type Shape = readonly ShapeEntry[];

export interface NormalizedSubscription {
  /** The root field's canonical key and response key, and the shape below it. */
  root: ShapeEntry;
  /** The root field with its arguments (resume's `after` left out) and the canonical selection below it. */
  tree: CanonicalTree;
  /** The root field and its arguments: subscriptions that agree on it (and on scope) share one feed. */
  feedKey: string;
  /** The client's shape: equal keys render equal bytes. */
  shapeKey: string;
}

/** Thrown for a selection this module does not share (abstract types, unknown fragments): it runs as it is. */
class NotShareable extends Error {}

/**
 * Normalizes a validated subscription; undefined when it cannot be shared (then it is executed
 * on its own for each event, as before).
 */
export function normalizeSubscription(args: ExecutionArgs, dropRootArgument = "after"): NormalizedSubscription | undefined {
  const { schema, document } = args;
  const operation = getOperationAST(document, args.operationName ?? undefined);
  const rootType = schema.getSubscriptionType();
  if (!operation || operation.operation !== "subscription" || !rootType) return undefined;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], (args.variableValues ?? {}) as Record<string, unknown>);
  if (coerced.errors) return undefined;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  const variables = coerced.coerced;
  try {
    const tree: CanonicalTree = new Map();
    const shape = walk(operation.selectionSet, rootType, tree, { variables, fragments, dropRootArgument, atRoot: true });
    if (shape.length !== 1) return undefined;
    const root = shape[0];
    const rootField = tree.get(root.canonical)!;
    return {
      root,
      tree,
      feedKey: print({ kind: Kind.FIELD, name: { kind: Kind.NAME, value: rootField.name }, arguments: rootField.arguments }),
      shapeKey: JSON.stringify(shape),
    };
  } catch {
    // NotShareable, or anything this walk did not foresee: the document still runs, on its own.
    return undefined;
  }
}

interface WalkState {
  variables: Record<string, unknown>;
  fragments: Map<string, FragmentDefinitionNode>;
  dropRootArgument: string;
  atRoot: boolean;
}

/** The response keys of a selection set on an object type, in graphql-js's order, each with its field nodes. */
function collect(selectionSet: SelectionSetNode, type: GraphQLObjectType, state: WalkState, into = new Map<string, FieldNode[]>(), seen = new Set<string>()): Map<string, FieldNode[]> {
  for (const selection of selectionSet.selections) {
    if (!included(selection, state.variables)) continue;
    if (selection.kind === Kind.FIELD) {
      const key = selection.alias?.value ?? selection.name.value;
      const nodes = into.get(key);
      if (nodes) nodes.push(selection);
      else into.set(key, [selection]);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      if (selection.typeCondition && selection.typeCondition.name.value !== type.name) throw new NotShareable();
      collect(selection.selectionSet, type, state, into, seen);
    } else {
      const name = selection.name.value;
      if (seen.has(name)) continue;
      seen.add(name);
      const fragment = state.fragments.get(name);
      if (!fragment) throw new NotShareable();
      if (fragment.typeCondition.name.value !== type.name) throw new NotShareable();
      collect(fragment.selectionSet, type, state, into, seen);
    }
  }
  return into;
}

function included(node: SelectionNode, variables: Record<string, unknown>): boolean {
  if (getDirectiveValues(GraphQLSkipDirective, node, variables)?.if === true) return false;
  return getDirectiveValues(GraphQLIncludeDirective, node, variables)?.if !== false;
}

/** Adds a selection set's fields to `tree` (merging with what is there) and returns the client's shape of it. */
function walk(selectionSet: SelectionSetNode, type: GraphQLObjectType, tree: CanonicalTree, state: WalkState): Shape {
  const atRoot = state.atRoot;
  const shape: ShapeEntry[] = [];
  for (const [key, nodes] of collect(selectionSet, type, state)) {
    const first = nodes[0];
    const name = first.name.value;
    const field: GraphQLField<unknown, unknown> | undefined = name === "__typename" ? TypeNameMetaFieldDef : type.getFields()[name];
    if (!field) throw new NotShareable();
    const values = getArgumentValues(field, first, state.variables);
    const argumentNodes: ArgumentNode[] = [];
    for (const definition of field.args) {
      if (atRoot && definition.name === state.dropRootArgument) continue;
      const value = values[definition.name];
      if (value === undefined) continue;
      const literal = astFromValue(value, definition.type);
      if (!literal) throw new NotShareable();
      argumentNodes.push({ kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: definition.name }, value: literal });
    }
    const canonical = argumentNodes.length ? `${name}_${digest(argumentNodes)}` : name;
    let entry = tree.get(canonical);
    if (!entry) tree.set(canonical, (entry = { name, arguments: argumentNodes, children: null }));
    let sub: Shape | null = null;
    const named = getNamedType(field.type);
    if (nodes.some((n) => n.selectionSet)) {
      if (!isObjectType(named)) throw new NotShareable();
      entry.children ??= new Map();
      const merged: SelectionSetNode = { kind: Kind.SELECTION_SET, selections: nodes.flatMap((n) => n.selectionSet?.selections ?? []) };
      sub = walk(merged, named, entry.children, { ...state, atRoot: false });
    }
    shape.push({ key, canonical, sub });
  }
  return shape;
}

function digest(argumentNodes: readonly ArgumentNode[]): string {
  return createHash("sha1").update(argumentNodes.map((a) => print(a)).join(",")).digest("hex").slice(0, 16);
}

/** The one document that selects every field of `tree`, each under its canonical key, in a stable order. */
export function unionDocument(tree: CanonicalTree): DocumentNode {
  return {
    kind: Kind.DOCUMENT,
    definitions: [{ kind: Kind.OPERATION_DEFINITION, operation: "subscription" as never, selectionSet: selectionSetOf(tree) }],
  };
}

function selectionSetOf(tree: CanonicalTree): SelectionSetNode {
  const keys = [...tree.keys()].sort();
  return {
    kind: Kind.SELECTION_SET,
    selections: keys.map((canonical): FieldNode => {
      const field = tree.get(canonical)!;
      return {
        kind: Kind.FIELD,
        ...(canonical !== field.name ? { alias: { kind: Kind.NAME, value: canonical } } : {}),
        name: { kind: Kind.NAME, value: field.name },
        arguments: field.arguments,
        ...(field.children ? { selectionSet: selectionSetOf(field.children) } : {}),
      };
    }),
  };
}

/** Adds `from` into `into` (the union of the canonical selections of a feed's groups). */
export function mergeTree(into: CanonicalTree, from: CanonicalTree): void {
  for (const [canonical, field] of from) {
    const there = into.get(canonical);
    if (!there) {
      into.set(canonical, { ...field, children: field.children ? cloneTree(field.children) : null });
    } else if (field.children) {
      there.children ??= new Map();
      mergeTree(there.children, field.children);
    }
  }
}

function cloneTree(tree: CanonicalTree): CanonicalTree {
  const copy: CanonicalTree = new Map();
  mergeTree(copy, tree);
  return copy;
}

/** The client's view of a canonical value: its keys, its order, only what it selected. */
export function project(value: unknown, shape: Shape | null): unknown {
  if (value === null || value === undefined || shape === null) return value ?? null;
  if (Array.isArray(value)) return value.map((item) => project(item, shape));
  const source = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const entry of shape) out[entry.key] = project(source[entry.canonical], entry.sub);
  return out;
}
