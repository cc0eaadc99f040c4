import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import type { TestServer } from "../support/server";
import { OPENAPI_DOCUMENT } from "../../src/rest/openapi";

/**
 * REST calls for the e2e suites. Every answer to a documented operation is checked against the
 * OpenAPI document: its status must be documented, and its body must match that response's schema.
 */

type Doc = typeof OPENAPI_DOCUMENT;
type Operation = { responses: Record<string, { $ref?: string; content?: Record<string, { schema: object }> }> };

const DOC_ID = "https://pbx.test/openapi.json";
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(OPENAPI_DOCUMENT as unknown as object, DOC_ID);

const pointer = (segments: string[]) => segments.map((s) => s.replace(/~/g, "~0").replace(/\//g, "~1")).join("/");

const templates = Object.keys(OPENAPI_DOCUMENT.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}/?$`),
}));

/** The documented operation a request hits, or null for undocumented routes and methods (404/405 answers). */
export function operationFor(method: string, pathname: string): { template: string; method: string; operation: Operation } | null {
  const match = templates.find((t) => t.pattern.test(pathname));
  if (!match) return null;
  const m = (method === "HEAD" ? "get" : method.toLowerCase()) as keyof Doc["paths"][keyof Doc["paths"]];
  const operation = (OPENAPI_DOCUMENT.paths as Record<string, Record<string, unknown>>)[match.template][m] as Operation | undefined;
  return operation?.responses ? { template: match.template, method: m, operation } : null;
}

/** Every (operation, status) a suite saw, for the coverage check. */
export const seen = new Set<string>();

export function checkAgainstDocument(method: string, pathname: string, status: number, body: unknown, text: string): void {
  const found = operationFor(method, pathname);
  if (!found) return;
  const key = String(status);
  const documented = found.operation.responses[key];
  if (!documented) throw new Error(`${method} ${pathname} answered ${status}, which the OpenAPI document does not list: ${text}`);
  seen.add(`${found.method.toUpperCase()} ${found.template} ${key}`);
  let responsePath = ["paths", found.template, found.method, "responses", key];
  let response = documented;
  if (response.$ref) {
    responsePath = response.$ref.slice(2).split("/");
    response = (OPENAPI_DOCUMENT.components.responses as Record<string, typeof documented>)[responsePath[2]];
  }
  if (!response.content) {
    if (text !== "") throw new Error(`${method} ${pathname} ${status} should have no body: ${text}`);
    return;
  }
  if (method === "HEAD") return;
  // A non-JSON answer (audio, the CSV export) is checked for its documented status only.
  if (!response.content["application/json"]) return;
  const validate = ajv.getSchema(`${DOC_ID}#/${pointer([...responsePath, "content", "application/json", "schema"])}`);
  if (!validate) throw new Error(`no schema for ${method} ${pathname} ${status}`);
  if (!validate(body)) {
    throw new Error(`${method} ${pathname} ${status} does not match the OpenAPI document: ${ajv.errorsText(validate.errors)}\n${text}`);
  }
}

/** Every documented (operation, status) pair of the paths `which` selects (all by default), to compare with `seen`. */
export function documentedResponses(which: (template: string) => boolean = () => true): string[] {
  const out: string[] = [];
  for (const [template, item] of Object.entries(OPENAPI_DOCUMENT.paths as Record<string, Record<string, unknown>>)) {
    if (!which(template)) continue;
    for (const [method, operation] of Object.entries(item)) {
      const responses = (operation as Operation).responses;
      if (responses) for (const status of Object.keys(responses)) out.push(`${method.toUpperCase()} ${template} ${status}`);
    }
  }
  return out;
}

export interface RestResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RestCall {
  key?: string | null;
  /** A value to send as JSON. */
  json?: unknown;
  /** A raw body (sent as is, with the given headers). */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

export type Rest = <T = any>(method: string, path: string, call?: RestCall) => Promise<RestResponse<T>>;

/** A fetch-based REST client for one test server; the admin key by default. */
export function restClient(ts: TestServer): Rest {
  return async (method, path, call = {}) => {
    const headers: Record<string, string> = { accept: "application/json", ...call.headers };
    let body: string | Buffer | undefined = call.raw;
    if (call.json !== undefined) {
      body = JSON.stringify(call.json);
      headers["content-type"] ??= "application/json";
    }
    const res = await ts.http(path, { method, headers, body, key: call.key === undefined ? ts.adminKey : call.key });
    const text = await res.text();
    let parsed: unknown = null;
    if (text !== "" && res.headers.get("content-type")?.includes("application/json")) parsed = JSON.parse(text);
    checkAgainstDocument(method, new URL(path, "http://x").pathname, res.status, parsed, text);
    return { status: res.status, headers: res.headers, body: parsed as never, text };
  };
}
