import type { GraphQLResolveInfo } from "graphql";
import { parseResolveInfo, type ResolveTree } from "graphql-parse-resolve-info";
import type { RequestContext } from "../context/request-context";
import { DEVICE_COLUMNS, DEVICE_ORDER, REGISTERED_NOW, type DeviceRow } from "../modules/device/device.service";
import { QUEUE_AGENT_COLUMNS, QUEUE_COLUMNS, type QueueAgentRow, type QueueRow } from "../modules/queue/queue.service";

/** The relations of Extension that a page of extensions can bring along in its own SQL statement. */
export interface ExtensionPrefetch {
  devices: boolean;
  memberships: boolean;
  queues: boolean;
  registered: boolean;
}

const NONE: ExtensionPrefetch = { devices: false, memberships: false, queues: false, registered: false };

function children(tree: ResolveTree | undefined, typeName: string): Record<string, ResolveTree> {
  return (tree?.fieldsByTypeName[typeName] ?? {}) as Record<string, ResolveTree>;
}

/**
 * Looks ahead from an extensions connection field at what its nodes select. A page whose nodes ask
 * for devices or queue memberships fetches them in the page's own statement (as JSON) and primes the
 * per-request loaders with them, so the nested read costs one round trip instead of one per level.
 */
export function extensionPrefetch(info: GraphQLResolveInfo): ExtensionPrefetch {
  const tree = parseResolveInfo(info) as ResolveTree | null;
  if (!tree) return NONE;
  const connection = children(tree, "ExtensionConnection");
  const nodes = [...Object.values(connection).filter((f) => f.name === "nodes")];
  for (const edges of Object.values(connection).filter((f) => f.name === "edges")) {
    nodes.push(...Object.values(children(edges, "ExtensionEdge")).filter((f) => f.name === "node"));
  }
  const wanted = { ...NONE };
  for (const node of nodes) {
    for (const field of Object.values(children(node, "Extension"))) {
      if (field.name === "devices") wanted.devices = true;
      if (field.name === "registered") wanted.registered = true;
      if (field.name === "queueMemberships") {
        wanted.memberships = true;
        if (Object.values(children(field, "QueueAgent")).some((f) => f.name === "queue")) wanted.queues = true;
      }
    }
  }
  return wanted;
}

/** Extra select-list entries for `e` (an extension row) that carry the wanted relations as JSON. */
export function prefetchColumns(wanted: ExtensionPrefetch | undefined): string {
  if (!wanted) return "";
  const columns: string[] = [];
  if (wanted.devices) {
    columns.push(`(SELECT coalesce(json_agg(x), '[]'::json) FROM (SELECT ${DEVICE_COLUMNS} FROM device d
      WHERE d.extension_id = e.id ORDER BY ${DEVICE_ORDER}) x) AS "__devices"`);
  }
  if (wanted.memberships) {
    columns.push(`(SELECT coalesce(json_agg(x), '[]'::json) FROM (SELECT ${QUEUE_AGENT_COLUMNS} FROM queue_agent a
      WHERE a.extension_id = e.id ORDER BY a.id) x) AS "__memberships"`);
  }
  if (wanted.queues) {
    columns.push(`(SELECT coalesce(json_agg(x), '[]'::json) FROM (SELECT ${QUEUE_COLUMNS} FROM queue q
      WHERE q.id IN (SELECT a.queue_id FROM queue_agent a WHERE a.extension_id = e.id)) x) AS "__queues"`);
  }
  if (wanted.registered) columns.push(`EXISTS (SELECT 1 FROM device d WHERE d.extension_id = e.id AND ${REGISTERED_NOW}) AS "__registered"`);
  return columns.length ? `, ${columns.join(", ")}` : "";
}

const dates = <T extends object>(row: T, keys: ReadonlyArray<keyof T>): T => {
  for (const key of keys) {
    const value = row[key];
    if (typeof value === "string") (row as Record<keyof T, unknown>)[key] = new Date(value);
  }
  return row;
};

interface Prefetched {
  __devices?: DeviceRow[];
  __memberships?: QueueAgentRow[];
  __queues?: QueueRow[];
  __registered?: boolean;
}

/** Moves the prefetched relations of each row into the request's loaders, leaving plain extension rows. */
export function primeFromRows<T extends { id: number }>(ctx: RequestContext, rows: Array<T & Prefetched>): T[] {
  for (const row of rows) {
    const { __devices, __memberships, __queues, __registered } = row;
    if (__devices) {
      ctx.loaders.devicesByExtension.prime(row.id, __devices.map((d) => dates(d, ["registeredAt", "expiresAt", "unregisteredAt", "createdAt", "updatedAt"])));
      delete row.__devices;
    }
    if (__memberships) {
      ctx.loaders.membershipsByExtension.prime(row.id, __memberships.map((m) => dates(m, ["pausedAt", "createdAt", "updatedAt"])));
      delete row.__memberships;
    }
    if (__queues) {
      for (const queue of __queues) ctx.loaders.queue.prime(queue.id, dates(queue, ["createdAt", "updatedAt"]));
      delete row.__queues;
    }
    if (__registered !== undefined) {
      ctx.loaders.registeredByExtension.prime(row.id, __registered);
      delete row.__registered;
    }
  }
  return rows;
}
