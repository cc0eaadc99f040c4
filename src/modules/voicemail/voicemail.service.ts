import { canRead, canWrite, parseId, requireRole } from "../../auth/access";
import { Role } from "../../auth/role";
import { AppError, badInput, notFound, type FieldErrors } from "../../common/errors";
import { groupBy } from "../../common/group-by";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { readRows } from "../../db/read";
import { SqlParams } from "../../db/sql";
import { transactional } from "../../db/transaction";
import { ConnectionPage, decodeCursor, encodeCursor, pageSize } from "../../graphql/connection";
import { Resolution } from "../../ingest/resolution";
import { RegistrationEventInput } from "../../ingest/telephony-event";
import { publishVoicemail, type VoicemailEventType } from "../../subscriptions/events";
import { createdChanges, deletedChanges, recordAudit, updatedChanges, type AuditChanges, type AuditSnapshot } from "../audit/audit";
import { EXTENSION_COLUMNS, DEFAULT_PER_PAGE, pageNumberErrors, type ExtensionRow } from "../extension/extension.service";
import type { VoicemailMessage } from "./voicemail-message.entity";
import { VoicemailDepositInput, type VoicemailPageArgs } from "./voicemail.inputs";
import type { UploadedAudio } from "./voicemail-upload";
import { assignOwn } from "../../common/json";
import { AUDIO_TYPES } from "./audio-type";
import { readWav } from "./wav";

/** What every read of a message returns (never its audio). */
export type VoicemailRow = Omit<VoicemailMessage, "extensionRow">;

export interface VoicemailSummary {
  unheard: number;
  total: number;
}

export const VOICEMAIL_COLUMNS = `m.id, m.tenant_id AS "tenantId", m.extension_id AS "extensionId", m.message_id AS "messageId",
  m.call_id AS "callId", m.caller_number AS "callerNumber", m.caller_name AS "callerName", m.received_at AS "receivedAt",
  m.duration_seconds AS "durationSeconds", m.heard, m.content_type AS "contentType", m.size_bytes AS "sizeBytes",
  m.created_at AS "createdAt", m.updated_at AS "updatedAt"`;

/** Audio is stored in pieces of this size: a download or a Range read holds one piece at a time. */
export const AUDIO_CHUNK_BYTES = 256 * 1024;

/** A validated page request; plain JSON, so it also groups the DataLoader's parents. */
export interface VoicemailQuery {
  limit: number;
  /** (received_at ISO, id) of the last row seen, newest first. */
  after: [string, number] | null;
  heard: boolean | null;
}

export interface VoicemailPage {
  rows: VoicemailRow[];
  total: number;
  page: number;
  perPage: number;
}

/** An extension's greeting, without its audio. */
export interface GreetingInfo {
  extensionId: number;
  contentType: string;
  durationMs: number;
  sizeBytes: number;
  version: number;
  updatedAt: Date;
}

const GREETING_COLUMNS = `g.extension_id AS "extensionId", g.content_type AS "contentType", g.duration_ms AS "durationMs", g.size_bytes AS "sizeBytes",
  g.version, g.updated_at AS "updatedAt"`;

/** Contract §13: an uploaded greeting holds at most this much audio. */
export const MAX_GREETING_SECONDS = 60;

/** A mailbox as the media application sees it before it answers a call. */
export interface Mailbox {
  extension: ExtensionRow;
  domain: string;
  summary: VoicemailSummary;
  /** At VOICEMAIL_MAX_MESSAGES: a caller hears a short message and nothing is stored. */
  full: boolean;
}

export interface VoicemailLimits {
  maxMessages: number;
}

const READ_ROLES = [Role.ADMIN, Role.TENANT_ADMIN, Role.VIEWER];
const WRITE_ROLES = [Role.ADMIN, Role.TENANT_ADMIN];
const SWEEP_BATCH = 200;

/** A message's audited fields, by their GraphQL names (contract §10). */
function voicemailSnapshot(row: VoicemailRow): AuditSnapshot {
  return {
    messageId: row.messageId,
    callId: row.callId,
    callerNumber: row.callerNumber,
    callerName: row.callerName,
    receivedAt: new Date(row.receivedAt).toISOString(),
    durationSeconds: row.durationSeconds,
    heard: row.heard,
    contentType: row.contentType,
    sizeBytes: row.sizeBytes,
  };
}

const audited = (row: VoicemailRow, verb: "created" | "updated" | "deleted", changes: AuditChanges) => ({
  tenantId: row.tenantId,
  action: `voicemail_message.${verb}`,
  entityType: "voicemail_message" as const,
  entityId: row.id,
  changes,
});

const cursorOf = (row: VoicemailRow) => encodeCursor([new Date(row.receivedAt).toISOString(), row.id]);

function decodeVoicemailCursor(after: string): [string, number] {
  const [at, id] = decodeCursor(after, ["string", "number"]) as [string, number];
  if (Number.isNaN(Date.parse(at)) || new Date(at).toISOString() !== at || parseId(id) === null) throw badInput({ after: ["The cursor is invalid."] });
  return [at, id];
}

/** Splits the uploaded pieces (whatever sizes the parser delivered) into storage chunks. */
function* storageChunks(audio: UploadedAudio): Generator<Buffer> {
  let pending: Buffer[] = [];
  let length = 0;
  for (const piece of audio.chunks) {
    let rest = piece;
    while (rest.length > 0) {
      const take = rest.subarray(0, AUDIO_CHUNK_BYTES - length);
      pending.push(take);
      length += take.length;
      rest = rest.subarray(take.length);
      if (length === AUDIO_CHUNK_BYTES) {
        yield Buffer.concat(pending);
        pending = [];
        length = 0;
      }
    }
  }
  if (length > 0) yield Buffer.concat(pending);
}

/**
 * Voicemail (contract §8): the engine deposits messages, readers list them and play their audio,
 * writers mark them heard or delete them. Every change locks the extension's row first, so the
 * mailbox limit holds under parallel deposits and each event's summary is the one its change left.
 */
export class VoicemailService {
  constructor(private readonly limits: VoicemailLimits) {}

  /**
   * Stores a message handed over by the engine, or finds it already stored under the same
   * (extension, message_id): `created` tells which. Every refusal is a field error and stores nothing.
   */
  async deposit(
    ctx: RequestContext,
    fields: Record<string, string>,
    audio: UploadedAudio | null,
    audioErrors: FieldErrors,
  ): Promise<{ row: VoicemailRow; created: boolean }> {
    requireRole(ctx, Role.INGEST, Role.ADMIN);
    const input = assignOwn(new VoicemailDepositInput(), fields);
    await assertValid(input, audioErrors);
    if (!audio) throw badInput({ audio: ["The audio file is required."] });
    const number = input.extension!;
    return transactional(ctx, async (tx) => {
      // The engine's rules for naming a tenant and an extension are those of its telephony events.
      const named = Object.assign(new RegistrationEventInput(), {
        type: "registration",
        ...(input.tenant_id !== undefined ? { tenant_id: Number(input.tenant_id) } : { domain: input.domain }),
        extension: number,
      });
      const resolution = await Resolution.of(tx, [named]);
      const tenantId = resolution.tenant(named);
      if (tenantId instanceof AppError) throw tenantId;
      const found = resolution.extension(tenantId, number, "extension");
      if (found instanceof AppError) throw found;
      const [extension]: ExtensionRow[] = await tx.manager.query(`SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE e.id = $1 FOR UPDATE`, [found.id]);
      if (!extension) throw notFound("Extension", { extension: [`The tenant has no extension ${number}.`] });
      const stored = await this.findByMessageId(tx, extension.id, input.message_id!);
      if (stored) return { row: stored, created: false };
      if (!extension.voicemailEnabled) throw badInput({ extension: [`Extension ${number} does not have voicemail enabled.`] });
      const [{ count }]: Array<{ count: number }> = await tx.manager.query(`SELECT count(*)::int AS count FROM voicemail_message WHERE extension_id = $1`, [
        extension.id,
      ]);
      if (count >= this.limits.maxMessages) {
        throw badInput({ extension: [`The mailbox of extension ${number} is full (${this.limits.maxMessages} messages).`] });
      }
      const [row]: VoicemailRow[] = await tx.manager.query(
        `INSERT INTO voicemail_message AS m (tenant_id, extension_id, message_id, call_id, caller_number, caller_name, received_at, duration_seconds, content_type, size_bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (extension_id, message_id) DO NOTHING RETURNING ${VOICEMAIL_COLUMNS}`,
        [
          tenantId,
          extension.id,
          input.message_id,
          input.call_id || null,
          input.caller_number || null,
          input.caller_name || null,
          // Milliseconds, as the cursor carries them.
          input.received_at ? new Date(input.received_at) : new Date(),
          Number(input.duration_seconds ?? 0),
          audio.contentType,
          audio.size,
        ],
      );
      // Only a writer that did not take the extension's lock could get here; the stored row wins.
      if (!row) return { row: (await this.findByMessageId(tx, extension.id, input.message_id!))!, created: false };
      let ordinal = 0;
      for (const chunk of storageChunks(audio)) {
        await tx.manager.query(`INSERT INTO voicemail_audio_chunk (message_id, ordinal, data) VALUES ($1, $2, $3)`, [row.id, ordinal++, chunk]);
      }
      await recordAudit(tx, audited(row, "created", createdChanges(voicemailSnapshot(row))));
      await this.announce(tx, "NEW", extension, row);
      return { row, created: true };
    });
  }

  /** One message the caller may read; another tenant's answers as not found. */
  async get(ctx: RequestContext, rawId: string | number): Promise<VoicemailRow> {
    requireRole(ctx, ...READ_ROLES);
    const id = parseId(rawId);
    const row = id === null ? null : await ctx.loaders.voicemailMessage.load(id);
    if (!row || !canRead(ctx, row.tenantId)) throw notFound("Voicemail message");
    return row;
  }

  async markHeard(ctx: RequestContext, rawId: string | number, heard: boolean): Promise<VoicemailRow> {
    return this.change(ctx, rawId, async (tx, extension, current) => {
      if (current.heard === heard) return current;
      const [[row]]: [VoicemailRow[]] = await tx.manager.query(
        `UPDATE voicemail_message AS m SET heard = $1, updated_at = now() WHERE m.id = $2 RETURNING ${VOICEMAIL_COLUMNS}`,
        [heard, current.id],
      );
      await recordAudit(tx, audited(row, "updated", updatedChanges(voicemailSnapshot(current), voicemailSnapshot(row))));
      await this.announce(tx, heard ? "HEARD" : "UNHEARD", extension, row);
      return row;
    });
  }

  /** Deletes a message and its audio (the chunks go with it). */
  async delete(ctx: RequestContext, rawId: string | number): Promise<number> {
    const row = await this.change(ctx, rawId, async (tx, extension, current) => {
      await tx.manager.query(`DELETE FROM voicemail_message WHERE id = $1`, [current.id]);
      await recordAudit(tx, audited(current, "deleted", deletedChanges(voicemailSnapshot(current))));
      await this.announce(tx, "DELETED", extension, current);
      return current;
    });
    return row.id;
  }

  /** `Extension.voicemailMessages`: judged here, answered with every extension of the request that asked alike. */
  async forExtension(ctx: RequestContext, extensionId: number, args: VoicemailPageArgs): Promise<ConnectionPage<VoicemailRow>> {
    return ctx.loaders.voicemailByExtension.load({ parentId: extensionId, args: this.normalize(args) });
  }

  /** One page per extension of a batch: one keyset query (LATERAL per extension), one grouped count if asked. */
  async pagesFor(ctx: RequestContext, extensionIds: readonly number[], query: VoicemailQuery): Promise<Array<ConnectionPage<VoicemailRow>>> {
    const p = new SqlParams();
    const where = [`m.extension_id = x.id`];
    if (query.heard !== null) where.push(`m.heard = ${p.add(query.heard)}`);
    if (query.after) where.push(`(m.received_at, m.id) < (${p.add(query.after[0])}::timestamptz, ${p.add(query.after[1])}::int)`);
    const rows = await readRows<VoicemailRow>(ctx,
      `SELECT page.* FROM unnest(${p.add(extensionIds)}::int[]) AS x(id)
       CROSS JOIN LATERAL (SELECT ${VOICEMAIL_COLUMNS} FROM voicemail_message m WHERE ${where.join(" AND ")}
                           ORDER BY m.received_at DESC, m.id DESC LIMIT ${p.add(query.limit + 1)}) AS page`,
      p.values,
    );
    const pages = groupBy(extensionIds, rows, (row) => row.extensionId);
    let counts: Promise<Map<number, number>> | undefined;
    const countAll = () =>
      (counts ??= (async () => {
        const cp = new SqlParams();
        const ids = cp.add(extensionIds);
        const heard = query.heard === null ? "" : `AND m.heard = ${cp.add(query.heard)}`;
        const found: Array<{ extensionId: number; count: number }> = await readRows(ctx,
          `SELECT m.extension_id AS "extensionId", count(*)::int AS count FROM voicemail_message m
           WHERE m.extension_id = ANY(${ids}::int[]) ${heard} GROUP BY m.extension_id`,
          cp.values,
        );
        return new Map(found.map((r) => [r.extensionId, r.count]));
      })());
    return extensionIds.map((id, i) => new ConnectionPage(pages[i], query.limit, cursorOf, async () => (await countAll()).get(id) ?? 0));
  }

  /** Unheard and total messages of each extension, in one grouped statement. */
  async summaries(ctx: Pick<RequestContext, "dataSource" | "manager">, extensionIds: readonly number[]): Promise<VoicemailSummary[]> {
    const rows: Array<{ extensionId: number } & VoicemailSummary> = await readRows(ctx,
      `SELECT m.extension_id AS "extensionId", count(*) FILTER (WHERE NOT m.heard)::int AS unheard, count(*)::int AS total
       FROM voicemail_message m WHERE m.extension_id = ANY($1::int[]) GROUP BY m.extension_id`,
      [extensionIds],
    );
    const byId = new Map(rows.map((r) => [r.extensionId, { unheard: r.unheard, total: r.total }]));
    return extensionIds.map((id) => byId.get(id) ?? { unheard: 0, total: 0 });
  }

  /** REST listing of one extension's messages, newest first, page-numbered. */
  async paginate(ctx: RequestContext, rawExtensionId: string, query: { page?: number; perPage?: number; heard?: unknown }): Promise<VoicemailPage> {
    const extension = await ctx.services.extensions.get(ctx, rawExtensionId);
    const page = query.page ?? 1;
    const perPage = query.perPage ?? DEFAULT_PER_PAGE;
    const errors = pageNumberErrors(page, perPage);
    if (query.heard !== undefined && typeof query.heard !== "boolean") errors.heard = ["The heard field must be true or false."];
    if (Object.keys(errors).length) throw badInput(errors);
    const p = new SqlParams();
    const where = [`m.extension_id = ${p.add(extension.id)}`];
    if (typeof query.heard === "boolean") where.push(`m.heard = ${p.add(query.heard)}`);
    const condition = where.join(" AND ");
    const countValues = [...p.values];
    const [rows, [{ total }]] = await Promise.all([
      readRows<VoicemailRow>(ctx,
        `SELECT ${VOICEMAIL_COLUMNS} FROM voicemail_message m WHERE ${condition}
         ORDER BY m.received_at DESC, m.id DESC LIMIT ${p.add(perPage)} OFFSET ${p.add((page - 1) * perPage)}`,
        p.values,
      ),
      readRows<{ total: number }>(ctx, `SELECT count(*)::int AS total FROM voicemail_message m WHERE ${condition}`, countValues),
    ]);
    return { rows, total, page, perPage };
  }

  /** One stored piece of a message's audio (null once the message is gone). */
  async audioChunk(ctx: RequestContext, messageId: number, ordinal: number): Promise<Buffer | null> {
    const rows = await readRows<{ data: Buffer }>(ctx, `SELECT data FROM voicemail_audio_chunk WHERE message_id = $1 AND ordinal = $2`, [messageId, ordinal]);
    return rows[0]?.data ?? null;
  }

  /**
   * Deletes messages received more than `days` ago, in batches, each with the DELETED event a
   * delete sends. Exactly once across instances: FOR UPDATE SKIP LOCKED on the due rows.
   */
  async sweepRetention(ctx: RequestContext, days: number): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await transactional(ctx, async (tx) => {
        const [rows]: [VoicemailRow[]] = await tx.manager.query(
          `WITH due AS (SELECT id FROM voicemail_message WHERE received_at < now() - make_interval(days => $1)
                        ORDER BY received_at LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED)
           DELETE FROM voicemail_message AS m USING due WHERE m.id = due.id RETURNING ${VOICEMAIL_COLUMNS}`,
          [days],
        );
        if (rows.length === 0) return 0;
        const extensionIds = [...new Set(rows.map((r) => r.extensionId))];
        const extensions: ExtensionRow[] = await tx.manager.query(`SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE e.id = ANY($1::int[])`, [extensionIds]);
        const left = await this.summaries(tx, extensionIds);
        // Each event carries the summary as of its own deletion: what is left, plus what was deleted after it.
        const running = new Map(extensionIds.map((id, i) => [id, { ...left[i] }]));
        const summaries = new Array<VoicemailSummary>(rows.length);
        for (let i = rows.length - 1; i >= 0; i--) {
          const s = running.get(rows[i].extensionId)!;
          summaries[i] = { ...s };
          s.total += 1;
          if (!rows[i].heard) s.unheard += 1;
        }
        const byId = new Map(extensions.map((e) => [e.id, e]));
        const occurredAt = new Date().toISOString();
        rows.forEach((message, i) => {
          const extension = byId.get(message.extensionId);
          if (extension) publishVoicemail(tx, { type: "DELETED", tenantId: message.tenantId, extension, message, summary: summaries[i], occurredAt });
        });
        return rows.length;
      });
      total += deleted;
      if (deleted < SWEEP_BATCH) return total;
    }
  }

  /**
   * The media application's look at a mailbox (contract §13): the extension a call names by SIP
   * domain and number, whether it takes messages now, and its summary. Null when no active
   * extension answers to that name.
   */
  async mailbox(ctx: RequestContext, domain: string, number: string): Promise<Mailbox | null> {
    requireRole(ctx, Role.INGEST, Role.ADMIN);
    const [extension] = await readRows<ExtensionRow & { sipDomain: string }>(ctx,
      `SELECT ${EXTENSION_COLUMNS}, t.sip_domain AS "sipDomain" FROM extension e JOIN tenant t ON t.id = e.tenant_id
       WHERE t.sip_domain = lower($1) AND e.extension_number = $2 AND e.status = 'active'`,
      [domain, number],
    );
    if (!extension) return null;
    const [summary] = await this.summaries(ctx, [extension.id]);
    return { extension, domain: extension.sipDomain, summary, full: summary.total >= this.limits.maxMessages };
  }

  /** The same look at a mailbox by the extension's id (message-waiting after a voicemail event). */
  async mailboxOf(ctx: RequestContext, extensionId: number): Promise<Mailbox | null> {
    requireRole(ctx, Role.INGEST, Role.ADMIN);
    const [row] = await readRows<{ domain: string; number: string }>(ctx,
      `SELECT t.sip_domain AS domain, e.extension_number AS number FROM extension e JOIN tenant t ON t.id = e.tenant_id WHERE e.id = $1`,
      [extensionId],
    );
    return row ? this.mailbox(ctx, row.domain, row.number) : null;
  }

  /** An extension's unheard messages, newest first (what *98 plays). */
  async unheard(ctx: RequestContext, extensionId: number, limit = 100): Promise<VoicemailRow[]> {
    requireRole(ctx, Role.INGEST, Role.ADMIN);
    return readRows<VoicemailRow>(ctx,
      `SELECT ${VOICEMAIL_COLUMNS} FROM voicemail_message m WHERE m.extension_id = $1 AND NOT m.heard ORDER BY m.received_at DESC, m.id DESC LIMIT $2`,
      [extensionId, limit],
    );
  }

  /** A message's whole audio (the media application plays it; a download streams chunks instead). */
  async audio(ctx: RequestContext, messageId: number): Promise<Buffer> {
    requireRole(ctx, Role.INGEST, Role.ADMIN);
    const rows = await readRows<{ data: Buffer }>(ctx, `SELECT data FROM voicemail_audio_chunk WHERE message_id = $1 ORDER BY ordinal`, [messageId]);
    return Buffer.concat(rows.map((r) => r.data));
  }

  /**
   * Uploads (or replaces) an extension's greeting: a WAV of at most MAX_GREETING_SECONDS. Answers
   * whether it was created (201) or replaced (200). TENANT_ADMIN or ADMIN.
   */
  async putGreeting(ctx: RequestContext, rawExtensionId: string, audio: UploadedAudio | null): Promise<{ greeting: GreetingInfo; created: boolean }> {
    requireRole(ctx, ...WRITE_ROLES);
    const extension = await ctx.services.extensions.get(ctx, rawExtensionId);
    if (!canWrite(ctx, extension.tenantId)) throw notFound("Extension");
    if (!audio || audio.size === 0) throw badInput({ audio: ["The greeting's audio is required (a WAV file)."] });
    if (AUDIO_TYPES[audio.contentType] !== "wav") throw badInput({ audio: ["The greeting must be a WAV file (audio/wav)."] });
    const bytes = Buffer.concat(audio.chunks);
    const wav = readWav(bytes);
    if (!wav || ![1, 3, 6, 7].includes(wav.format) || wav.channels > 2) throw badInput({ audio: ["The greeting is not a readable WAV file (PCM, G.711 or float; mono or stereo)."] });
    if (wav.seconds > MAX_GREETING_SECONDS) throw badInput({ audio: [`The greeting may not be longer than ${MAX_GREETING_SECONDS} seconds.`] });
    if (wav.dataBytes === 0) throw badInput({ audio: ["The greeting has no audio."] });
    return transactional(ctx, async (tx) => {
      const [locked]: ExtensionRow[] = await tx.manager.query(`SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE e.id = $1 FOR UPDATE`, [extension.id]);
      if (!locked) throw notFound("Extension");
      const [before]: GreetingInfo[] = await tx.manager.query(`SELECT ${GREETING_COLUMNS} FROM voicemail_greeting g WHERE g.extension_id = $1`, [extension.id]);
      const [greeting]: GreetingInfo[] = await tx.manager.query(
        `INSERT INTO voicemail_greeting AS g (extension_id, tenant_id, content_type, duration_ms, size_bytes, audio) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (extension_id) DO UPDATE SET content_type = EXCLUDED.content_type, duration_ms = EXCLUDED.duration_ms, size_bytes = EXCLUDED.size_bytes,
           audio = EXCLUDED.audio, version = g.version + 1, updated_at = now()
         RETURNING ${GREETING_COLUMNS}`,
        [extension.id, extension.tenantId, audio.contentType, Math.round(wav.seconds * 1000), bytes.length, bytes],
      );
      const snapshot = (g: GreetingInfo | undefined) => ({ greeting: g ? `${g.sizeBytes} bytes, ${g.durationMs} ms` : null });
      await recordAudit(tx, {
        tenantId: extension.tenantId,
        action: "extension.greeting_updated",
        entityType: "extension",
        entityId: extension.id,
        changes: updatedChanges(snapshot(before), snapshot(greeting)),
      });
      return { greeting, created: !before };
    });
  }

  /** The greeting's audio and type, for GET; NOT_FOUND when the extension has none. */
  async getGreeting(ctx: RequestContext, rawExtensionId: string): Promise<{ info: GreetingInfo; audio: Buffer }> {
    requireRole(ctx, ...WRITE_ROLES);
    const extension = await ctx.services.extensions.get(ctx, rawExtensionId);
    const [row] = await readRows<GreetingInfo & { audio: Buffer }>(ctx, `SELECT ${GREETING_COLUMNS}, g.audio FROM voicemail_greeting g WHERE g.extension_id = $1`, [extension.id]);
    if (!row) throw notFound("Greeting");
    const { audio, ...info } = row;
    return { info, audio };
  }

  async deleteGreeting(ctx: RequestContext, rawExtensionId: string): Promise<void> {
    requireRole(ctx, ...WRITE_ROLES);
    const extension = await ctx.services.extensions.get(ctx, rawExtensionId);
    if (!canWrite(ctx, extension.tenantId)) throw notFound("Extension");
    await transactional(ctx, async (tx) => {
      const [rows]: [GreetingInfo[]] = await tx.manager.query(`DELETE FROM voicemail_greeting g WHERE g.extension_id = $1 RETURNING ${GREETING_COLUMNS}`, [extension.id]);
      if (!rows.length) throw notFound("Greeting");
      await recordAudit(tx, {
        tenantId: extension.tenantId,
        action: "extension.greeting_deleted",
        entityType: "extension",
        entityId: extension.id,
        changes: { greeting: [`${rows[0].sizeBytes} bytes, ${rows[0].durationMs} ms`, null] },
      });
    });
  }

  /** The media application's copy of a greeting to play: its audio and version, or null when the extension has none. */
  async greetingForPlayback(ctx: RequestContext, extensionId: number): Promise<{ audio: Buffer; version: number } | null> {
    requireRole(ctx, Role.INGEST, Role.ADMIN);
    const [row] = await readRows<{ audio: Buffer; version: number }>(ctx, `SELECT g.audio, g.version FROM voicemail_greeting g WHERE g.extension_id = $1`, [extensionId]);
    return row ?? null;
  }

  /** A writer's change to one message, under its extension's row lock. */
  private async change(
    ctx: RequestContext,
    rawId: string | number,
    work: (tx: RequestContext, extension: ExtensionRow, current: VoicemailRow) => Promise<VoicemailRow>,
  ): Promise<VoicemailRow> {
    requireRole(ctx, ...WRITE_ROLES);
    const id = parseId(rawId);
    return transactional(ctx, async (tx) => {
      const [found]: Array<{ extensionId: number; tenantId: number }> =
        id === null ? [] : await tx.manager.query(`SELECT extension_id AS "extensionId", tenant_id AS "tenantId" FROM voicemail_message WHERE id = $1`, [id]);
      if (!found || !canWrite(tx, found.tenantId)) throw notFound("Voicemail message");
      const [extension]: ExtensionRow[] = await tx.manager.query(`SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE e.id = $1 FOR UPDATE`, [found.extensionId]);
      const [current]: VoicemailRow[] = await tx.manager.query(`SELECT ${VOICEMAIL_COLUMNS} FROM voicemail_message m WHERE m.id = $1`, [id]);
      // Deleted by someone else while we waited for the lock.
      if (!extension || !current) throw notFound("Voicemail message");
      return work(tx, extension, current);
    });
  }

  private async findByMessageId(tx: RequestContext, extensionId: number, messageId: string): Promise<VoicemailRow | undefined> {
    const [row]: VoicemailRow[] = await tx.manager.query(`SELECT ${VOICEMAIL_COLUMNS} FROM voicemail_message m WHERE m.extension_id = $1 AND m.message_id = $2`, [
      extensionId,
      messageId,
    ]);
    return row;
  }

  /** Queues the event of a change with the extension's summary as the change left it. */
  private async announce(tx: RequestContext, type: VoicemailEventType, extension: ExtensionRow, message: VoicemailRow): Promise<void> {
    const [summary] = await this.summaries(tx, [extension.id]);
    publishVoicemail(tx, { type, tenantId: extension.tenantId, extension, message, summary, occurredAt: new Date().toISOString() });
  }

  private normalize(args: VoicemailPageArgs): VoicemailQuery {
    return { limit: pageSize(args.first), after: args.after ? decodeVoicemailCursor(args.after) : null, heard: args.heard ?? null };
  }
}
