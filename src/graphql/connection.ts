import { Field, Int, ObjectType, type ClassType } from "type-graphql";
import { badInput } from "../common/errors";
import { parseJson } from "../common/json";

export const MAX_PAGE_SIZE = 100;
/** Cost of a connection's totalCount in the query-complexity estimate: a COUNT statement of its own. */
export const TOTAL_COUNT_COST = 100;
export const DEFAULT_PAGE_SIZE = 20;

@ObjectType({ simpleResolvers: true })
export class PageInfo {
  @Field()
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}

/** Opaque keyset cursors: the sort values of a row, versioned, base64url. */
export function encodeCursor(values: Array<string | number>): string {
  return Buffer.from(JSON.stringify(["v1", ...values]), "utf8").toString("base64url");
}

export function decodeCursor(cursor: string, shape: Array<"string" | "number">, field = "after"): Array<string | number> {
  const refuse = () => badInput({ [field]: ["The cursor is invalid."] });
  let parsed: unknown;
  try {
    parsed = parseJson(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw refuse();
  }
  if (!Array.isArray(parsed) || parsed[0] !== "v1" || parsed.length !== shape.length + 1) throw refuse();
  const values = parsed.slice(1);
  values.forEach((v, i) => {
    const ok = shape[i] === "number" ? Number.isSafeInteger(v) : typeof v === "string";
    if (!ok) throw refuse();
  });
  return values;
}

/** Validates `first`: 0 to 100, default 20. */
export function pageSize(first: number | null | undefined, field = "first"): number {
  if (first === null || first === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE_SIZE) {
    throw badInput({ [field]: [`The ${field} argument must be between 0 and ${MAX_PAGE_SIZE}.`] });
  }
  return first;
}

/**
 * One page of a Relay connection. `rows` holds up to limit + 1 rows (the extra one only tells
 * whether a next page exists). totalCount is computed only when a client asks for it.
 */
export class ConnectionPage<T> {
  private readonly page: T[];

  constructor(
    rows: T[],
    private readonly limit: number,
    private readonly cursorOf: (row: T) => string,
    private readonly count: () => Promise<number>,
  ) {
    this.page = rows.slice(0, limit);
    this.hasNext = rows.length > limit;
  }

  private readonly hasNext: boolean;

  get nodes(): T[] {
    return this.page;
  }

  get edges(): Array<{ cursor: string; node: T }> {
    return this.page.map((node) => ({ cursor: this.cursorOf(node), node }));
  }

  get pageInfo(): PageInfo {
    const last = this.page[this.page.length - 1];
    return { hasNextPage: this.hasNext, endCursor: last === undefined ? null : this.cursorOf(last) };
  }

  get totalCount(): Promise<number> {
    return this.count();
  }
}

/** Declares the `<Name>Edge` and `<Name>Connection` GraphQL types for a node type. */
export function connectionType<T extends object>(node: ClassType<T>, name: string) {
  @ObjectType(`${name}Edge`, { simpleResolvers: true })
  class Edge {
    @Field()
    cursor!: string;

    @Field(() => node)
    node!: T;
  }

  @ObjectType(`${name}Connection`, { simpleResolvers: true })
  class Connection {
    @Field(() => [Edge])
    edges!: Edge[];

    @Field(() => [node])
    nodes!: T[];

    @Field(() => PageInfo)
    pageInfo!: PageInfo;

    @Field(() => Int, { description: "Counted only when asked for.", complexity: TOTAL_COUNT_COST })
    totalCount!: number;
  }
  return Connection;
}

/**
 * Cost estimate for a connection field: its page size times the cost of one item. A `first` out of
 * range counts as the largest page: the resolver refuses it with its own field error.
 */
export const connectionComplexity = ({ args, childComplexity }: { args: Record<string, unknown>; childComplexity: number }): number =>
  1 + childComplexity * (typeof args.first === "number" ? Math.min(Math.max(args.first, 0), MAX_PAGE_SIZE) : DEFAULT_PAGE_SIZE);
