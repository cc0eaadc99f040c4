import { randomBytes } from "node:crypto";
import { parseEncryptionKey, SecretBox } from "../../src/common/secret-box";

describe("SecretBox (AES-256-GCM)", () => {
  const box = new SecretBox(randomBytes(32));

  it("round-trips and never stores the clear text", () => {
    const sealed = box.seal("s3cur3p@ss", "extension-secret:1");
    expect(sealed).not.toContain("s3cur3p@ss");
    expect(Buffer.from(sealed.split(".")[3], "base64url").toString("utf8")).not.toContain("s3cur3p@ss");
    expect(box.open(sealed, "extension-secret:1")).toBe("s3cur3p@ss");
  });

  it("uses a fresh IV each time", () => {
    expect(box.seal("same", "a")).not.toBe(box.seal("same", "a"));
  });

  it("refuses an envelope moved to another tenant, a tampered one, or another key", () => {
    const sealed = box.seal("secret-value", "extension-secret:1");
    expect(() => box.open(sealed, "extension-secret:2")).toThrow();
    const parts = sealed.split(".");
    const flipped = Buffer.from(parts[3], "base64url");
    flipped[0] ^= 1;
    expect(() => box.open([parts[0], parts[1], parts[2], flipped.toString("base64url")].join("."), "extension-secret:1")).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(sealed, "extension-secret:1")).toThrow();
  });

  it("accepts 32-byte keys as hex or base64 and refuses anything else", () => {
    const key = randomBytes(32);
    expect(parseEncryptionKey(key.toString("hex")).equals(key)).toBe(true);
    expect(parseEncryptionKey(key.toString("base64")).equals(key)).toBe(true);
    expect(() => parseEncryptionKey("too-short")).toThrow(/32 bytes/);
  });
});
