import express, { type Request, type RequestHandler, type Response, type Router } from "express";
import { badInput } from "../common/errors";
import type { RequestContext } from "../context/request-context";
import { normalizeMediaType } from "../modules/voicemail/audio-type";
import { readVoicemailUpload, type UploadedAudio } from "../modules/voicemail/voicemail-upload";
import { AUDIO_CHUNK_BYTES, type GreetingInfo, type VoicemailRow } from "../modules/voicemail/voicemail.service";
import type { RestDeps } from "./deps";
import { methodNotAllowed } from "./errors";
import { paginated } from "./extension.resource";
import { collectionPath, ctxOf, integerParam, jsonBody, param, type Access } from "./http";
import { voicemailResource } from "./voicemail.resource";

const FILE_EXTENSIONS: Record<string, string> = { "audio/wav": "wav", "audio/x-wav": "wav", "audio/ogg": "ogg", "audio/mpeg": "mp3" };

/** `heard` as a query filter: true/1 or false/0; anything else is for the service to refuse. */
function heardParam(value: unknown): unknown {
  const text = param(value);
  if (text === "true" || text === "1") return true;
  if (text === "false" || text === "0") return false;
  return text;
}

/** Resolves once the socket can take more (or is gone): a slow client never makes the server hold more than one chunk for it. */
function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/**
 * Streams a message's audio from its stored chunks, one chunk in memory at a time. A single
 * `Range: bytes=…` (a-b, a-, or the suffix -n) answers 206 with Content-Range and reads only the
 * chunks it covers; an unsatisfiable one answers 416; several ranges are answered whole (200), as
 * RFC 9110 allows.
 */
async function sendAudio(req: Request, res: Response, ctx: RequestContext, row: VoicemailRow): Promise<void> {
  const size = row.sizeBytes;
  let start = 0;
  let end = size - 1;
  res.setHeader("Accept-Ranges", "bytes");
  res.setHeader("Cache-Control", "private, no-cache");
  if (req.headers.range !== undefined) {
    // RFC 9110 §14.1.2: a suffix longer than the representation selects all of it (range-parser
    // takes it for unsatisfiable).
    const suffix = /^\s*bytes\s*=\s*-\s*([0-9]+)\s*$/i.exec(req.headers.range);
    const ranges = suffix && Number(suffix[1]) > size && size > 0 ? Object.assign([{ start: 0, end: size - 1 }], { type: "bytes" }) : req.range(size);
    if (ranges === -1) {
      res.setHeader("Content-Range", `bytes */${size}`);
      return void res.status(416).json({ message: "The requested range is not satisfiable." });
    }
    if (Array.isArray(ranges) && ranges.type === "bytes" && ranges.length === 1) {
      ({ start, end } = ranges[0]);
      res.status(206).setHeader("Content-Range", `bytes ${start}-${end}/${size}`);
    }
  }
  res.setHeader("Content-Type", row.contentType);
  res.setHeader("Content-Length", String(end - start + 1));
  res.setHeader("Content-Disposition", `inline; filename="voicemail-${row.id}.${FILE_EXTENSIONS[row.contentType] ?? "audio"}"`);
  res.setHeader("X-Content-Type-Options", "nosniff");
  if (req.method === "HEAD") return void res.end();
  for (let ordinal = Math.floor(start / AUDIO_CHUNK_BYTES); ordinal <= Math.floor(end / AUDIO_CHUNK_BYTES); ordinal++) {
    const chunk = await ctx.services.voicemail.audioChunk(ctx, row.id, ordinal);
    // Deleted while it was being sent: the client sees a short body, never other bytes.
    if (!chunk) return void res.destroy();
    const base = ordinal * AUDIO_CHUNK_BYTES;
    const piece = chunk.subarray(Math.max(0, start - base), Math.min(chunk.length, end - base + 1));
    if (!res.write(piece)) await drained(res);
    if (res.destroyed) return;
  }
  res.end();
}

/**
 * Voicemail over REST (contract §8): the engine's multipart hand-over, the audio download, and the
 * Laravel-shaped listing, change and delete. Mounted inside the REST router, so restErrors answers
 * every refusal (field errors as 422).
 */
export function voicemailRoutes(router: Router, deps: RestDeps, authenticated: (access: Access) => RequestHandler): void {
  const maxBytes = deps.config.voicemail.maxBytes;

  router
    .route("/voicemail")
    .post(authenticated("ingest"), async (req, res) => {
      const ctx = ctxOf(res);
      const upload = await readVoicemailUpload(req, maxBytes);
      if (upload.kind === "too-large") {
        return void res.status(413).json({ message: `The audio may not be larger than ${maxBytes} bytes.` });
      }
      if (upload.kind === "malformed") return void res.status(upload.status).json({ message: upload.message });
      const { row, created } = await ctx.services.voicemail.deposit(ctx, upload.fields, upload.audio, upload.errors);
      if (created) res.status(201).location(`${req.baseUrl}/voicemail/${row.id}`);
      res.json({ data: voicemailResource(row) });
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route("/voicemail/:id")
    .get(authenticated("read"), async (req, res) => {
      const ctx = ctxOf(res);
      res.json({ data: voicemailResource(await ctx.services.voicemail.get(ctx, req.params.id)) });
    })
    .patch(authenticated("write"), jsonBody, async (req, res) => {
      const ctx = ctxOf(res);
      const body: unknown = req.body;
      const heard = typeof body === "object" && body !== null && !Array.isArray(body) ? (body as { heard?: unknown }).heard : undefined;
      if (typeof heard !== "boolean") throw badInput({ heard: ["The heard field is required and must be true or false."] });
      res.json({ data: voicemailResource(await ctx.services.voicemail.markHeard(ctx, req.params.id, heard)) });
    })
    .delete(authenticated("write"), async (req, res) => {
      const ctx = ctxOf(res);
      await ctx.services.voicemail.delete(ctx, req.params.id);
      res.status(204).end();
    })
    .all(methodNotAllowed(["GET", "HEAD", "PATCH", "DELETE"]));

  router
    .route("/voicemail/:id/audio")
    .get(authenticated("read"), async (req, res) => {
      const ctx = ctxOf(res);
      await sendAudio(req, res, ctx, await ctx.services.voicemail.get(ctx, req.params.id));
    })
    .all(methodNotAllowed(["GET", "HEAD"]));

  router
    .route("/extensions/:id/voicemail")
    .get(authenticated("read"), async (req, res) => {
      const ctx = ctxOf(res);
      const heard = heardParam(req.query.heard);
      const page = await ctx.services.voicemail.paginate(ctx, req.params.id, {
        page: integerParam(req.query.page),
        perPage: integerParam(req.query.per_page),
        heard,
      });
      res.json(paginated(page, collectionPath(req), typeof heard === "boolean" ? { heard: String(heard) } : {}, voicemailResource));
    })
    .all(methodNotAllowed(["GET", "HEAD"]));

  // An extension's voicemail greeting (contract §13): the WAV as the raw body (audio/wav) or as the
  // multipart part `audio`; at most 60 s of audio, checked by the service.
  const readRaw = express.raw({ type: ["audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"], limit: maxBytes });
  // A raw WAV over the limit is the same 413 as a multipart one (body-parser's own error was a 500).
  const rawWav: RequestHandler = (req, res, next) =>
    readRaw(req, res, (error?: unknown) => {
      if ((error as { type?: string } | undefined)?.type === "entity.too.large") {
        return void res.status(413).json({ message: `The audio may not be larger than ${maxBytes} bytes.` });
      }
      next(error);
    });
  router
    .route("/extensions/:id/voicemail/greeting")
    .put(authenticated("write"), rawWav, async (req, res) => {
      const ctx = ctxOf(res);
      let audio: UploadedAudio | null;
      if (Buffer.isBuffer(req.body)) {
        audio = { contentType: normalizeMediaType(req.headers["content-type"]), chunks: [req.body], size: req.body.length };
      } else {
        const upload = await readVoicemailUpload(req, maxBytes);
        if (upload.kind === "too-large") return void res.status(413).json({ message: `The audio may not be larger than ${maxBytes} bytes.` });
        if (upload.kind === "malformed") return void res.status(upload.status).json({ message: "Send the greeting as the body (Content-Type: audio/wav) or as the multipart part audio." });
        if (upload.errors.audio) throw badInput({ audio: upload.errors.audio });
        audio = upload.audio;
      }
      const { greeting, created } = await ctx.services.voicemail.putGreeting(ctx, req.params.id, audio);
      res.status(created ? 201 : 200).json({ data: greetingResource(greeting) });
    })
    .get(authenticated("write"), async (req, res) => {
      const ctx = ctxOf(res);
      const { info, audio } = await ctx.services.voicemail.getGreeting(ctx, req.params.id);
      res.setHeader("Content-Type", info.contentType);
      res.setHeader("Content-Length", String(audio.length));
      res.setHeader("X-Content-Type-Options", "nosniff");
      res.end(audio);
    })
    .delete(authenticated("write"), async (req, res) => {
      const ctx = ctxOf(res);
      await ctx.services.voicemail.deleteGreeting(ctx, req.params.id);
      res.status(204).end();
    })
    .all(methodNotAllowed(["GET", "HEAD", "PUT", "DELETE"]));
}

/** A greeting as REST shows it (never its audio: GET of the route serves that). */
function greetingResource(g: GreetingInfo) {
  return {
    extension_id: g.extensionId,
    content_type: g.contentType,
    duration_seconds: Math.round(g.durationMs / 100) / 10,
    size_bytes: g.sizeBytes,
    updated_at: new Date(g.updatedAt).toISOString(),
  };
}
