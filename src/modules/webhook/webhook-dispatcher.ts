import { createHmac } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { DataSource } from "typeorm";
import type { Logger } from "../../common/logger";
import type { SecretBox } from "../../common/secret-box";
import type { AppConfig } from "../../config/config";
import type { Metrics } from "../../observability/metrics";
import { checkedLookup, resolveAllowed } from "./webhook-address";
import { webhookSecretAad } from "./webhook.service";

/** Contract §9: a 2xx within 10 s delivers. */
export const ATTEMPT_TIMEOUT_MS = 10_000;
/** A claimed attempt not reported back within this is presumed lost with its instance, and tried again. */
const LEASE_SECONDS = 30;
/** Attempts in flight on this instance, and at most this many of one tenant: a slow tenant cannot take every slot. */
const MAX_IN_FLIGHT = 32;
const MAX_PER_TENANT = 4;
const MAX_DELAY_MS = 3600_000;
const MAX_ERROR_LENGTH = 500;

interface Claimed {
  id: string;
  webhookId: number;
  tenantId: number;
  eventType: string;
  body: string;
  attempts: number;
  url: string;
  secretCiphertext: string;
}

interface Outcome {
  delivered: boolean;
  responseStatus: number | null;
  error: string | null;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`. */
export function signature(secret: string, body: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex")}`;
}

/** About 1 s, 2 s, 4 s … after the first, second, third failed attempt, each ±20 % so retries of many deliveries spread out. */
export function retryDelayMs(attempts: number, baseMs: number): number {
  const delay = Math.min(MAX_DELAY_MS, baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(delay * (0.8 + Math.random() * 0.4));
}

/**
 * Sends due deliveries. Each attempt is claimed in the database (a lease on the row, taken with
 * FOR UPDATE SKIP LOCKED), so one instance makes it; only the oldest pending delivery of a webhook
 * is ever claimable, so a webhook receives its events in sequence order, and a slow or dead
 * receiver holds back only its own webhook (and at most MAX_PER_TENANT of this instance's slots).
 */
export class WebhookDispatcher {
  private readonly inFlight = new Map<number, { tenantId: number; done: Promise<void> }>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly secretBox: SecretBox,
    private readonly config: AppConfig,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  start(): void {
    const loop = () => {
      this.kick();
      this.timer = setTimeout(loop, this.config.webhooks.pollMs).unref();
    };
    loop();
  }

  /** Looks for due deliveries now (coalesced with a look already under way). */
  kick(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = (async () => {
      try {
        do {
          this.again = false;
          await this.claimAndSend();
        } while (this.again && !this.stopped);
      } catch (error) {
        this.log.warn({ err: error }, "webhook dispatch failed; retrying at the next poll");
      } finally {
        this.ticking = undefined;
      }
    })();
  }

  private async claimAndSend(): Promise<void> {
    const free = MAX_IN_FLIGHT - this.inFlight.size;
    if (free <= 0) return;
    const perTenant = new Map<number, number>();
    for (const { tenantId } of this.inFlight.values()) perTenant.set(tenantId, (perTenant.get(tenantId) ?? 0) + 1);
    const fullTenants = [...perTenant].filter(([, n]) => n >= MAX_PER_TENANT).map(([t]) => t);
    // An UPDATE answers [rows, count] through TypeORM.
    const [claimed]: [Claimed[]] = await this.dataSource.query(
      `WITH pick AS (
         SELECT c.id FROM webhook_delivery c JOIN webhook w ON w.id = c.webhook_id AND w.enabled
         WHERE c.status = 'pending' AND c.next_attempt_at <= now() AND (c.locked_until IS NULL OR c.locked_until < now())
           AND NOT (c.webhook_id = ANY($1::int[])) AND NOT (c.tenant_id = ANY($2::int[]))
           AND NOT EXISTS (SELECT 1 FROM webhook_delivery o WHERE o.webhook_id = c.webhook_id AND o.status = 'pending' AND o.sequence < c.sequence)
         ORDER BY c.next_attempt_at
         LIMIT $3
         FOR UPDATE OF c SKIP LOCKED
       )
       UPDATE webhook_delivery d SET locked_until = now() + interval '${LEASE_SECONDS} seconds', attempts = d.attempts + 1
       FROM pick, webhook w WHERE d.id = pick.id AND w.id = d.webhook_id
       RETURNING d.id::text AS id, d.webhook_id AS "webhookId", d.tenant_id AS "tenantId", d.event_type AS "eventType", d.body, d.attempts,
         w.url, w.secret_ciphertext AS "secretCiphertext"`,
      [[...this.inFlight.keys()], fullTenants, free],
    );
    for (const delivery of claimed) {
      const count = perTenant.get(delivery.tenantId) ?? 0;
      // Past this tenant's share this round: hand the lease back at once.
      if (count >= MAX_PER_TENANT || this.inFlight.has(delivery.webhookId)) {
        await this.dataSource.query(`UPDATE webhook_delivery SET locked_until = NULL, attempts = attempts - 1 WHERE id = $1 AND attempts = $2`, [
          delivery.id,
          delivery.attempts,
        ]);
        continue;
      }
      perTenant.set(delivery.tenantId, count + 1);
      const done = this.attempt(delivery).finally(() => {
        this.inFlight.delete(delivery.webhookId);
        this.kick();
      });
      this.inFlight.set(delivery.webhookId, { tenantId: delivery.tenantId, done });
    }
  }

  private async attempt(delivery: Claimed): Promise<void> {
    const started = process.hrtime.bigint();
    let outcome: Outcome;
    try {
      const secret = this.secretBox.open(delivery.secretCiphertext, webhookSecretAad(delivery.tenantId));
      const body = `{"id":${JSON.stringify(delivery.id)},${delivery.body.slice(1)}`;
      outcome = await this.post(delivery, body, secret);
    } catch (error) {
      outcome = { delivered: false, responseStatus: null, error: error instanceof Error ? error.message : String(error) };
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.metrics.webhookDeliveryDuration.observe({ outcome: outcome.delivered ? "delivered" : "failed" }, seconds);
    const final = !outcome.delivered && delivery.attempts >= this.config.webhooks.maxAttempts;
    this.metrics.webhookAttempts.inc({ outcome: outcome.delivered ? "delivered" : final ? "failed" : "retry" });
    const error = outcome.error?.slice(0, MAX_ERROR_LENGTH) ?? null;
    // Guarded by the attempt number: a lease that expired and was taken over is not overwritten.
    if (outcome.delivered) {
      await this.dataSource.query(
        `UPDATE webhook_delivery SET status = 'delivered', delivered_at = now(), response_status = $3, error = NULL, next_attempt_at = NULL, locked_until = NULL
         WHERE id = $1 AND attempts = $2`,
        [delivery.id, delivery.attempts, outcome.responseStatus],
      );
    } else if (final) {
      await this.dataSource.query(
        `UPDATE webhook_delivery SET status = 'failed', response_status = $3, error = $4, next_attempt_at = NULL, locked_until = NULL WHERE id = $1 AND attempts = $2`,
        [delivery.id, delivery.attempts, outcome.responseStatus, error],
      );
    } else {
      const delay = retryDelayMs(delivery.attempts, this.config.webhooks.retryBaseMs);
      await this.dataSource.query(
        `UPDATE webhook_delivery SET response_status = $3, error = $4, next_attempt_at = now() + $5 * interval '1 millisecond', locked_until = NULL
         WHERE id = $1 AND attempts = $2`,
        [delivery.id, delivery.attempts, outcome.responseStatus, error, delay],
      );
      setTimeout(() => this.kick(), delay).unref();
    }
  }

  /** One POST, connected to an address checked at this moment, answered within 10 s. */
  private async post(delivery: Claimed, body: string, secret: string): Promise<Outcome> {
    const url = new URL(delivery.url);
    const allowPrivate = this.config.webhooks.allowPrivate;
    // IP literals are not looked up by the socket: judge them here; host names are judged by the lookup itself.
    await resolveAllowed(url.hostname, allowPrivate);
    const transport = url.protocol === "https:" ? https : http;
    return new Promise<Outcome>((resolve) => {
      const request = transport.request(
        url,
        {
          method: "POST",
          lookup: checkedLookup(allowPrivate),
          signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            "user-agent": "pbx-webhooks/1",
            "x-pbx-event": delivery.eventType,
            "x-pbx-delivery": delivery.id,
            "x-pbx-signature": signature(secret, body, Math.floor(Date.now() / 1000)),
          },
        },
        (response) => {
          const status = response.statusCode ?? 0;
          // The answer's body is not needed; reading it to the end frees the socket.
          response.resume();
          response.once("end", () =>
            resolve({ delivered: status >= 200 && status < 300, responseStatus: status, error: status >= 200 && status < 300 ? null : `HTTP ${status}` }),
          );
          response.once("error", (error) => resolve({ delivered: false, responseStatus: status, error: error.message }));
        },
      );
      request.once("error", (error: NodeJS.ErrnoException) =>
        resolve({ delivered: false, responseStatus: null, error: error.name === "AbortError" || error.name === "TimeoutError" ? `no answer within ${ATTEMPT_TIMEOUT_MS / 1000} s` : error.message }),
      );
      request.end(body);
    });
  }

  /** Stops claiming and waits for the attempts in flight (their outcome is recorded). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    await Promise.allSettled([...this.inFlight.values()].map((f) => f.done));
  }
}
