import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { CSV_EXPORT_OPTIONS, neutraliseCell, restoreCell } from "../../src/common/csv-cell";

describe("CSV cells (OWASP CSV injection, RFC 4180)", () => {
  it("puts a ' before every cell a spreadsheet would run as a formula, and nothing before others", () => {
    for (const value of ["=1+1", "+a", "-b", "@SUM(A1)", "\tx", "\ry", "=HYPERLINK(\"http://x\")", "\uFF1Dx", "'=x", "''@y"]) {
      expect(neutraliseCell(value)).toBe(`'${value}`);
    }
    for (const value of ["ok", "", "'plain", "a=b", " =x", "1-2", "\nx", "Smith, Alice"]) expect(neutraliseCell(value)).toBe(value);
  });

  it("quotes CR, LF, quotes and commas, and writes CRLF records", () => {
    const out = stringify([["a\nb", "a\rb", "a\r\nb", 'q"x', "c,d", "=1", "\rx", "ok"]], CSV_EXPORT_OPTIONS as never);
    expect(out).toBe('"a\nb","a\rb","a\r\nb","q""x","c,d",\'=1,"\'\rx",ok\r\n');
  });

  it("round-trips every value through export and import", () => {
    const row = ["=1+1", "+a", "-b", "@c", "\tx", "\ry", "a\nb", "a\rb", 'q"x', "c,d", "ok", "'=x", "''@y", "'plain", "", "\uFF1Dx", "'"];
    const out = stringify([row], CSV_EXPORT_OPTIONS as never);
    expect((parse(out) as string[][])[0].map(restoreCell)).toEqual(row);
  });
});
