/** Every error a client may see carries one of these codes. */
export enum ErrorCode {
  BAD_USER_INPUT = "BAD_USER_INPUT",
  NOT_FOUND = "NOT_FOUND",
  CONFLICT = "CONFLICT",
  EXTENSION_LIMIT_REACHED = "EXTENSION_LIMIT_REACHED",
  UNAUTHENTICATED = "UNAUTHENTICATED",
  FORBIDDEN = "FORBIDDEN",
  INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR",
  /** The server is shutting down (or cannot reach what it needs): try again, elsewhere or later. */
  SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE",
}

/** The one mapping from error code to HTTP status, used by REST and by GraphQL-over-HTTP transport errors. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  [ErrorCode.BAD_USER_INPUT]: 422,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.EXTENSION_LIMIT_REACHED]: 422,
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.INTERNAL_SERVER_ERROR]: 500,
  [ErrorCode.SERVICE_UNAVAILABLE]: 503,
};

/** Field name (as the GraphQL input spells it) → human-readable messages. */
export type FieldErrors = Record<string, string[]>;

/**
 * The single error type of the service layer. Its message is safe to show a client:
 * it never carries a secret, SQL text or a driver message.
 */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly fields?: FieldErrors,
    /** Extra, client-safe details (e.g. the queues that block a deletion). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "AppError";
  }
}

export function badInput(fields: FieldErrors, message = "The given data was invalid."): AppError {
  return new AppError(ErrorCode.BAD_USER_INPUT, message, fields);
}

export function notFound(what: string, fields?: FieldErrors): AppError {
  return new AppError(ErrorCode.NOT_FOUND, `${what} not found.`, fields);
}

export function forbidden(message = "This action is not allowed for your API key."): AppError {
  return new AppError(ErrorCode.FORBIDDEN, message);
}

export function unauthenticated(): AppError {
  return new AppError(ErrorCode.UNAUTHENTICATED, "Unauthenticated.");
}

export function conflict(message: string, details?: Record<string, unknown>): AppError {
  return new AppError(ErrorCode.CONFLICT, message, undefined, details);
}

/** PostgreSQL error codes we translate into client errors. */
export const PG_UNIQUE_VIOLATION = "23505";
export const PG_FOREIGN_KEY_VIOLATION = "23503";

export function pgErrorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; driverError?: { code?: unknown } };
  const code = e?.driverError?.code ?? e?.code;
  return typeof code === "string" ? code : undefined;
}

export function pgConstraint(error: unknown): string | undefined {
  const e = error as { constraint?: unknown; driverError?: { constraint?: unknown } };
  const c = e?.driverError?.constraint ?? e?.constraint;
  return typeof c === "string" ? c : undefined;
}

/**
 * PostgreSQL's refusals of a value as sent: a NUL or an invalid byte sequence in text (22021,
 * 22P05), a number or a date out of its column's range (22003, 22008), text that is not the
 * column's type (22P02). They are the client's mistake whatever path carried the value, so they
 * answer BAD_USER_INPUT (REST 422), never a 500.
 */
const PG_VALUE_REFUSALS = new Set(["22021", "22P05", "22003", "22008", "22P02"]);

export function valueRefusal(error: unknown): AppError | null {
  const code = pgErrorCode(error);
  if (code === undefined || !PG_VALUE_REFUSALS.has(code)) return null;
  return new AppError(ErrorCode.BAD_USER_INPUT, "A value is out of range, or holds a character that cannot be stored (such as NUL).");
}
