import fs from "node:fs";
import path from "node:path";
import type { VoicemailRow } from "../modules/voicemail/voicemail.service";
import { CallEnded, type MediaCall } from "./media-call";
import type { MediaEnv } from "./media-env";

/** After a message and its beep, `7` (delete) is still taken for this long. */
const AFTER_MESSAGE_MS = 1500;
const FILE_EXTENSIONS: Record<string, string> = { "audio/wav": "wav", "audio/x-wav": "wav", "audio/ogg": "ogg", "audio/mpeg": "mp3" };

/**
 * `*98` (contract §13): an extension listens to its unheard messages, newest first, each followed by
 * a beep, and each is then marked heard (the usual voicemail events and NOTIFYs follow); `#` skips to
 * the next message (this one still counts as heard), `7` deletes the one just played.
 */
export async function listenToVoicemail(env: MediaEnv, call: MediaCall, domain: string, number: string): Promise<void> {
  const ingest = env.context("ingest");
  const mailbox = await env.services.voicemail.mailbox(ingest, domain, number);
  if (!mailbox) return call.reject(404, "Not Found");
  await call.answer();
  const log = call.log.child({ app: "voicemail-main", extensionId: mailbox.extension.id });
  try {
    const messages = await env.services.voicemail.unheard(ingest, mailbox.extension.id);
    if (messages.length === 0) await call.play(env.assets.noMessages);
    for (const message of messages) {
      const file = await messageFile(env, message);
      let digit: string | undefined;
      try {
        digit = await call.play(file, { interruptDigits: "#7" });
        if (digit) await call.stopMedia();
        if (digit !== "7") digit = (await call.play(env.assets.beep, { interruptDigits: "7" })) ?? (await call.waitFor(AFTER_MESSAGE_MS, "7"));
      } finally {
        fs.rmSync(file, { force: true });
      }
      // A change by phone is the platform's own (an ADMIN principal named "media application").
      const platform = env.context("platform");
      if (digit === "7") await env.services.voicemail.delete(platform, message.id);
      else await env.services.voicemail.markHeard(platform, message.id, true);
      log.info({ messageId: message.id, action: digit === "7" ? "deleted" : "heard" }, "message played");
    }
    await call.hangup();
  } catch (error) {
    if (!(error instanceof CallEnded)) throw error;
  } finally {
    await call.release();
  }
}

/** The message's audio as a file rtpengine can open (removed once played). */
async function messageFile(env: MediaEnv, message: VoicemailRow): Promise<string> {
  const audio = await env.services.voicemail.audio(env.context("ingest"), message.id);
  const file = path.join(env.config.filesDir, `message-${message.id}-${process.pid}-${Date.now()}.${FILE_EXTENSIONS[message.contentType] ?? "wav"}`);
  fs.writeFileSync(file, audio);
  return file;
}
