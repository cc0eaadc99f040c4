import {
  getArgumentValues,
  getNamedType,
  getNullableType,
  GraphQLEnumType,
  GraphQLList,
  GraphQLObjectType,
  Kind,
  type DocumentNode,
  type FieldNode,
  type GraphQLField,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";
import { canRead, parseId, readScope } from "../auth/access";
import type { RequestContext } from "../context/request-context";
import { readRows } from "../db/read";
import { SqlParams } from "../db/sql";
import { DEVICE_ORDER, REGISTERED_NOW } from "../modules/device/device.service";
import type { CdrPageArgs } from "../modules/cdr/cdr.inputs";
import { cdrStatsOfTenantSql } from "../modules/cdr/cdr-stats.service";
import type { CdrStatsArgs } from "../modules/cdr/cdr-stats.type";
import { AVAILABLE_SINCE_SQL, MEMBERSHIP_ORDER } from "../modules/queue/queue.service";
import type { ExtensionListArgs } from "../modules/extension/extension.service";
import { decodeCursor, pageSize } from "./connection";

/**
 * Compiled reads: a read-only document whose every field this module can express in SQL is planned
 * once, and each request then runs ONE statement that builds the response's `data` JSON in
 * PostgreSQL with only the selected fields, whose text goes to the client as it is (no rows become
 * JS objects, no per-field resolvers, no re-serialisation). This is how PostGraphile plans a query.
 *
 * Only the success path is compiled. Whatever could answer an error (a caller without access, an
 * invalid argument, a row that does not exist) is judged first by the same functions the resolvers
 * use, and on any doubt the request goes to Apollo unchanged (`null` below): errors, their codes and
 * messages stay exactly those of the resolvers.
 */

/** SQL of one row as a JSON object; `a` is the row's alias. */
type Emit = (p: SqlParams, ctx: RequestContext, vars: Record<string, unknown>) => string;

/** Thrown while compiling: the document needs a field or feature this module does not plan. */
class Unsupported extends Error {}
/** Thrown while running: this request must be answered by the resolvers (an error is likely). */
class Fallback extends Error {}

const unsupported = (why: string): never => {
  throw new Unsupported(why);
};
const fallback = (): never => {
  throw new Fallback();
};

/** JS `toISOString()` of a timestamptz: milliseconds (truncated, as the driver's Date), UTC, "Z". */
const isoSql = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** Per GraphQL type: its table alias, and the SQL column of every scalar field it can emit. */
interface TypeSpec {
  alias: string;
  columns: Record<string, string>;
  /** Fields that are relations, compiled by their own function. */
  relations?: Record<string, (field: GraphQLField<unknown, unknown>, node: FieldNode, sel: Selector) => Emit>;
}

/**
 * One row of a type: `object` is its JSON object (json_build_object), `columns` the same fields as a
 * select list (`expr AS "key", …`) for json_agg over a subquery's rows, which PostgreSQL serializes
 * without json_build_object's per-argument type lookups (about a fifth of a page's statement time);
 * null when a key cannot be a column name (PostgreSQL truncates identifiers past 63 bytes).
 */
interface Row {
  object: Emit;
  columns: Emit | null;
}

type Selector = (typeName: string, set: SelectionSetNode | undefined) => Row;

const TYPES: Record<string, TypeSpec> = {
  Tenant: {
    alias: "t",
    columns: { id: "t.id", name: "t.name", slug: "t.slug", sipDomain: "t.sip_domain", maxExtensions: "t.max_extensions", timezone: "t.timezone", createdAt: "t.created_at", updatedAt: "t.updated_at" },
    relations: {
      extensions: (field, node, sel) => extensionConnection(field, node, sel, "tenant"),
      cdrStats: (field, node, sel) => {
        const row = sel("CdrStatsBucket", node.selectionSet);
        return (p, ctx, vars) => {
          const query = ctx.services.cdrStats.normalize(getArgumentValues(field, node, vars) as unknown as CdrStatsArgs);
          return `(SELECT coalesce(json_agg(${row.object(p, ctx, vars)} ORDER BY s.day), '[]'::json) FROM (${cdrStatsOfTenantSql(p.add(query.from), p.add(query.to))}) s)`;
        };
      },
    },
  },
  CdrStatsBucket: {
    alias: "s",
    columns: { day: "to_char(s.day, 'YYYY-MM-DD')", periodStart: `(s.day::timestamp AT TIME ZONE t.timezone)`, calls: "s.calls", answered: "s.answered", averageAnsweredSeconds: "s.avg" },
  },
  Extension: {
    alias: "e",
    columns: {
      id: "e.id", tenantId: "e.tenant_id", extensionNumber: "e.extension_number", displayName: "e.display_name", email: "e.email",
      status: "e.status", voicemailEnabled: "e.voicemail_enabled", hasSecret: "(e.secret_ciphertext IS NOT NULL)",
      createdAt: "e.created_at", updatedAt: "e.updated_at", registered: `EXISTS (SELECT 1 FROM device d WHERE d.extension_id = e.id AND ${REGISTERED_NOW})`,
    },
    relations: {
      devices: (_f, node, sel) => list(sel("Device", node.selectionSet), `FROM device d WHERE d.extension_id = e.id`, DEVICE_ORDER),
      queueMemberships: (_f, node, sel) => list(sel("QueueAgent", node.selectionSet), `FROM queue_agent a WHERE a.extension_id = e.id`, MEMBERSHIP_ORDER),
    },
  },
  Device: {
    alias: "d",
    columns: {
      id: "d.id", tenantId: "d.tenant_id", extensionId: "d.extension_id", contactUri: "d.contact_uri", userAgent: "d.user_agent",
      sourceAddress: "d.source_address", transport: "d.transport", registered: REGISTERED_NOW, registeredAt: "d.registered_at",
      expiresAt: "d.expires_at", unregisteredAt: "d.unregistered_at", createdAt: "d.created_at", updatedAt: "d.updated_at",
    },
  },
  QueueAgent: {
    alias: "a",
    columns: { id: "a.id", tenantId: "a.tenant_id", queueId: "a.queue_id", extensionId: "a.extension_id", penalty: "a.penalty", paused: "a.paused", pausedAt: "a.paused_at", availableSince: AVAILABLE_SINCE_SQL, createdAt: "a.created_at", updatedAt: "a.updated_at" },
    relations: {
      queue: (_f, node, sel) => {
        const row = sel("Queue", node.selectionSet);
        return (p, ctx, vars) => `(SELECT ${row.object(p, ctx, vars)} FROM queue q WHERE q.id = a.queue_id)`;
      },
    },
  },
  Queue: {
    alias: "q",
    columns: { id: "q.id", tenantId: "q.tenant_id", name: "q.name", number: "q.number", strategy: "q.strategy", serviceLevelSeconds: "q.service_level_seconds", agentRingSeconds: "q.agent_ring_seconds", maxWaitSeconds: "q.max_wait_seconds", createdAt: "q.created_at", updatedAt: "q.updated_at" },
  },
  Cdr: {
    alias: "c",
    columns: {
      id: "c.id", tenantId: "c.tenant_id", callId: "c.call_id", linkedId: "c.linked_id", extensionId: "c.extension_id", extensionNumber: "c.extension_number",
      direction: "c.direction", callerNumber: "c.caller_number", callerName: "c.caller_name", calleeNumber: "c.callee_number", queueId: "c.queue_id",
      startedAt: "c.started_at", answeredAt: "c.answered_at", endedAt: "c.ended_at", durationSeconds: "c.duration_seconds",
      billableSeconds: "c.billable_seconds", disposition: "c.disposition", hangupCause: "c.hangup_cause",
    },
  },
};

/**
 * A JSON array of rows in `order`: `rows` is a FROM clause (with WHERE) naming the alias the row
 * expects. With a select list, the rows are projected in order by a subquery and json_agg takes
 * them as they come (its input order is the subquery's: no aggregate sort, no json_build_object).
 */
function jsonArray(row: Row, rows: string, order: string): Emit {
  const { columns } = row;
  if (columns) return (p, ctx, vars) => `(SELECT coalesce(json_agg(r), '[]'::json) FROM (SELECT ${columns(p, ctx, vars)} ${rows} ORDER BY ${order}) r)`;
  return (p, ctx, vars) => `(SELECT coalesce(json_agg(${row.object(p, ctx, vars)} ORDER BY ${order}), '[]'::json) ${rows})`;
}

function list(row: Row, from: string, order: string): Emit {
  return jsonArray(row, from, order);
}

/** The SQL (JSON-valued) of a scalar field, formatted as the schema's scalar would serialize it. */
function scalarSql(field: GraphQLField<unknown, unknown>, column: string): string {
  const type = getNullableType(field.type);
  if (type instanceof GraphQLList) return unsupported(`list scalar ${field.name}`);
  if (type instanceof GraphQLEnumType) {
    const cases = type.getValues().map((v) => `WHEN ${literal(String(v.value))} THEN ${literal(v.name)}`);
    return `(CASE ${column} ${cases.join(" ")} END)`;
  }
  switch (getNamedType(field.type).name) {
    case "ID":
      return `(${column})::text`;
    case "DateTime":
      return isoSql(column);
    case "String":
    case "Int":
    case "Float":
    case "Boolean":
      return column;
    default:
      return unsupported(`scalar ${getNamedType(field.type).name}`);
  }
}

const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;

/** The plain fields of a selection set: no fragments, no directives, each response key once. */
function plainFields(set: SelectionSetNode | undefined): FieldNode[] {
  if (!set) return unsupported("no selection");
  const seen = new Set<string>();
  return set.selections.map((s) => {
    if (s.kind !== Kind.FIELD || s.directives?.length) return unsupported("fragment or directive");
    const key = s.alias?.value ?? s.name.value;
    if (seen.has(key) || !NAME.test(key)) unsupported("repeated response key");
    seen.add(key);
    return s;
  });
}

/** json_build_object of the selected fields of one row of `typeName`. */
function objectSelector(schema: GraphQLSchema): Selector {
  const select: Selector = (typeName, set) => {
    const spec = TYPES[typeName];
    const type = schema.getType(typeName);
    if (!spec || !(type instanceof GraphQLObjectType)) return unsupported(`type ${typeName}`);
    const fields = plainFields(set);
    // json_build_object takes at most 100 arguments
    if (fields.length > 50) unsupported("too many fields");
    const parts = fields.map((node): { key: string; sql: Emit } => {
      const key = node.alias?.value ?? node.name.value;
      if (node.name.value === "__typename") return { key, sql: () => `${literal(typeName)}::text` };
      const field = type.getFields()[node.name.value] ?? unsupported("unknown field");
      const relation = spec.relations?.[field.name];
      if (relation) return { key, sql: relation(field, node, select) };
      const column = spec.columns[field.name];
      if (column === undefined || field.args.length || node.arguments?.length) return unsupported(`field ${typeName}.${field.name}`);
      const sql = scalarSql(field, column);
      return { key, sql: () => sql };
    });
    const object: Emit = (p, ctx, vars) => `json_build_object(${parts.map((part) => `${literal(part.key)}, ${part.sql(p, ctx, vars)}`).join(", ")})`;
    // Keys are GraphQL names (letters, digits, underscore): quoted, they are column names as they are.
    const columns: Emit | null = parts.every((part) => Buffer.byteLength(part.key) <= 63)
      ? (p, ctx, vars) => parts.map((part) => `${part.sql(p, ctx, vars)} AS "${part.key}"`).join(", ")
      : null;
    return { object, columns };
  };
  return select;
}

interface PageSql {
  /**
   * The page's rows (alias: the node type's), in page order, and the count: built only when
   * selected, so that no parameter is bound that the statement does not use (PostgreSQL cannot
   * type an unused parameter; PGlite drops the connection over it).
   */
  page: () => string;
  count: () => string;
}

/**
 * The fields of a connection this module plans: nodes and totalCount. The page's SQL is the
 * caller's (judged per request); `order` repeats its order for json_agg.
 */
function connectionParts(node: FieldNode, sel: Selector, nodeType: string, order: string) {
  const parts = plainFields(node.selectionSet).map((f) => {
    const key = f.alias?.value ?? f.name.value;
    if (f.name.value === "__typename") return { key, kind: "typename" as const };
    if (f.name.value === "nodes") return { key, kind: "nodes" as const, row: sel(nodeType, f.selectionSet) };
    if (f.name.value === "totalCount") return { key, kind: "count" as const };
    return unsupported(`connection field ${f.name.value}`);
  });
  const typeName = `${nodeType}Connection`;
  return (p: SqlParams, ctx: RequestContext, vars: Record<string, unknown>, rows: PageSql): string => {
    const out = parts.map((part) => {
      if (part.kind === "typename") return `${literal(part.key)}, ${literal(typeName)}`;
      if (part.kind === "count") return `${literal(part.key)}, (${rows.count()})`;
      return `${literal(part.key)}, ${jsonArray(part.row, `FROM (${rows.page()}) ${TYPES[nodeType].alias}`, order)(p, ctx, vars)}`;
    });
    return `json_build_object(${out.join(", ")})`;
  };
}

/** `Tenant.extensions` (per tenant row `t`) and `Query.extensions` (scope judged by readScope). */
function extensionConnection(field: GraphQLField<unknown, unknown>, node: FieldNode, sel: Selector, parent: "tenant" | "root"): Emit {
  const connection = connectionParts(node, sel, "Extension", "e.id");
  return (p, ctx, vars) => {
    const args = getArgumentValues(field, node, vars) as ExtensionListArgs & { tenantId?: string | null };
    const limit = pageSize(args.first);
    const afterId = args.after ? (decodeCursor(args.after, ["number"])[0] as number) : null;
    const where: string[] = [];
    if (parent === "tenant") where.push(`e.tenant_id = t.id`);
    else {
      const scope = readScope(ctx, args.tenantId);
      if (scope !== null) where.push(`e.tenant_id = ${p.add(scope)}`);
    }
    ctx.services.extensions.addFilters(p, where, args);
    const count = () => `SELECT count(*)::int FROM extension e ${where.length ? `WHERE ${where.join(" AND ")}` : ""}`;
    const page = () => {
      const conditions = afterId === null ? where : [...where, `e.id > ${p.add(afterId)}`];
      return `SELECT e.* FROM extension e ${conditions.length ? `WHERE ${conditions.join(" AND ")}` : ""} ORDER BY e.id LIMIT ${p.add(limit)}`;
    };
    return connection(p, ctx, vars, { page, count });
  };
}

/** A root field: the SQL of its JSON (null: hand the request to the resolvers), after judging access. */
type Root = (p: SqlParams, ctx: RequestContext, vars: Record<string, unknown>) => Promise<string> | string;

function rootField(schema: GraphQLSchema, node: FieldNode, sel: Selector): Root {
  const query = schema.getQueryType()!;
  const field = query.getFields()[node.name.value] ?? unsupported("unknown root field");
  switch (field.name) {
    case "tenant": {
      const row = sel("Tenant", node.selectionSet);
      return (p, ctx, vars) => {
        const id = parseId((getArgumentValues(field, node, vars) as { id: string }).id);
        if (id === null || !canRead(ctx, id)) return fallback();
        return `(SELECT ${row.object(p, ctx, vars)} FROM tenant t WHERE t.id = ${p.add(id)})`;
      };
    }
    case "extensions":
      return extensionConnection(field, node, sel, "root");
    case "cdrs": {
      const connection = connectionParts(node, sel, "Cdr", "c.started_at DESC, c.id DESC");
      return async (p, ctx, vars) => {
        const { tenantId, ...args } = getArgumentValues(field, node, vars) as CdrPageArgs & { tenantId?: string | null };
        const scope = readScope(ctx, tenantId);
        const query = await ctx.services.cdrs.normalize(args);
        // An ADMIN naming no tenant, and the either-party number search, stay with the resolver.
        if (scope === null || query.number !== null) return fallback();
        const tenant = p.add(scope);
        const where = [`c.tenant_id = ${tenant}`, ...ctx.services.cdrs.conditions(p, query)];
        const count = () => `SELECT count(*)::int FROM cdr c WHERE ${where.join(" AND ")}`;
        const page = () => {
          const after = query.after;
          const keyset = after ? [`(c.started_at, c.id) < (${p.add(after[0])}::timestamptz, ${p.add(after[1])}::bigint)`] : [];
          const order = `ORDER BY c.started_at DESC, c.id DESC LIMIT ${p.add(query.limit)}`;
          if (query.extensionId === null) return `SELECT c.* FROM cdr c WHERE ${[...where, ...keyset].join(" AND ")} ${order}`;
          // One extension's page: its (extension_id, started_at DESC, id DESC) index walked newest first,
          // partition by partition, stopping after the page. The tenant is checked on the page's rows,
          // after the walk: inside it, the planner multiplied the two conditions' selectivities (the
          // extension decides the tenant), expected a handful of rows, and sorted every CDR of the
          // extension in the window, or walked the tenant's index instead. A CDR of another tenant
          // could only shorten the page, never show (the EXISTS below proves the extension is the tenant's).
          const own = where.filter((w) => w !== `c.tenant_id = ${tenant}`);
          return `SELECT c.* FROM (SELECT c.* FROM cdr c WHERE ${[...own, ...keyset].join(" AND ")} ${order}) c WHERE c.tenant_id = ${tenant}`;
        };
        const sql = connection(p, ctx, vars, { page, count });
        // The tenant (and a named extension, inside it) must exist, or the resolver answers NOT_FOUND.
        // One primary-key probe decides it (a named extension's tenant exists: its foreign key says
        // so); the page's own scan stays the only read of cdr (see test/e2e/cdr-page-plan.test.ts).
        const exists =
          query.extensionId === null
            ? `SELECT 1 FROM tenant x WHERE x.id = ${tenant}`
            : `SELECT 1 FROM extension x WHERE x.id = ${p.add(query.extensionId)} AND x.tenant_id = ${tenant}`;
        return `(SELECT ${sql} WHERE EXISTS (${exists}))`;
      };
    }
    default:
      return unsupported(`root field ${field.name}`);
  }
}

/** One request's statement: pure in the coerced variables and the caller's role and tenant. */
export interface PreparedRead {
  sql: string;
  values: unknown[];
}

export interface CompiledRead {
  /**
   * Judges the request (access, arguments) and builds its one statement, or null when the
   * resolvers must answer this request. Depends on nothing but the variables and the principal's
   * role and tenant, so a caller may keep the result for the same inputs.
   */
  prepare(ctx: RequestContext, variables: Record<string, unknown>): Promise<PreparedRead | null>;
  /** The response body (`{"data":…}`) of a prepared statement, or null when the resolvers must answer. */
  execute(ctx: RequestContext, prepared: PreparedRead): Promise<string | null>;
}

/** Plans a validated document, or returns null when any part of it is not plannable. */
export function compileRead(schema: GraphQLSchema, document: DocumentNode, operationName: string | null | undefined): CompiledRead | null {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations.length === 1 ? operations[0] : undefined;
  if (!operation || operation.operation !== "query" || operation.directives?.length) return null;
  if (document.definitions.some((d) => d.kind !== Kind.OPERATION_DEFINITION)) return null;
  let roots: Array<{ key: string; sql: Root }>;
  try {
    const sel = objectSelector(schema);
    roots = plainFields(operation.selectionSet).map((node) => {
      if (node.name.value.startsWith("__")) unsupported("introspection");
      return { key: node.alias?.value ?? node.name.value, sql: rootField(schema, node, sel) };
    });
  } catch (error) {
    if (error instanceof Unsupported) return null;
    throw error;
  }
  return {
    async prepare(ctx, variables) {
      const p = new SqlParams();
      // Every root is judged, and every judgement settles before the answer is chosen: a root that
      // throws at once (sync) must not leave another root's pending judgement to reject later with
      // no one listening — an unhandled rejection ends the process.
      const settled = await Promise.allSettled(roots.map(async (root) => root.sql(p, ctx, variables)));
      const columns: string[] = [];
      for (const outcome of settled) {
        // Access refused, an argument out of range, a cursor that does not decode: the resolvers
        // raise the same conditions with their codes, so they answer.
        if (outcome.status === "rejected") return null;
        columns.push(outcome.value);
      }
      const sql = `SELECT ${columns.map((c, i) => `${c}::text AS "${i}"`).join(", ")}`;
      // A parameter the statement never names cannot be typed (e.g. a filter under a selection of
      // only __typename): the resolvers answer such a request.
      if (new Set(sql.match(/\$\d+\b/g)).size !== p.values.length) return null;
      return { sql, values: p.values };
    },
    async execute(ctx, { sql, values }) {
      const [row] = await readRows<Record<string, string | null>>(ctx, sql, values);
      const parts: string[] = [];
      for (let i = 0; i < roots.length; i++) {
        const value = row[String(i)];
        if (value === null || value === undefined) return null;
        parts.push(`${JSON.stringify(roots[i].key)}:${value}`);
      }
      return `{"data":{${parts.join(",")}}}\n`;
    },
  };
}
