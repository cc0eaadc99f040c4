import { parse, CsvError } from "csv-parse";
import { stringify } from "csv-stringify";
import { Readable, Transform } from "node:stream";
import { readScope, writeScope } from "../../auth/access";
import { CSV_EXPORT_OPTIONS, restoreCell } from "../../common/csv-cell";
import { AppError, badInput, ErrorCode, type FieldErrors, notFound } from "../../common/errors";
import { assertValid } from "../../common/validation";
import type { RequestContext } from "../../context/request-context";
import { readRows } from "../../db/read";
import { transactional } from "../../db/transaction";
import { createdChanges, recordAudit, updatedChanges, type AuditRecord } from "../audit/audit";
import type { TenantService } from "../tenant/tenant.service";
import { sipDigests, type ExtensionCredentials } from "./extension-credentials";
import { ExtensionStatus } from "./extension.entity";
import { CreateExtensionInput, EXTENSION_REST_FIELDS, UpdateExtensionInput } from "./extension.inputs";
import { EXTENSION_COLUMNS, extensionSnapshot, type ExtensionRow, type ExtensionService } from "./extension.service";
import { ImportMode, ImportRowStatus, type ImportResult, type ImportRow } from "./extension-import.types";
import { publishExtension } from "../../subscriptions/events";
import { assignOwn, parseJson } from "../../common/json";
import { dialPlanHolders, takenMessage, translateDialPlan } from "../dial-plan/dial-plan";

export const IMPORT_MAX_ROWS = 10_000;
/** Cells a CSV line may have: the import has 6 columns and 4 more it ignores; a wider line is refused before it is looked at. */
export const IMPORT_MAX_COLUMNS = 32;
/** The columns of an import and of an export (REST field names), in export order; `secret` is import-only. */
export const IMPORT_COLUMNS = ["extension_number", "display_name", "email", "secret", "status", "voicemail_enabled"] as const;
export const EXPORT_COLUMNS = IMPORT_COLUMNS.filter((c) => c !== "secret");
/** Fields of the REST resource that a file may carry (a saved API answer) and that an import ignores: they are not the file's to set. */
const IGNORED_COLUMNS: ReadonlySet<string> = new Set(["id", "tenant_id", "created_at", "updated_at"]);
const EXPORT_BATCH = 1_000;

type Column = (typeof IMPORT_COLUMNS)[number];
const KNOWN: ReadonlySet<string> = new Set(IMPORT_COLUMNS);
const FIELD_OF: Record<Column, string> = EXTENSION_REST_FIELDS;
const COLUMN_OF: Record<string, string> = Object.fromEntries(Object.entries(EXTENSION_REST_FIELDS).map(([column, field]) => [field, column]));

/** One row of a file: its line, its values by column (absent = not given), or why it is no row at all. */
export interface ImportRecord {
  line: number;
  fields: Partial<Record<Column, unknown>>;
  errors?: FieldErrors;
}

const tooMany = () => badInput({ data: [`A file may hold at most ${IMPORT_MAX_ROWS} rows.`] });

/**
 * A CSV cell as a field value: an export's formula guard (`'=…`) is taken off (src/common/csv-cell.ts);
 * empty clears display_name and email and leaves the other columns unset.
 */
function csvValue(column: Column, raw: string): unknown {
  const cell = restoreCell(raw);
  if (cell === "") return column === "display_name" || column === "email" ? null : undefined;
  if (column === "voicemail_enabled") {
    if (/^(true|1)$/i.test(cell)) return true;
    if (/^(false|0)$/i.test(cell)) return false;
  }
  return cell;
}

const count = (cells: string[], pattern: RegExp) => cells.reduce((n, cell) => n + (cell.match(pattern)?.length ?? 0), 0);

/**
 * Reads a CSV file (RFC 4180 quoting, optional UTF-8 BOM, CRLF or LF) with csv-parse as a stream:
 * the text is never held whole, only the rows. The first line names the columns, in any order.
 */
export async function readCsvRecords(source: Readable | string): Promise<ImportRecord[]> {
  const input = typeof source === "string" ? Readable.from([source]) : source;
  const guard = columnGuard();
  const parser = input.pipe(guard).pipe(parse({ bom: true, info: true, skip_empty_lines: true, relax_column_count: true }));
  input.once("error", (error) => guard.destroy(error));
  guard.once("error", (error) => parser.destroy(error));
  const records: ImportRecord[] = [];
  let header: Array<Column | null> | null = null;
  // csv-parse's line count is where a record ends, and counts a CRLF inside a quoted cell as two lines.
  let crlfInCells = 0;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      crlfInCells += count(record, /\r\n/g);
      if (header === null) {
        header = readHeader(record);
        continue;
      }
      if (records.length === IMPORT_MAX_ROWS) throw tooMany();
      const line = info.lines - crlfInCells - count(record, /\r\n|\r|\n/g);
      if (record.length !== header.length) {
        records.push({ line, fields: {}, errors: { row: [`The line has ${record.length} fields; the header has ${header.length}.`] } });
        continue;
      }
      const fields: ImportRecord["fields"] = {};
      header.forEach((column, i) => {
        if (column !== null) fields[column] = csvValue(column, record[i]);
      });
      records.push({ line, fields });
    }
  } catch (error) {
    parser.destroy();
    // csv-parse's messages quote the cell they stopped at (a secret, maybe): only where, never what.
    if (error instanceof CsvError) throw badInput({ data: [`The CSV is malformed: ${csvProblem(error)}`] });
    throw error;
  }
  if (header === null) throw badInput({ data: ["The CSV needs a header line naming its columns."] });
  return records;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const NEWLINE = 0x0a;

/**
 * Refuses a line wider than IMPORT_MAX_COLUMNS as its bytes arrive, before csv-parse builds it:
 * csv-parse spends tens of microseconds per field, so a 100,000-column line held the event loop
 * for seconds. Commas and newlines inside quotes (RFC 4180: `""` is a quote inside quotes) are
 * part of a cell, not separators; one pass, constant work per byte.
 */
function columnGuard(): Transform {
  let quoted = false;
  let commas = 0;
  let line = 1;
  let recordLine = 1;
  return new Transform({
    transform(chunk: Buffer | string, _encoding, done) {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      for (let i = 0; i < bytes.length; i++) {
        const byte = bytes[i];
        if (byte === QUOTE) quoted = !quoted;
        else if (byte === NEWLINE) {
          line++;
          if (!quoted) {
            commas = 0;
            recordLine = line;
          }
        } else if (byte === COMMA && !quoted && ++commas >= IMPORT_MAX_COLUMNS) {
          return done(badInput({ data: [`Line ${recordLine} has more than ${IMPORT_MAX_COLUMNS} fields; a line may have at most ${IMPORT_MAX_COLUMNS}.`] }));
        }
      }
      done(null, bytes);
    },
  });
}

/** What csv-parse found wrong, and where: its code in words and the line, without the cell it quotes. */
function csvProblem(error: CsvError): string {
  const lines = (error as unknown as { lines?: unknown }).lines;
  const where = typeof lines === "number" ? ` (line ${lines})` : "";
  return `${error.code.replace(/^CSV_/, "").replace(/_/g, " ").toLowerCase()}${where}.`;
}

/** A few names of a header, each cut short: enough to find the typo, never a whole line echoed back. */
function someNames(names: string[]): string {
  const shown = names.slice(0, 5).map((name) => (name.length > 40 ? `${name.slice(0, 40)}…` : name));
  return names.length > shown.length ? `${shown.join(", ")} and ${names.length - shown.length} more` : shown.join(", ");
}

function readHeader(cells: string[]): Array<Column | null> {
  const names = cells.map((cell) => cell.trim().toLowerCase());
  // A first line without extension_number is most likely a data row (a file without a header):
  // its cells (a secret among them) are not named back.
  if (!names.includes("extension_number")) {
    throw badInput({ data: [`The first line must be a header line naming the columns (${IMPORT_COLUMNS.join(", ")}); it has no extension_number column.`] });
  }
  const problems: string[] = [];
  const unknown = names.filter((name) => !KNOWN.has(name) && !IGNORED_COLUMNS.has(name));
  if (unknown.length) problems.push(`Unknown columns on line 1: ${someNames(unknown)}. The columns are ${IMPORT_COLUMNS.join(", ")}.`);
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const name of names) (seen.has(name) ? repeated : seen).add(name);
  if (repeated.size) problems.push(`Repeated columns on line 1: ${someNames([...repeated])}.`);
  if (problems.length) throw badInput({ data: problems });
  return names.map((name) => (KNOWN.has(name) ? (name as Column) : null));
}

/** A JSON array of objects with the REST field names; rows count from 1. */
export function readJsonRecords(value: unknown): ImportRecord[] {
  if (!Array.isArray(value)) throw badInput({ data: ["The JSON must be an array of objects with the REST field names."] });
  if (value.length > IMPORT_MAX_ROWS) throw tooMany();
  return value.map((element: unknown, index): ImportRecord => {
    const line = index + 1;
    if (typeof element !== "object" || element === null || Array.isArray(element)) return { line, fields: {}, errors: { row: ["The row must be an object."] } };
    const fields: ImportRecord["fields"] = {};
    const errors: FieldErrors = {};
    for (const [key, v] of Object.entries(element)) {
      if (KNOWN.has(key)) fields[key as Column] = v;
      else if (!IGNORED_COLUMNS.has(key)) errors[key] = [`Unknown field. The fields are ${IMPORT_COLUMNS.join(", ")}.`];
    }
    return Object.keys(errors).length ? { line, fields, errors } : { line, fields };
  });
}

/** JSON text (the GraphQL `data` argument) → records; malformed JSON is a refusal on `data`. */
export function parseJsonRecords(text: string): ImportRecord[] {
  let value: unknown;
  try {
    value = parseJson(text);
  } catch {
    throw badInput({ data: ["The data is not valid JSON."] });
  }
  return readJsonRecords(value);
}

type Stored = ExtensionRow & { ha1Sha256: string | null };

/** The tenant an import writes to: its id and the realm its digests name. */
interface Realm {
  id: number;
  sipDomain: string;
}

/** What one valid row will write. */
interface Planned {
  row: ImportRow;
  /** The extension it updates, when it updates one. */
  current?: Stored;
  values: { displayName: string | null; email: string | null; status: ExtensionStatus; voicemailEnabled: boolean };
  /** A secret to store (new, or different from the current one). */
  secret?: string;
}

export interface ImportOptions {
  dryRun: boolean;
  mode: ImportMode;
}

const snake = (fields: FieldErrors) => Object.entries(fields).map(([field, messages]) => ({ field: COLUMN_OF[field] ?? field, messages }));

/**
 * Bulk import (contract §10). Every row is judged by the very input classes single creates and
 * updates use; the numbers of the file are checked against each other and the tenant; the
 * tenant's maxExtensions holds for the whole file because it is judged and written under the
 * tenant's row lock, the same lock single creates take. All or nothing in one transaction, with
 * set-based writes: one INSERT and one UPDATE for the whole file, and one audit statement.
 */
export class ExtensionImportService {
  constructor(
    private readonly extensions: ExtensionService,
    private readonly tenants: TenantService,
    private readonly credentials: ExtensionCredentials,
  ) {}

  /** `read` runs after the caller's right to write the tenant is checked, so a refused caller's file is never read. */
  async run(ctx: RequestContext, rawTenantId: unknown, read: () => Promise<ImportRecord[]>, options: ImportOptions): Promise<ImportResult> {
    this.extensions.authorize(ctx, "write");
    const tenantId = writeScope(ctx, rawTenantId as string | number | null | undefined);
    const records = await read();
    return transactional(ctx, async (tx) => {
      const tenant = await this.tenants.lockForWrite(tx, tenantId);
      const numbers = [...new Set(records.map((r) => r.fields.extension_number).filter((n): n is string => typeof n === "string"))];
      const existing: Stored[] = await tx.manager.query(
        `SELECT ${EXTENSION_COLUMNS}, e.ha1_sha256 AS "ha1Sha256" FROM extension e
          WHERE e.tenant_id = $1 AND e.extension_number = ANY($2::text[]) FOR UPDATE`,
        [tenantId, numbers],
      );
      const [{ count }]: Array<{ count: number }> = await tx.manager.query(`SELECT count(*)::int AS count FROM extension WHERE tenant_id = $1`, [tenantId]);
      const holders = await dialPlanHolders(tx, tenantId, numbers, "extension");
      const plans = await this.plan(tenant, records, new Map(existing.map((e) => [e.extensionNumber, e])), options.mode, holders);
      this.applyLimit(plans, tenant.maxExtensions, count);
      const rows = plans.map((p) => p.row);
      const tally = (status: ImportRowStatus) => rows.filter((r) => r.status === status).length;
      const result: ImportResult = {
        dryRun: options.dryRun,
        created: tally(ImportRowStatus.CREATED),
        updated: tally(ImportRowStatus.UPDATED),
        unchanged: tally(ImportRowStatus.UNCHANGED),
        failed: tally(ImportRowStatus.FAILED),
        rows,
      };
      if (result.failed === 0 && !options.dryRun) await this.write(tx, tenant, plans);
      return result;
    });
  }

  /** Judges every row; a failing row keeps its messages, by column. */
  private async plan(tenant: Realm, records: ImportRecord[], existing: Map<string, Stored>, mode: ImportMode, holders: Map<string, string>): Promise<Planned[]> {
    const tenantId = tenant.id;
    const linesOf = new Map<string, number[]>();
    for (const r of records) {
      const n = r.fields.extension_number;
      if (typeof n === "string") linesOf.set(n, [...(linesOf.get(n) ?? []), r.line]);
    }
    const plans: Planned[] = [];
    for (const record of records) {
      const number = typeof record.fields.extension_number === "string" ? record.fields.extension_number : null;
      const errors: FieldErrors = { ...record.errors };
      const add = (field: string, message: string) => (errors[field] = [...(errors[field] ?? []), message]);
      const current = number === null ? undefined : existing.get(number);
      const given = Object.fromEntries(Object.entries(record.fields).filter(([, v]) => v !== undefined).map(([c, v]) => [FIELD_OF[c as Column], v]));
      const updating = current !== undefined && mode === ImportMode.UPSERT;
      const input = updating ? assignOwn(new UpdateExtensionInput(), given) : assignOwn(new CreateExtensionInput(), { tenantId, ...given });
      // A line that is no row (wrong field count, not an object) has nothing more to judge.
      if (!record.errors?.row) await assertValid(input).catch((error: unknown) => {
        if (!(error instanceof AppError) || !error.fields) throw error;
        for (const [field, messages] of Object.entries(error.fields)) for (const m of messages) add(field, m);
      });
      if (current !== undefined && mode === ImportMode.CREATE) add("extensionNumber", "The extension number has already been taken.");
      // One dial plan per tenant (§12): a queue's or ring group's number is refused here as in a single create.
      const holder = number === null ? undefined : holders.get(number);
      if (holder !== undefined) add("extensionNumber", takenMessage(number!, holder));
      const lines = number === null ? [] : (linesOf.get(number) ?? []);
      if (lines.length > 1) add("extensionNumber", `The extension number appears more than once in the file (lines ${lines.join(", ")}).`);
      const fieldErrors = snake(errors);
      const row: ImportRow = { line: record.line, extensionNumber: number, status: ImportRowStatus.FAILED, errors: fieldErrors };
      if (fieldErrors.length) {
        plans.push({ row, values: { displayName: null, email: null, status: ExtensionStatus.ACTIVE, voicemailEnabled: false } });
        continue;
      }
      const v = input as Partial<CreateExtensionInput>;
      const base = current ?? { displayName: null, email: null, status: ExtensionStatus.ACTIVE, voicemailEnabled: false };
      const values = {
        displayName: v.displayName !== undefined ? v.displayName : base.displayName,
        email: v.email !== undefined ? v.email : base.email,
        status: (v.status ?? base.status) as ExtensionStatus,
        voicemailEnabled: v.voicemailEnabled ?? base.voicemailEnabled,
      };
      if (!current) {
        plans.push({ row: { ...row, status: ImportRowStatus.CREATED }, values, secret: v.secret });
        continue;
      }
      // The same secret gives the same digest: a repeated secret is no change, and nothing needs opening.
      const sameSecret = v.secret !== undefined && current.ha1Sha256 === sipDigests(current.extensionNumber, tenant.sipDomain, v.secret).ha1Sha256;
      const secret = v.secret !== undefined && !sameSecret ? v.secret : undefined;
      const same =
        secret === undefined &&
        values.displayName === current.displayName &&
        values.email === current.email &&
        values.status === current.status &&
        values.voicemailEnabled === current.voicemailEnabled;
      plans.push({ row: { ...row, status: same ? ImportRowStatus.UNCHANGED : ImportRowStatus.UPDATED }, current, values, secret });
    }
    return plans;
  }

  /** Invariant 1 for the whole file: new rows past the tenant's room fail, each saying so, as a single create would. */
  private applyLimit(plans: Planned[], maxExtensions: number, count: number): void {
    let room = maxExtensions - count;
    const message = `The tenant has reached its limit of ${maxExtensions} extensions.`;
    for (const plan of plans) {
      if (plan.row.status !== ImportRowStatus.CREATED) continue;
      if (room > 0) room -= 1;
      else plan.row = { ...plan.row, status: ImportRowStatus.FAILED, errors: [{ field: "tenant_id", messages: [message] }] };
    }
  }

  /** One INSERT for the new rows, one UPDATE for the changed ones, one statement of audit entries. */
  private async write(tx: RequestContext, tenant: Realm, plans: Planned[]): Promise<void> {
    const tenantId = tenant.id;
    // Secrets and digests through the one function every other write of a secret uses.
    const seal = (p: Planned) => (p.secret === undefined ? null : this.credentials.seal(tenantId, p.row.extensionNumber!, tenant.sipDomain, p.secret));
    const creates = plans.filter((p) => p.row.status === ImportRowStatus.CREATED);
    const updates = plans.filter((p) => p.row.status === ImportRowStatus.UPDATED);
    const audit: AuditRecord[] = [];
    if (creates.length) {
      const sealed = creates.map((p) => seal(p)!);
      const rows: ExtensionRow[] = await tx.manager.query(
        `INSERT INTO extension AS e (tenant_id, extension_number, display_name, email, secret_ciphertext, ha1, ha1b, ha1_sha256, status, voicemail_enabled)
         SELECT $1, u.n, u.d, u.m, u.s, u.h1, u.h1b, u.h2, u.st, u.v
           FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::boolean[]) AS u(n, d, m, s, h1, h1b, h2, st, v)
         RETURNING ${EXTENSION_COLUMNS}`,
        [
          tenantId,
          creates.map((p) => p.row.extensionNumber),
          creates.map((p) => p.values.displayName),
          creates.map((p) => p.values.email),
          sealed.map((c) => c.secretCiphertext),
          sealed.map((c) => c.ha1),
          sealed.map((c) => c.ha1b),
          sealed.map((c) => c.ha1Sha256),
          creates.map((p) => p.values.status),
          creates.map((p) => p.values.voicemailEnabled),
        ],
      ).catch(translateDialPlan("extensionNumber"));
      const occurredAt = new Date().toISOString();
      for (const row of rows) {
        audit.push({ tenantId, action: "extension.created", entityType: "extension", entityId: row.id, changes: createdChanges(extensionSnapshot(row)) });
        publishExtension(tx, { type: "CREATED", tenantId, extension: row, occurredAt });
      }
    }
    if (updates.length) {
      const sealed = updates.map((p) => seal(p));
      const [rows]: [ExtensionRow[]] = await tx.manager.query(
        `UPDATE extension AS e SET display_name = u.d, email = u.m, status = u.st, voicemail_enabled = u.v,
                secret_ciphertext = COALESCE(u.s, e.secret_ciphertext), ha1 = COALESCE(u.h1, e.ha1), ha1b = COALESCE(u.h1b, e.ha1b),
                ha1_sha256 = COALESCE(u.h2, e.ha1_sha256), updated_at = now()
           FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::boolean[])
                AS u(id, d, m, s, h1, h1b, h2, st, v)
          WHERE e.id = u.id RETURNING ${EXTENSION_COLUMNS}`,
        [
          updates.map((p) => p.current!.id),
          updates.map((p) => p.values.displayName),
          updates.map((p) => p.values.email),
          sealed.map((c) => c?.secretCiphertext ?? null),
          sealed.map((c) => c?.ha1 ?? null),
          sealed.map((c) => c?.ha1b ?? null),
          sealed.map((c) => c?.ha1Sha256 ?? null),
          updates.map((p) => p.values.status),
          updates.map((p) => p.values.voicemailEnabled),
        ],
      );
      const before = new Map(updates.map((p) => [p.current!.id, p]));
      const disabled: ExtensionRow[] = [];
      for (const row of rows) {
        const plan = before.get(row.id)!;
        audit.push({
          tenantId,
          action: "extension.updated",
          entityType: "extension",
          entityId: row.id,
          changes: updatedChanges(extensionSnapshot(plan.current!), extensionSnapshot(row), plan.secret !== undefined ? ["secret"] : []),
        });
        publishExtension(tx, { type: "UPDATED", tenantId, extension: row, occurredAt: new Date().toISOString() });
        if (plan.current!.status === ExtensionStatus.ACTIVE && row.status === ExtensionStatus.DISABLED) disabled.push(row);
      }
      await this.extensions.unregisterDevices(tx, disabled);
    }
    await recordAudit(tx, audit);
  }

  /**
   * The tenant's extensions as CSV in the import's columns (never the secret), formulas neutralised
   * and line breaks quoted (src/common/csv-cell.ts), streamed: keyset
   * batches of EXPORT_BATCH rows through csv-stringify, so memory does not grow with the tenant.
   */
  async exportCsv(ctx: RequestContext, rawTenantId: unknown): Promise<Readable> {
    this.extensions.authorize(ctx, "read");
    let tenantId: number | null;
    try {
      tenantId = readScope(ctx, rawTenantId as string | number | null | undefined);
    } catch (error) {
      if (error instanceof AppError && error.code === ErrorCode.NOT_FOUND) throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
      throw error;
    }
    if (tenantId === null) throw badInput({ tenantId: ["The tenant id field is required."] });
    if (!(await ctx.loaders.tenant.load(tenantId))) throw notFound("Tenant", { tenantId: ["The selected tenant does not exist."] });
    const scope = tenantId;
    async function* batches() {
      let after = 0;
      for (;;) {
        const rows = await readRows<ExtensionRow>(ctx, `SELECT ${EXTENSION_COLUMNS} FROM extension e WHERE e.tenant_id = $1 AND e.id > $2 ORDER BY e.id LIMIT ${EXPORT_BATCH}`, [scope, after]);
        for (const row of rows) yield [row.extensionNumber, row.displayName, row.email, row.status, row.voicemailEnabled];
        if (rows.length < EXPORT_BATCH) return;
        after = rows[rows.length - 1].id;
      }
    }
    return Readable.from(batches()).pipe(
      stringify({ header: true, columns: [...EXPORT_COLUMNS], ...CSV_EXPORT_OPTIONS }),
    );
  }
}
