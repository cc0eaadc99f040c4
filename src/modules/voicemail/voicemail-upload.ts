import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import type { FieldErrors } from "../../common/errors";
import { multipartParser } from "../../common/multipart";
import { AUDIO_TYPES, normalizeMediaType, sniffAudio, SNIFF_BYTES } from "./audio-type";

/** The audio part of a voicemail upload, held in memory (never more than the size limit). */
export interface UploadedAudio {
  contentType: string;
  chunks: Buffer[];
  size: number;
}

export type UploadResult =
  | { kind: "parsed"; fields: Record<string, string>; audio: UploadedAudio | null; errors: FieldErrors }
  /** The audio part passed the size limit: the rest of the body was read and dropped. */
  | { kind: "too-large" }
  /** Not a multipart body at all, or one that does not parse. */
  | { kind: "malformed"; status: 400 | 415; message: string };

const FIELD_NAMES = new Set(["tenant_id", "domain", "extension", "message_id", "call_id", "caller_number", "caller_name", "duration_seconds", "received_at"]);
const MAX_FIELD_BYTES = 4096;

/** The first bytes of the audio, copying only the chunks that hold them. */
function headOf(chunks: Buffer[]): Buffer {
  const head: Buffer[] = [];
  let length = 0;
  for (const chunk of chunks) {
    head.push(chunk);
    length += chunk.length;
    if (length >= SNIFF_BYTES) break;
  }
  return Buffer.concat(head).subarray(0, SNIFF_BYTES);
}

/**
 * Reads a `multipart/form-data` voicemail upload with busboy, streaming: the audio part is kept up
 * to `maxBytes` and dropped once it passes them (busboy truncates it and reports the limit), every other part is
 * small and bounded. The audio's declared type must be one of §8's and its first bytes must show
 * that family (RIFF/WAVE, OggS, MPEG frame or ID3). Field errors are collected, not thrown, so the
 * caller can report them together with the rest of the form's.
 */
export function readVoicemailUpload(req: Readable & { headers: IncomingHttpHeaders }, maxBytes: number): Promise<UploadResult> {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^multipart\/form-data\s*;/i.test(contentType)) {
    req.resume();
    return Promise.resolve({ kind: "malformed", status: 415, message: "The request body must be multipart/form-data with an audio file part." });
  }
  return new Promise<UploadResult>((resolve) => {
    let multipart: ReturnType<typeof multipartParser>;
    try {
      // busboy reports its limit on reaching it, so one byte more tells "larger than maxBytes" apart from "exactly".
      multipart = multipartParser(req, { fileSize: maxBytes + 1, files: 2, fields: 32, parts: 40, fieldSize: MAX_FIELD_BYTES, fieldNameSize: 100 });
    } catch {
      req.resume();
      return resolve({ kind: "malformed", status: 400, message: "The multipart body has no valid boundary." });
    }
    const { parser, failure, fail } = multipart;
    const fields: Record<string, string> = {};
    const errors: FieldErrors = {};
    const addError = (field: string, message: string) => (errors[field] ??= []).push(message);
    let audio: UploadedAudio | null = null;
    let audioParts = 0;
    let tooLarge = false;

    parser.on("field", (name, value, info) => {
      if (!FIELD_NAMES.has(name)) return;
      if (info.valueTruncated) return addError(name, `The ${name} may not be longer than ${MAX_FIELD_BYTES} bytes.`);
      if (name in fields) return addError(name, `The ${name} was sent more than once.`);
      fields[name] = value;
    });
    parser.on("file", (name, stream, info) => {
      if (name !== "audio") return void stream.resume();
      if (++audioParts > 1) {
        addError("audio", "Send exactly one audio file part.");
        return void stream.resume();
      }
      const declared = normalizeMediaType(info.mimeType);
      const part: UploadedAudio = { contentType: declared, chunks: [], size: 0 };
      stream.on("data", (chunk: Buffer) => {
        part.chunks.push(chunk);
        part.size += chunk.length;
      });
      stream.on("limit", () => {
        tooLarge = true;
        part.chunks = [];
      });
      stream.on("end", () => {
        if (tooLarge) return;
        audio = part;
        if (part.size === 0) return addError("audio", "The audio file is empty.");
        const family = AUDIO_TYPES[declared];
        if (!family) return addError("audio", "The audio must be of type audio/wav, audio/x-wav, audio/ogg or audio/mpeg.");
        if (sniffAudio(headOf(part.chunks)) !== family) addError("audio", `The audio's content is not ${declared}.`);
      });
    });
    parser.on("partsLimit", () => fail("The multipart body has too many parts."));
    parser.on("fieldsLimit", () => fail("The multipart body has too many fields."));
    parser.on("error", () => finish());
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (tooLarge) return resolve({ kind: "too-large" });
      const failed = failure();
      if (failed) return resolve({ kind: "malformed", status: 400, message: failed });
      if (audioParts === 0) addError("audio", "The audio file is required.");
      resolve({ kind: "parsed", fields, audio, errors });
    };
    parser.on("close", finish);
    req.on("error", () => finish());
    req.pipe(parser);
  });
}
