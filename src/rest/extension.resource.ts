import type { SubscriberRow } from "../modules/extension/extension-credentials";
import type { ExtensionPage, ExtensionRow } from "../modules/extension/extension.service";
import type { ImportResult } from "../modules/extension/extension-import.types";
import { EXTENSION_REST_FIELDS } from "../modules/extension/extension.inputs";
import { HttpError } from "./errors";

/** The REST representation (Laravel API resource): snake_case, integer ids, never the secret. */
export interface ExtensionResource {
  id: number;
  tenant_id: number;
  extension_number: string;
  display_name: string | null;
  email: string | null;
  status: string;
  voicemail_enabled: boolean;
  created_at: string;
  updated_at: string;
}

export function extensionResource(row: ExtensionRow): ExtensionResource {
  return {
    id: Number(row.id),
    tenant_id: Number(row.tenantId),
    extension_number: row.extensionNumber,
    display_name: row.displayName,
    email: row.email,
    status: row.status,
    voicemail_enabled: row.voicemailEnabled,
    created_at: new Date(row.createdAt).toISOString(),
    updated_at: new Date(row.updatedAt).toISOString(),
  };
}

/** GET /api/engine/credentials (contract §7): one row of sip_subscriber, as the engine's view spells it. */
export function subscriberResource(row: SubscriberRow) {
  return {
    username: row.username,
    domain: row.domain,
    ha1: row.ha1,
    ha1b: row.ha1b,
    ha1_sha256: row.ha1Sha256,
    tenant_id: Number(row.tenantId),
    extension_id: Number(row.extensionId),
    voicemail_enabled: row.voicemailEnabled,
  };
}

/** Body field → service input field. Anything else in a body is ignored, as Laravel's validated() does. */
const BODY_FIELDS = EXTENSION_REST_FIELDS;

/** The fields a body carries, renamed; an absent field stays absent (undefined) and null stays null. */
export function inputFields(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "The request body must be a JSON object.");
  const out: Record<string, unknown> = {};
  for (const [field, name] of Object.entries(BODY_FIELDS)) {
    if (Object.hasOwn(body, field)) out[name] = (body as Record<string, unknown>)[field];
  }
  return out;
}

/** One numbered page of rows, as the services answer a REST listing. */
export type NumberedPage<R> = Pick<ExtensionPage, "total" | "page" | "perPage"> & { rows: R[] };

/** Laravel's length-aware paginator: `links` and `meta`, the filters kept in every link. */
export function paginated<R, T>(page: NumberedPage<R>, path: string, filters: Record<string, string>, resource: (row: R) => T) {
  const lastPage = Math.max(1, Math.ceil(page.total / page.perPage));
  const link = (n: number) => `${path}?${new URLSearchParams({ ...filters, per_page: String(page.perPage), page: String(n) })}`;
  const from = page.rows.length ? (page.page - 1) * page.perPage + 1 : null;
  return {
    data: page.rows.map(resource),
    links: {
      first: link(1),
      last: link(lastPage),
      prev: page.page > 1 ? link(page.page - 1) : null,
      next: page.page < lastPage ? link(page.page + 1) : null,
    },
    meta: {
      current_page: page.page,
      from,
      last_page: lastPage,
      path,
      per_page: page.perPage,
      to: from === null ? null : from + page.rows.length - 1,
      total: page.total,
    },
  };
}

/** An import result as REST spells it: snake_case fields, status values in lower case (as the REST resources' enums). */
export function importResultResource(result: ImportResult) {
  return {
    dry_run: result.dryRun,
    created: result.created,
    updated: result.updated,
    unchanged: result.unchanged,
    failed: result.failed,
    rows: result.rows.map((row) => ({ line: row.line, extension_number: row.extensionNumber, status: row.status.toLowerCase(), errors: row.errors })),
  };
}
