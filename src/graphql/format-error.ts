import type { GraphQLFormattedError } from "graphql";
import { GraphQLError } from "graphql";
import { unwrapResolverError } from "@apollo/server/errors";
import { AppError, ErrorCode, valueRefusal } from "../common/errors";
import type { Logger } from "../common/logger";
import { databaseUnavailable, isDatabaseUnavailable } from "../db/replica";
import { redactLiteralAt, redactMessage, redactVariableInSource } from "../common/redact";

/** GraphQL-side codes of client mistakes, passed through as they are (parse, validation, variable coercion, a bad request). */
export const CLIENT_CODES = new Set([
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_USER_INPUT",
  "BAD_REQUEST",
  "OPERATION_RESOLUTION_FAILURE",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
  // Raised before execution (introspection without a key): a plain GraphQLError, no resolver behind it.
  "UNAUTHENTICATED",
]);

export function appErrorExtensions(error: AppError): Record<string, unknown> {
  return {
    code: error.code,
    ...(error.fields ? { fields: error.fields } : {}),
    ...(error.details ?? {}),
  };
}

/** A message as a client or a log may see it: write-only values redacted by the field that holds them. */
export function safeMessage(message: string, error: unknown): string {
  const text = redactMessage(message);
  if (!(error instanceof GraphQLError)) return text;
  return redactVariableInSource(redactLiteralAt(text, error.source?.body, error.positions), error.source?.body);
}

/**
 * The one place errors become client-visible. Service errors keep their code and message; client
 * mistakes keep theirs (logged at debug at most); anything unexpected is logged with its stack and
 * reaches the client only as a generic message. No message leaves with a write-only value in it.
 */
export function createFormatError(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const unwrapped = unwrapResolverError(error);
    // The primary lost (a failover under way): SERVICE_UNAVAILABLE, and the HTTP answer is 503 + Retry-After (app.ts).
    const original = valueRefusal(unwrapped) ?? (isDatabaseUnavailable(unwrapped) ? databaseUnavailable() : unwrapped);
    if (original instanceof AppError) {
      return { message: safeMessage(original.message, original), locations: formatted.locations, path: formatted.path, extensions: appErrorExtensions(original) };
    }
    const code = formatted.extensions?.code;
    if (code === ErrorCode.SERVICE_UNAVAILABLE && original instanceof GraphQLError) {
      return { message: formatted.message.replace(/^Context creation failed: /, ""), locations: formatted.locations, path: formatted.path, extensions: { code } };
    }
    if (typeof code === "string" && CLIENT_CODES.has(code) && !(original instanceof Error && !(original instanceof GraphQLError))) {
      const message = safeMessage(formatted.message, error instanceof GraphQLError ? error : original);
      log.debug({ code, message }, "client error in GraphQL operation");
      return { message, locations: formatted.locations, path: formatted.path, extensions: { code } };
    }
    // A refusal of the request itself that Apollo raises with an HTTP status but no code (a
    // persisted query whose hash does not match its text): the client's mistake, so BAD_REQUEST.
    const status = original instanceof GraphQLError ? (original.extensions?.http as { status?: unknown } | undefined)?.status : undefined;
    // (Apollo has already filled in INTERNAL_SERVER_ERROR as the code of an error that had none.)
    if (original instanceof GraphQLError && original.extensions?.code === undefined && typeof status === "number" && status >= 400 && status < 500) {
      const message = safeMessage(formatted.message, original);
      log.debug({ message }, "client error in GraphQL request");
      return { message, locations: formatted.locations, path: formatted.path, extensions: { code: "BAD_REQUEST" } };
    }
    log.error({ err: original }, "unexpected error in GraphQL operation");
    return {
      message: "Internal server error.",
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
    };
  };
}
