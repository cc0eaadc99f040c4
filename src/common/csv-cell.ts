/**
 * CSV injection (OWASP "CSV Injection"): a spreadsheet runs a cell that starts with `=`, `+`, `-`,
 * `@`, a tab or a carriage return as a formula. Exports write such a cell with a leading `'` (which
 * spreadsheets show as text and hide), and imports take that `'` away again, so what is exported
 * comes back unchanged. The full-width forms are the ones Apple Numbers folds to the ASCII ones
 * (csv-stringify's `escape_formulas` list).
 *
 * To keep the round trip exact, a value that already starts with `'`s before such a character gets
 * one more on export, and an import removes exactly one: `'=1` is exported as `''=1` and read back
 * as `'=1`. A hand-written file's `'=1` imports as `=1`, as a spreadsheet would show it.
 */
const FORMULA = /^'*[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;
const NEUTRALISED = /^'+[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;

/** The cell as an export writes it: a leading `'` where a spreadsheet would see a formula. */
export function neutraliseCell(value: string): string {
  return FORMULA.test(value) ? `'${value}` : value;
}

/** The value an imported cell stands for: the export's `'` taken off again. */
export function restoreCell(cell: string): string {
  return NEUTRALISED.test(cell) ? cell.slice(1) : cell;
}

/**
 * csv-stringify options every CSV export shares: CRLF records (RFC 4180), formulas neutralised, and
 * a cell quoted when it holds a CR or an LF (csv-stringify quotes commas and quotes on its own, but
 * line breaks only when they equal the record delimiter).
 */
export const CSV_EXPORT_OPTIONS = {
  record_delimiter: "\r\n",
  quoted_match: /[\r\n]/,
  cast: { string: neutraliseCell, boolean: (value: boolean) => (value ? "true" : "false") },
} as const;
