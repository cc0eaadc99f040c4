import { decodeCursor, encodeCursor, pageSize } from "../../src/graphql/connection";
import { AppError } from "../../src/common/errors";

describe("keyset cursors", () => {
  it("round-trip opaque values", () => {
    const cursor = encodeCursor(["2026-01-01T00:00:00.000Z", 42]);
    expect(cursor).not.toContain("42");
    expect(decodeCursor(cursor, ["string", "number"])).toEqual(["2026-01-01T00:00:00.000Z", 42]);
  });

  it.each(["", "not-base64!", Buffer.from("[1]").toString("base64url"), encodeCursor(["x"]), encodeCursor([1, 2])])(
    "refuse a malformed cursor %p with BAD_USER_INPUT",
    (cursor) => {
      try {
        decodeCursor(cursor, ["number"]);
        throw new Error("accepted");
      } catch (error) {
        expect(error).toBeInstanceOf(AppError);
        expect((error as AppError).code).toBe("BAD_USER_INPUT");
        expect((error as AppError).fields).toEqual({ after: ["The cursor is invalid."] });
      }
    },
  );

  it("caps page size at 100", () => {
    expect(pageSize(undefined)).toBe(20);
    expect(pageSize(100)).toBe(100);
    expect(() => pageSize(101)).toThrow(AppError);
    expect(() => pageSize(-1)).toThrow(AppError);
  });
});
