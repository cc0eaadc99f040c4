import { randomBytes } from "node:crypto";
import type { EntityManager } from "typeorm";
import { parseId, requireRole, writeScope } from "../../auth/access";
import { Role } from "../../auth/role";
import { badInput, notFound, type FieldErrors } from "../../common/errors";
import type { SecretBox } from "../../common/secret-box";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { transactional } from "../../db/transaction";
import { readRows } from "../../db/read";
import { groupBy } from "../../common/group-by";
import { createdChanges, deletedChanges, isEmpty, recordAudit, REDACTED, updatedChanges, type AuditSnapshot } from "../audit/audit";
import type { LoggedEvent, RelaySink } from "../../events/event-log";
import { ConnectionPage, decodeCursor, encodeCursor, pageSize } from "../../graphql/connection";
import { EVENT_KINDS } from "../../subscriptions/events";
import { resolveAllowed, UnsafeAddressError } from "./webhook-address";
import { CreateWebhookInput, UpdateWebhookInput, type Webhook, type WebhookDelivery, type WebhookDeliveryPageArgs } from "./webhook.types";

const WEBHOOK_COLUMNS = `w.id, w.tenant_id AS "tenantId", w.url, w.events, w.description, w.enabled, w.created_at AS "createdAt", w.updated_at AS "updatedAt"`;
export const DELIVERY_COLUMNS = `d.id::text AS id, d.webhook_id AS "webhookId", d.sequence::text AS sequence, d.event_type AS "eventType", d.status,
  d.attempts, d.response_status AS "responseStatus", d.error, d.created_at AS "createdAt", d.delivered_at AS "deliveredAt", d.next_attempt_at AS "nextAttemptAt"`;

export const webhookSecretAad = (tenantId: number) => `webhook-secret:${tenantId}`;
const newSecret = () => `whsec_${randomBytes(32).toString("base64url")}`;

/** A webhook's audited fields; the signing secret only ever as "[redacted]". */
function webhookSnapshot(webhook: Webhook): AuditSnapshot {
  return { url: webhook.url, events: webhook.events.join(","), description: webhook.description, enabled: webhook.enabled, secret: REDACTED };
}

/** Whether a webhook subscribed to this event name. */
export const wants = (events: string[], type: string) => events.includes("*") || events.includes(type);

/**
 * Webhooks and their deliveries (`webhook`, `webhook_delivery`): the only writer of both.
 * TENANT_ADMIN of the webhook's tenant or ADMIN; another tenant's id answers as not found.
 */
export class WebhookService {
  /** Called after a relay pass made deliveries, so they go out at once rather than at the next poll. */
  onDeliveries: () => void = () => undefined;

  constructor(
    private readonly secretBox: SecretBox,
    private readonly allowPrivate: boolean,
  ) {}

  async create(ctx: RequestContext, input: CreateWebhookInput): Promise<{ webhook: Webhook; secret: string }> {
    requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    const tenantId = writeScope(ctx, input.tenantId);
    await assertValid(input, await this.urlErrors(input.url));
    const secret = newSecret();
    return transactional(ctx, async (tx) => {
      const [webhook]: Webhook[] = await tx.manager.query(
        `INSERT INTO webhook AS w (tenant_id, url, events, description, secret_ciphertext)
         SELECT t.id, $2, $3, $4, $5 FROM tenant t WHERE t.id = $1 RETURNING ${WEBHOOK_COLUMNS}`,
        [tenantId, input.url, [...new Set(input.events)], input.description ?? null, this.secretBox.seal(secret, webhookSecretAad(tenantId))],
      );
      if (!webhook) throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
      await recordAudit(tx, { tenantId, action: "webhook.created", entityType: "webhook", entityId: webhook.id, changes: createdChanges(webhookSnapshot(webhook)) });
      return { webhook, secret };
    });
  }

  async update(ctx: RequestContext, rawId: string, input: UpdateWebhookInput): Promise<Webhook> {
    const current = await this.get(ctx, rawId);
    await assertValid(input, input.url === undefined ? {} : await this.urlErrors(input.url));
    const sets: string[] = [];
    const values: unknown[] = [current.id];
    const set = (column: string, value: unknown) => sets.push(`${column} = $${values.push(value)}`);
    if (input.url !== undefined) set("url", input.url);
    if (input.events !== undefined) set("events", [...new Set(input.events)]);
    if (input.description !== undefined) set("description", input.description);
    if (input.enabled !== undefined && input.enabled !== null) set("enabled", input.enabled);
    if (sets.length === 0) return current;
    return transactional(ctx, async (tx) => {
      const [[webhook]]: [Webhook[]] = await tx.manager.query(
        `UPDATE webhook AS w SET ${sets.join(", ")}, updated_at = now() WHERE w.id = $1 RETURNING ${WEBHOOK_COLUMNS}`,
        values,
      );
      if (!webhook) throw notFound("Webhook");
      const changes = updatedChanges(webhookSnapshot(current), webhookSnapshot(webhook));
      if (!isEmpty(changes)) await recordAudit(tx, { tenantId: webhook.tenantId, action: "webhook.updated", entityType: "webhook", entityId: webhook.id, changes });
      return webhook;
    });
  }

  async delete(ctx: RequestContext, rawId: string): Promise<number> {
    const current = await this.get(ctx, rawId);
    return transactional(ctx, async (tx) => {
      await tx.manager.query(`DELETE FROM webhook WHERE id = $1`, [current.id]);
      await recordAudit(tx, { tenantId: current.tenantId, action: "webhook.deleted", entityType: "webhook", entityId: current.id, changes: deletedChanges(webhookSnapshot(current)) });
      return current.id;
    });
  }

  async rotateSecret(ctx: RequestContext, rawId: string): Promise<string> {
    const current = await this.get(ctx, rawId);
    const secret = newSecret();
    return transactional(ctx, async (tx) => {
      await tx.manager.query(`UPDATE webhook SET secret_ciphertext = $2, updated_at = now() WHERE id = $1`, [
        current.id,
        this.secretBox.seal(secret, webhookSecretAad(current.tenantId)),
      ]);
      await recordAudit(tx, {
        tenantId: current.tenantId,
        action: "webhook.secret_rotated",
        entityType: "webhook",
        entityId: current.id,
        changes: { secret: [REDACTED, REDACTED] },
      });
      return secret;
    });
  }

  /** A webhook the caller may manage; another tenant's answers as not found. */
  async get(ctx: RequestContext, rawId: string | number): Promise<Webhook> {
    const principal = requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    const id = parseId(rawId);
    const [webhook]: Webhook[] = id === null ? [] : await ctx.manager.query(`SELECT ${WEBHOOK_COLUMNS} FROM webhook w WHERE w.id = $1`, [id]);
    if (!webhook || (principal.role !== Role.ADMIN && principal.tenantId !== webhook.tenantId)) throw notFound("Webhook");
    return webhook;
  }

  /** `Tenant.webhooks`, oldest first: checked here, loaded with every other tenant of the request in one query. */
  async forTenant(ctx: RequestContext, tenantId: number): Promise<Webhook[]> {
    const principal = requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    if (principal.role !== Role.ADMIN && principal.tenantId !== tenantId) throw notFound("Tenant");
    return ctx.loaders.webhooksByTenant.load(tenantId);
  }

  /** The webhooks of many tenants, in id order, for the loader; access is forTenant's to check. */
  async listForTenants(ctx: RequestContext, tenantIds: readonly number[]): Promise<Webhook[][]> {
    const rows: Webhook[] = await readRows(ctx, `SELECT ${WEBHOOK_COLUMNS} FROM webhook w WHERE w.tenant_id = ANY($1::int[]) ORDER BY w.id`, [tenantIds]);
    return groupBy(tenantIds, rows, (row) => row.tenantId);
  }

  /** `Webhook.deliveries`: newest first, keyset on id. */
  async deliveries(ctx: RequestContext, webhook: Webhook, args: WebhookDeliveryPageArgs): Promise<ConnectionPage<WebhookDelivery>> {
    const limit = pageSize(args.first);
    const afterId = args.after ? (decodeCursor(args.after, ["string"])[0] as string) : null;
    if (afterId !== null && !/^[1-9][0-9]{0,18}$/.test(afterId)) throw badInput({ after: ["The cursor is invalid."] });
    const where = [`d.webhook_id = $1`];
    const values: unknown[] = [webhook.id];
    if (args.status) where.push(`d.status = $${values.push(args.status)}`);
    const countWhere = [...where];
    const countValues = [...values];
    if (afterId !== null) where.push(`d.id < $${values.push(afterId)}`);
    const rows: WebhookDelivery[] = await ctx.manager.query(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_delivery d WHERE ${where.join(" AND ")} ORDER BY d.id DESC LIMIT $${values.push(limit + 1)}`,
      values,
    );
    return new ConnectionPage(rows, limit, (row) => encodeCursor([row.id]), async () => {
      const [{ count }] = await ctx.manager.query(`SELECT count(*)::int AS count FROM webhook_delivery d WHERE ${countWhere.join(" AND ")}`, countValues);
      return count;
    });
  }

  /** Sends a delivery again, whatever became of it: pending from now, with a fresh set of attempts, ahead of the webhook's later events. */
  async redeliver(ctx: RequestContext, rawId: string): Promise<WebhookDelivery> {
    const principal = requireRole(ctx, Role.ADMIN, Role.TENANT_ADMIN);
    const id = /^[1-9][0-9]{0,18}$/.test(String(rawId).trim()) ? String(rawId).trim() : null;
    const [[delivery]]: [WebhookDelivery[]] =
      id === null
        ? [[]]
        : await ctx.manager.query(
            `UPDATE webhook_delivery d SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_until = NULL,
               error = NULL, response_status = NULL, delivered_at = NULL
             WHERE d.id = $1 AND ($2::int IS NULL OR d.tenant_id = $2) RETURNING ${DELIVERY_COLUMNS}`,
            [id, principal.role === Role.ADMIN ? null : principal.tenantId],
          );
    if (!delivery) throw notFound("Webhook delivery");
    this.onDeliveries();
    return delivery;
  }

  /**
   * The relay's hook: inside the pass that publishes a tenant's events (claimed by one instance,
   * in sequence order), one delivery per event per subscribed webhook. A pass repeated after a
   * crash makes none twice (unique webhook, sequence).
   */
  readonly relaySink: RelaySink = {
    inTransaction: async (manager: EntityManager, tenantId: number, events: LoggedEvent[]) => {
      const hooks: Array<{ id: number; events: string[] }> = await manager.query(`SELECT id, events FROM webhook WHERE tenant_id = $1 AND enabled`, [tenantId]);
      if (hooks.length === 0) return false;
      const rows: Array<[number, string, string, string]> = [];
      for (const event of events) {
        const receivers = hooks.filter((hook) => wants(hook.events, event.type));
        if (receivers.length === 0) continue;
        const body = deliveryBody(event);
        for (const hook of receivers) rows.push([hook.id, event.sequence, event.type, body]);
      }
      if (rows.length === 0) return false;
      await manager.query(
        `INSERT INTO webhook_delivery (webhook_id, tenant_id, sequence, event_type, body, next_attempt_at)
         SELECT r.webhook_id, $1, r.sequence, r.event_type, r.body, now()
         FROM unnest($2::int[], $3::bigint[], $4::text[], $5::text[]) AS r(webhook_id, sequence, event_type, body)
         ON CONFLICT (webhook_id, sequence) DO NOTHING`,
        [tenantId, rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3])],
      );
      return true;
    },
    committed: () => this.onDeliveries(),
  };

  /** http(s) only, and (unless WEBHOOK_ALLOW_PRIVATE) a host whose every address is public. */
  private async urlErrors(raw: unknown): Promise<FieldErrors> {
    if (typeof raw !== "string") return {};
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return { url: ["The url must be an absolute http or https URL."] };
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return { url: ["The url must use http or https."] };
    if (url.username || url.password) return { url: ["The url may not carry a user name or password."] };
    try {
      await resolveAllowed(url.hostname, this.allowPrivate);
    } catch (error) {
      if (error instanceof UnsafeAddressError) return { url: [`The url is not reachable from here: ${error.message}.`] };
      return { url: [`The url's host ${url.hostname} does not resolve.`] };
    }
    return {};
  }
}

/** The body of a delivery without its `id` (the delivery's own id, put in front when sent). */
function deliveryBody(event: LoggedEvent): string {
  const kind = EVENT_KINDS.get(event.kind);
  const payload = event.payload as { occurredAt?: string };
  return JSON.stringify({
    sequence: event.sequence,
    type: event.type,
    tenant_id: event.tenantId,
    occurred_at: payload.occurredAt ?? new Date().toISOString(),
    data: kind ? kind.webhookData(event.payload as never) : {},
  });
}

