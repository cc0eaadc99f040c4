import { validate, type ValidationError } from "class-validator";
import { badInput, type FieldErrors } from "./errors";

function collect(errors: ValidationError[], prefix: string, out: FieldErrors): void {
  for (const error of errors) {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    // Two rules may share one message (e.g. type and format); say it once.
    if (error.constraints) out[field] = [...new Set(Object.values(error.constraints))];
    if (error.children?.length) collect(error.children, field, out);
  }
}

/**
 * Runs the class-validator rules declared on an input class. This is the one place where
 * GraphQL and REST input is judged, so both paths refuse the same input with the same messages.
 */
export async function assertValid(input: object, extra: FieldErrors = {}): Promise<void> {
  const errors = await validate(input, { forbidUnknownValues: false, validationError: { target: false, value: false } });
  const fields: FieldErrors = {};
  collect(errors, "", fields);
  // PostgreSQL text cannot hold NUL; refuse it here rather than fail in the driver.
  for (const [field, value] of Object.entries(input)) {
    if (typeof value === "string" && value.includes("\u0000")) (fields[field] ??= []).push("The value may not contain NUL characters.");
  }
  for (const [field, messages] of Object.entries(extra)) fields[field] = [...(fields[field] ?? []), ...messages];
  if (Object.keys(fields).length > 0) throw badInput(fields);
}
