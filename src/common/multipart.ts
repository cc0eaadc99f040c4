import busboy from "busboy";
import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";

export const MALFORMED_MULTIPART = "The multipart body is malformed.";

/** The boundary a multipart Content-Type names (busboy has already refused a type without one). */
function boundaryOf(contentType: string | undefined): string {
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
  return match?.[1] ?? match?.[2] ?? "";
}

/**
 * A busboy parser for one request body that can never end the process. When a body stops early
 * (no closing boundary, a cut connection) busboy emits "error" on the parser AND on the file part
 * being read; an "error" event nobody listens to is thrown, and that kills the process. Every
 * stream here is listened to before the caller sees it: the file parts (a caller that ignores a
 * part, or reads it, needs no listener of its own) and the parser, whose first failure is kept in
 * `failure()` for the caller's answer (400 "The multipart body is malformed.").
 *
 * Throws, like busboy, when the headers name no multipart boundary.
 */
export function multipartParser(
  req: Readable & { headers: IncomingHttpHeaders },
  limits: busboy.Limits,
): { parser: busboy.Busboy; failure: () => string | null; fail: (message: string) => void } {
  const parser = busboy({ headers: req.headers, limits });
  let failed: string | null = null;
  const fail = (message: string) => void (failed ??= message);
  // Registered before any caller's listener, so a part is guarded before anyone reads it.
  parser.on("file", (_name, stream) => stream.on("error", () => fail(MALFORMED_MULTIPART)));
  parser.on("error", () => {
    fail(MALFORMED_MULTIPART);
    // The rest of the body is read and dropped, so the client gets the answer rather than a reset.
    req.unpipe(parser);
    req.resume();
  });
  req.on("error", () => fail("The request body was cut off."));
  // busboy takes a body that stops right after a part's delimiter ("--B" with no closing "--") as
  // complete; RFC 2046 ends a body with the close delimiter, so it is looked for here, across chunks.
  const close = Buffer.from(`--${boundaryOf(req.headers["content-type"])}--`);
  let tail = Buffer.alloc(0);
  let closed = false;
  const watch = (chunk: Buffer) => {
    const window = Buffer.concat([tail, chunk]);
    if (window.includes(close)) {
      closed = true;
      req.off("data", watch);
      return;
    }
    tail = window.subarray(Math.max(0, window.length - close.length + 1));
  };
  req.on("data", watch);
  return { parser, failure: () => failed ?? (closed ? null : MALFORMED_MULTIPART), fail };
}
