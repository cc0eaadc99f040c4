import DataLoader from "dataloader";
import type { EntityManager } from "typeorm";
import type { RequestContext } from "../context/request-context";
import { EXTENSION_COLUMNS, type ExtensionListArgs, type ExtensionRow } from "../modules/extension/extension.service";
import type { Tenant } from "../modules/tenant/tenant.entity";
import type { ConnectionPage } from "./connection";

const TENANT_COLUMNS = `id, name, slug, sip_domain AS "sipDomain", max_extensions AS "maxExtensions",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

/** Loads rows by id with one `= ANY($1)` query per batch, answering in key order. */
function byId<T extends { id: number }>(manager: EntityManager, sql: string): DataLoader<number, T | null> {
  return new DataLoader<number, T | null>(async (ids) => {
    const rows: T[] = await manager.query(sql, [ids]);
    const map = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => map.get(id) ?? null);
  });
}

/**
 * Groups keyed loads by their (JSON) arguments, so every parent that asked with the same arguments
 * is answered by one batched call.
 */
function groupedByArgs<A, V>(load: (parentIds: number[], args: A) => Promise<V[]>): DataLoader<{ parentId: number; args: A }, V, string> {
  return new DataLoader<{ parentId: number; args: A }, V, string>(
    async (keys) => {
      const groups = new Map<string, { args: A; indexes: number[]; ids: number[] }>();
      keys.forEach((key, index) => {
        const argKey = JSON.stringify(key.args);
        let group = groups.get(argKey);
        if (!group) groups.set(argKey, (group = { args: key.args, indexes: [], ids: [] }));
        group.indexes.push(index);
        group.ids.push(key.parentId);
      });
      const out = new Array<V>(keys.length);
      await Promise.all(
        [...groups.values()].map(async (group) => {
          const values = await load(group.ids, group.args);
          group.indexes.forEach((index, i) => (out[index] = values[i]));
        }),
      );
      return out;
    },
    { cacheKeyFn: (key) => `${key.parentId}:${JSON.stringify(key.args)}` },
  );
}

export interface Loaders {
  tenant: DataLoader<number, Tenant | null>;
  extension: DataLoader<number, ExtensionRow | null>;
  extensionsByTenant: DataLoader<{ parentId: number; args: ExtensionListArgs }, ConnectionPage<ExtensionRow>, string>;
}

/**
 * Per-request batch loaders. They read through the data source's own manager, never inside a
 * transaction (with the embedded engine's single connection that would wait on itself).
 */
export function createLoaders(ctx: RequestContext): Loaders {
  const manager = ctx.dataSource.manager;
  return {
    tenant: byId<Tenant>(manager, `SELECT ${TENANT_COLUMNS} FROM tenant WHERE id = ANY($1::int[])`),
    extension: byId<ExtensionRow>(manager, `SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE e.id = ANY($1::int[])`),
    extensionsByTenant: groupedByArgs((tenantIds, args: ExtensionListArgs) =>
      ctx.services.extensions.listForTenants({ ...ctx, manager }, tenantIds, args),
    ),
  };
}
