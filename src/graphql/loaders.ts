import type { WaitingCall } from "../modules/queue/waiting-call.type";
import DataLoader from "dataloader";
import type { RequestContext } from "../context/request-context";
import { EXTENSION_COLUMNS, type ExtensionListArgs, type ExtensionRow } from "../modules/extension/extension.service";
import type { Tenant } from "../modules/tenant/tenant.entity";
import { DEVICE_COLUMNS, type DeviceRow } from "../modules/device/device.service";
import { AVAILABLE_SINCE_SQL, QUEUE_COLUMNS, type QueueAgentRow, type QueueRow } from "../modules/queue/queue.service";
import type { ActiveCallRow } from "../modules/active-call/active-call.service";
import type { QueueStatsRow } from "../modules/queue/queue-stats.service";
import type { CdrQuery, CdrRow } from "../modules/cdr/cdr.service";
import type { CdrStatsQuery } from "../modules/cdr/cdr-stats.service";
import type { CdrStatsBucket } from "../modules/cdr/cdr-stats.type";
import type { VoicemailQuery, VoicemailRow, VoicemailSummary } from "../modules/voicemail/voicemail.service";
import { VOICEMAIL_COLUMNS } from "../modules/voicemail/voicemail.service";
import type { ConnectionPage } from "./connection";
import { readRows } from "../db/read";
import type { Webhook } from "../modules/webhook/webhook.types";
import { TRUNK_COLUMNS } from "../modules/trunk/trunk.service";
import type { Trunk } from "../modules/trunk/trunk.types";

const TENANT_COLUMNS = `id, name, slug, sip_domain AS "sipDomain", max_extensions AS "maxExtensions", timezone,
  default_caller_id_number AS "defaultCallerIdNumber", max_outbound_calls AS "maxOutboundCalls",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

/** Loads rows by id with one `= ANY($1)` query per batch, answering in key order. */
function byId<T extends { id: number }>(ctx: RequestContext, sql: string): DataLoader<number, T | null> {
  return new DataLoader<number, T | null>(async (ids) => {
    const rows: T[] = await readRows<T>({ dataSource: ctx.dataSource, manager: ctx.dataSource.manager }, sql, [ids]);
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
  /** Trunks by id, whoever may see them (callers check the tenant). */
  trunk: DataLoader<number, Trunk | null>;
  extension: DataLoader<number, ExtensionRow | null>;
  extensionsByTenant: DataLoader<{ parentId: number; args: ExtensionListArgs }, ConnectionPage<ExtensionRow>, string>;
  queue: DataLoader<number, QueueRow | null>;
  queuesByTenant: DataLoader<number, QueueRow[]>;
  agentsByQueue: DataLoader<number, QueueAgentRow[]>;
  queueStats: DataLoader<number, QueueStatsRow | null>;
  waitingCallsByQueue: DataLoader<number, WaitingCall[]>;
  membershipsByExtension: DataLoader<number, QueueAgentRow[]>;
  device: DataLoader<number, DeviceRow | null>;
  devicesByExtension: DataLoader<number, DeviceRow[]>;
  registeredByExtension: DataLoader<number, boolean>;
  cdrsByTenant: DataLoader<{ parentId: number; args: CdrQuery }, ConnectionPage<CdrRow>, string>;
  cdrsByExtension: DataLoader<{ parentId: number; args: CdrQuery }, ConnectionPage<CdrRow>, string>;
  cdrStatsByTenant: DataLoader<{ parentId: number; args: CdrStatsQuery }, CdrStatsBucket[], string>;
  activeCallsByTenant: DataLoader<number, ActiveCallRow[]>;
  activeCallsByExtension: DataLoader<number, ActiveCallRow[]>;
  voicemailMessage: DataLoader<number, VoicemailRow | null>;
  voicemailByExtension: DataLoader<{ parentId: number; args: VoicemailQuery }, ConnectionPage<VoicemailRow>, string>;
  voicemailSummaryByExtension: DataLoader<number, VoicemailSummary>;
  cdrOfCall: DataLoader<{ tenantId: number; extensionId: number; callId: string }, CdrRow | null, string>;
  webhooksByTenant: DataLoader<number, Webhook[]>;
  agentAvailableSince: DataLoader<number, { id: number; since: Date | null } | null>;
}

/**
 * Per-request batch loaders. They read through the data source's own manager, never inside a
 * transaction (with the embedded engine's single connection that would wait on itself).
 */
export function createLoaders(ctx: RequestContext): Loaders {
  const manager = ctx.dataSource.manager;
  return {
    tenant: byId<Tenant>(ctx, `SELECT ${TENANT_COLUMNS} FROM tenant WHERE id = ANY($1::int[])`),
    trunk: byId<Trunk>(ctx, `SELECT ${TRUNK_COLUMNS} FROM trunk t WHERE t.id = ANY($1::int[])`),
    extension: byId<ExtensionRow>(ctx, `SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE e.id = ANY($1::int[])`),
    extensionsByTenant: groupedByArgs((tenantIds, args: ExtensionListArgs) =>
      ctx.services.extensions.listForTenants({ ...ctx, manager }, tenantIds, args),
    ),
    queue: byId<QueueRow>(ctx, `SELECT ${QUEUE_COLUMNS} FROM queue q WHERE q.id = ANY($1::int[])`),
    queuesByTenant: new DataLoader((ids) => ctx.services.queues.listForTenants({ ...ctx, manager }, ids)),
    webhooksByTenant: new DataLoader((ids) => ctx.services.webhooks.listForTenants({ ...ctx, manager }, ids)),
    agentsByQueue: new DataLoader((ids) => ctx.services.queues.agentsOfQueues({ ...ctx, manager }, ids)),
    agentAvailableSince: byId(ctx, `SELECT a.id, ${AVAILABLE_SINCE_SQL} AS since FROM queue_agent a WHERE a.id = ANY($1::int[])`),
    queueStats: new DataLoader((ids) => ctx.services.queueStats.compute(manager, ids)),
    waitingCallsByQueue: new DataLoader((ids) => ctx.services.queueStats.waitingOf(manager, ids)),
    membershipsByExtension: new DataLoader((ids) => ctx.services.queues.membershipsOfExtensions({ ...ctx, manager }, ids)),
    device: byId<DeviceRow>(ctx, `SELECT ${DEVICE_COLUMNS} FROM device d WHERE d.id = ANY($1::int[])`),
    devicesByExtension: new DataLoader((ids) => ctx.services.devices.listForExtensions({ ...ctx, manager }, ids)),
    registeredByExtension: new DataLoader((ids) => ctx.services.devices.registeredAmong({ ...ctx, manager }, ids)),
    cdrsByTenant: groupedByArgs((ids, args: CdrQuery) => ctx.services.cdrs.pagesFor({ ...ctx, manager }, { kind: "tenant", ids }, args)),
    cdrsByExtension: groupedByArgs((ids, args: CdrQuery) => ctx.services.cdrs.pagesFor({ ...ctx, manager }, { kind: "extension", ids }, args)),
    cdrStatsByTenant: groupedByArgs((ids, args: CdrStatsQuery) => ctx.services.cdrStats.forTenants({ ...ctx, manager }, ids, args)),
    activeCallsByTenant: new DataLoader((ids) => ctx.services.activeCalls.listForTenants({ ...ctx, manager }, ids)),
    activeCallsByExtension: new DataLoader((ids) => ctx.services.activeCalls.listForExtensions({ ...ctx, manager }, ids)),
    voicemailMessage: byId<VoicemailRow>(ctx, `SELECT ${VOICEMAIL_COLUMNS} FROM voicemail_message m WHERE m.id = ANY($1::int[])`),
    voicemailByExtension: groupedByArgs((ids, args: VoicemailQuery) => ctx.services.voicemail.pagesFor({ ...ctx, manager }, ids, args)),
    voicemailSummaryByExtension: new DataLoader((ids) => ctx.services.voicemail.summaries({ dataSource: ctx.dataSource, manager }, ids)),
    cdrOfCall: new DataLoader((keys) => ctx.services.cdrs.legsOfCalls({ ...ctx, manager }, keys), {
      cacheKeyFn: (key) => `${key.tenantId}:${key.extensionId}:${key.callId}`,
    }),
  };
}
