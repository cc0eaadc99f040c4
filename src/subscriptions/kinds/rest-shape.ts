/**
 * A row as the REST API spells it (webhook `data`): snake_case keys, dates as ISO strings, enum
 * values as stored (lower case). Rows are what the services read: they never carry a secret.
 */
export function restShape(row: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    out[key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = value instanceof Date ? value.toISOString() : value;
  }
  return out;
}
