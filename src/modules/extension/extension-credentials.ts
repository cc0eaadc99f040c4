import { createHash } from "node:crypto";
import type { DataSource } from "typeorm";
import { requireRole } from "../../auth/access";
import { Role } from "../../auth/role";
import { badInput, notFound, type FieldErrors } from "../../common/errors";
import type { Logger } from "../../common/logger";
import type { SecretBox } from "../../common/secret-box";
import type { RequestContext } from "../../context/request-context";

/**
 * What a digest-authenticating SIP engine needs of an extension (contract §7), lowercase hex.
 * Password-equivalent inside their realm: like the secret, never returned, published or logged.
 */
export interface SipDigests {
  ha1: string;
  ha1b: string;
  ha1Sha256: string;
}

/** The stored form of an extension's credentials: the sealed secret and the digests that go with it. */
export interface SealedCredentials extends SipDigests {
  secretCiphertext: string;
}

const md5 = (text: string) => createHash("md5").update(text, "utf8").digest("hex");
const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

/** RFC 2617 HA1 (and its `user@domain` variant) and RFC 8760 SHA-256 HA1 for one number in one realm. */
export function sipDigests(extensionNumber: string, sipDomain: string, secret: string): SipDigests {
  return {
    ha1: md5(`${extensionNumber}:${sipDomain}:${secret}`),
    ha1b: md5(`${extensionNumber}@${sipDomain}:${sipDomain}:${secret}`),
    ha1Sha256: sha256(`${extensionNumber}:${sipDomain}:${secret}`),
  };
}

/** One row of the engine's view sip_subscriber: what an engine authenticates a phone with. */
export interface SubscriberRow extends SipDigests {
  username: string;
  domain: string;
  tenantId: number;
  extensionId: number;
  voicemailEnabled: boolean;
}

/** The view's columns, read by the HTTP path exactly as the SIP engine reads them. */
const SUBSCRIBER_COLUMNS = `username, domain, ha1, ha1b, ha1_sha256 AS "ha1Sha256", tenant_id AS "tenantId",
  extension_id AS "extensionId", voicemail_enabled AS "voicemailEnabled"`;

/** The envelope's associated data binds a secret to its tenant: a ciphertext copied to another tenant does not open. */
const secretAad = (tenantId: number) => `extension-secret:${tenantId}`;

interface CredentialRow {
  id: number;
  extensionNumber: string;
  secretCiphertext: string;
}

/** How many extensions the start-up backfill reads and writes per statement. */
const BACKFILL_BATCH = 500;

/**
 * The one place that turns an extension's secret, number and realm into what is stored: every write
 * of a secret, a number or a tenant's SIP domain goes through here, inside its own transaction, so
 * the digests never disagree with the secret that a committed row holds.
 */
export class ExtensionCredentials {
  constructor(private readonly secretBox: SecretBox) {}

  /** A new secret for an extension: its envelope and its digests. */
  seal(tenantId: number, extensionNumber: string, sipDomain: string, secret: string): SealedCredentials {
    return { secretCiphertext: this.secretBox.seal(secret, secretAad(tenantId)), ...sipDigests(extensionNumber, sipDomain, secret) };
  }

  /** The digests of a stored secret under a (possibly new) number or realm. */
  digestsOf(tenantId: number, extensionNumber: string, sipDomain: string, secretCiphertext: string): SipDigests {
    return sipDigests(extensionNumber, sipDomain, this.secretBox.open(secretCiphertext, secretAad(tenantId)));
  }

  /** A stored secret in clear: only for the one-box demo extension, whose secret `npm run pbx` prints to its operator. */
  openSecret(tenantId: number, secretCiphertext: string): string {
    return this.secretBox.open(secretCiphertext, secretAad(tenantId));
  }

  /**
   * Contract §7 over HTTP: the credentials of one active extension, for an INGEST key (tenant-bound
   * ones see their own tenant only; any other answers as not found) or an ADMIN key.
   */
  async subscriber(ctx: RequestContext, domain: unknown, username: unknown): Promise<SubscriberRow> {
    const principal = requireRole(ctx, Role.INGEST, Role.ADMIN);
    const fields: FieldErrors = {};
    if (typeof domain !== "string" || domain.trim() === "") fields.domain = ["The domain field is required."];
    if (typeof username !== "string" || username.trim() === "") fields.username = ["The username field is required."];
    if (Object.keys(fields).length > 0) throw badInput(fields);
    // Domains are kept lower-case (a DNS name's case carries no meaning); numbers are digits only.
    const params: unknown[] = [(domain as string).trim().toLowerCase(), (username as string).trim()];
    const scope = principal.role === Role.ADMIN ? null : principal.tenantId;
    if (scope !== null) params.push(scope);
    const [row]: SubscriberRow[] = await ctx.manager.query(
      `SELECT ${SUBSCRIBER_COLUMNS} FROM sip_subscriber WHERE domain = $1 AND username = $2${scope !== null ? " AND tenant_id = $3" : ""}`,
      params,
    );
    if (!row) throw notFound("Extension");
    return row;
  }

  /**
   * A tenant's SIP domain changed: every extension's digests are recomputed in the caller's
   * transaction. The rows are locked (and read) first, so an extension changed concurrently is
   * recomputed from what that change committed.
   */
  async recomputeTenant(tx: RequestContext, tenantId: number, sipDomain: string): Promise<number> {
    const rows: CredentialRow[] = await tx.manager.query(
      `SELECT id, extension_number AS "extensionNumber", secret_ciphertext AS "secretCiphertext"
       FROM extension WHERE tenant_id = $1 ORDER BY id FOR UPDATE`,
      [tenantId],
    );
    for (let i = 0; i < rows.length; i += BACKFILL_BATCH) {
      await this.writeDigests(tx.manager, rows.slice(i, i + BACKFILL_BATCH), (row) => this.digestsOf(tenantId, row.extensionNumber, sipDomain, row.secretCiphertext));
    }
    return rows.length;
  }

  /**
   * Fills digests that are missing (extensions written before the digest columns existed). The
   * migration cannot compute them: the secrets are sealed with the application's key, which only
   * the application holds. Runs at start-up after the migrations; a row changed meanwhile (its
   * ciphertext, number or domain) is left to the change that got its digests in its own transaction.
   */
  async backfill(dataSource: DataSource, log: Logger): Promise<number> {
    let filled = 0;
    let afterId = 0;
    for (;;) {
      const rows: Array<CredentialRow & { tenantId: number; sipDomain: string }> = await dataSource.query(
        `SELECT e.id, e.tenant_id AS "tenantId", e.extension_number AS "extensionNumber", e.secret_ciphertext AS "secretCiphertext",
                t.sip_domain AS "sipDomain"
         FROM extension e JOIN tenant t ON t.id = e.tenant_id
         WHERE e.ha1 IS NULL AND e.id > $1 ORDER BY e.id LIMIT ${BACKFILL_BATCH}`,
        [afterId],
      );
      if (rows.length === 0) break;
      afterId = rows[rows.length - 1].id;
      const ready: Array<{ row: (typeof rows)[number]; digests: SipDigests }> = [];
      for (const row of rows) {
        try {
          ready.push({ row, digests: this.digestsOf(row.tenantId, row.extensionNumber, row.sipDomain, row.secretCiphertext) });
        } catch {
          // Sealed with another key: the extension stays out of the engine's view until its secret is set again.
          log.error({ extensionId: row.id }, "cannot open the extension's secret (another SECRET_ENCRYPTION_KEY?); its SIP digests stay unset");
        }
      }
      if (ready.length === 0) continue;
      const column = <T>(pick: (item: (typeof ready)[number]) => T) => ready.map(pick);
      const [, count] = await dataSource.query(
        `UPDATE extension e SET ha1 = v.ha1, ha1b = v.ha1b, ha1_sha256 = v.ha1_sha256
         FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                AS v(id, number, ciphertext, domain, ha1, ha1b, ha1_sha256), tenant t
         WHERE e.id = v.id AND e.ha1 IS NULL AND e.extension_number = v.number AND e.secret_ciphertext = v.ciphertext
           AND t.id = e.tenant_id AND t.sip_domain = v.domain`,
        [
          column((x) => x.row.id),
          column((x) => x.row.extensionNumber),
          column((x) => x.row.secretCiphertext),
          column((x) => x.row.sipDomain),
          column((x) => x.digests.ha1),
          column((x) => x.digests.ha1b),
          column((x) => x.digests.ha1Sha256),
        ],
      );
      filled += Number(count);
    }
    if (filled > 0) log.info({ extensions: filled }, "filled missing SIP digests");
    return filled;
  }

  private async writeDigests(manager: RequestContext["manager"], rows: CredentialRow[], compute: (row: CredentialRow) => SipDigests): Promise<void> {
    if (rows.length === 0) return;
    const digests = rows.map(compute);
    await manager.query(
      `UPDATE extension e SET ha1 = v.ha1, ha1b = v.ha1b, ha1_sha256 = v.ha1_sha256
       FROM unnest($1::int[], $2::text[], $3::text[], $4::text[]) AS v(id, ha1, ha1b, ha1_sha256) WHERE e.id = v.id`,
      [rows.map((r) => r.id), digests.map((d) => d.ha1), digests.map((d) => d.ha1b), digests.map((d) => d.ha1Sha256)],
    );
  }
}
