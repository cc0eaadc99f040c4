import pino, { type Logger } from "pino";

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
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({
    level,
    base: { service: "pbx-api" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
    formatters: { level: (label) => ({ level: label }) },
  }, destination);
}
