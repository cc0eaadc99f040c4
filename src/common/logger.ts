import pino, { type Logger } from "pino";
import { redactMessage } from "./redact";

export type { Logger };

/** Paths pino censors wherever they appear, so a secret cannot reach a log line by accident. */
export const REDACT_PATHS = [
  "secret",
  "*.secret",
  "*.*.secret",
  "key",
  "*.key",
  "password",
  "*.password",
  "authorization",
  "*.authorization",
  "*.headers.authorization",
  "*.headers.cookie",
  "connectionParams",
  "*.connectionParams",
  "variables",
  "*.variables",
  // Digests of the SIP secret, and a failed statement's bound parameters (they may hold them).
  "ha1",
  "*.ha1",
  "ha1b",
  "*.ha1b",
  "ha1_sha256",
  "*.ha1_sha256",
  "ha1Sha256",
  "*.ha1Sha256",
  "parameters",
  "*.parameters",
  "*.*.parameters",
];

/** pino's error serializer, with any write-only value a message or stack prints redacted. */
function errSerializer(error: unknown) {
  const out = pino.stdSerializers.err(error as Error) as unknown as Record<string, unknown>;
  if (out && typeof out === "object") {
    if (typeof out.message === "string") out.message = redactMessage(out.message);
    if (typeof out.stack === "string") out.stack = redactMessage(out.stack);
  }
  return out;
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({
    level,
    base: { service: "pbx-api" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
    serializers: { err: errSerializer },
    formatters: { level: (label) => ({ level: label }) },
  }, destination);
}
