import { AppError } from "../common/errors";
import type { RequestContext } from "../context/request-context";
import { pcmWav } from "../modules/voicemail/wav";
import { CallEnded, type MediaCall } from "./media-call";
import type { MediaEnv } from "./media-env";

/** Less audio than this stores nothing (contract §13). */
const MIN_SAMPLES = 8000;
const SAMPLE_RATE = 8000;

/**
 * Voicemail deposit (contract §13): greeting (the extension's own, else the shipped one), beep, then
 * the caller's audio until they hang up, press `#`, or VOICEMAIL_MAX_SECONDS; stored through the
 * voicemail service as WAV 8 kHz mono 16-bit with its measured duration. A full mailbox gets a short
 * message and nothing is stored; under a second of audio stores nothing.
 */
export async function depositVoicemail(env: MediaEnv, call: MediaCall, domain: string, number: string): Promise<void> {
  const ctx = env.context("ingest");
  const mailbox = await env.services.voicemail.mailbox(ctx, domain, number);
  // (A caller a queue sends here is already answered: then a refusal just ends the call.)
  if (!mailbox) return call.answered ? call.hangup() : call.reject(404, "Not Found");
  if (!mailbox.extension.voicemailEnabled) return call.answered ? call.hangup() : call.reject(480, "Temporarily Unavailable");
  if (!call.answered) await call.answer();
  const log = call.log.child({ app: "voicemail", extensionId: mailbox.extension.id });
  try {
    if (mailbox.full) {
      await call.play(env.assets.mailboxFull);
      return await call.hangup();
    }
    await call.play(await env.greetingFile(ctx, mailbox.extension.id), { interruptDigits: "#" });
    await call.play(env.assets.beep);
    const chunks: Int16Array[] = [];
    let samples = 0;
    const limit = env.config.voicemailMaxSeconds * SAMPLE_RATE;
    let full!: () => void;
    const reachedLimit = new Promise<void>((resolve) => (full = resolve));
    call.onAudio = (pcm) => {
      if (samples >= limit) return;
      const take = pcm.subarray(0, limit - samples);
      chunks.push(take);
      samples += take.length;
      if (samples >= limit) full();
    };
    const ended = new Promise<string>((resolve) => {
      if (call.ended) resolve("hangup");
      call.once("ended", () => resolve("hangup"));
      call.on("digit", (digit: string) => digit === "#" && resolve("hash"));
    });
    const reason = await Promise.race([ended, reachedLimit.then(() => "limit")]);
    call.onAudio = undefined;
    log.info({ reason, seconds: samples / SAMPLE_RATE }, "recording ended");
    if (reason !== "hangup") void call.hangup();
    if (samples < MIN_SAMPLES) return;
    await store(env, ctx, call, mailbox.domain, number, chunks, samples);
  } catch (error) {
    if (!(error instanceof CallEnded)) throw error;
  } finally {
    await call.release();
  }
}

async function store(env: MediaEnv, ctx: RequestContext, call: MediaCall, domain: string, number: string, chunks: Int16Array[], samples: number): Promise<void> {
  const pcm = new Int16Array(samples);
  let at = 0;
  for (const chunk of chunks) {
    pcm.set(chunk, at);
    at += chunk.length;
  }
  const wav = pcmWav(pcm, SAMPLE_RATE);
  const caller = call.caller;
  const fields: Record<string, string> = {
    domain,
    extension: number,
    message_id: call.dialog.callId,
    call_id: call.dialog.callId,
    duration_seconds: String(Math.round(samples / SAMPLE_RATE)),
    ...(caller.number ? { caller_number: caller.number } : {}),
    ...(caller.name ? { caller_name: caller.name } : {}),
  };
  try {
    await env.services.voicemail.deposit(ctx, fields, { contentType: "audio/wav", chunks: [wav], size: wav.length }, {});
  } catch (error) {
    // A mailbox that filled up (or voicemail turned off) while the caller spoke: nothing is stored.
    if (error instanceof AppError) call.log.warn({ err: error, extension: number }, "voicemail not stored");
    else throw error;
  }
}
