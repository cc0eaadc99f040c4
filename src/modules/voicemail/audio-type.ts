/** The media types a voicemail's audio may have (contract §8), each with the family its bytes must show. */
export const AUDIO_TYPES: Readonly<Record<string, AudioFamily>> = {
  "audio/wav": "wav",
  "audio/x-wav": "wav",
  "audio/ogg": "ogg",
  "audio/mpeg": "mpeg",
};

export type AudioFamily = "wav" | "ogg" | "mpeg";

/** Bytes needed to tell the families apart. */
export const SNIFF_BYTES = 12;

/** The declared type without parameters, lower case (`Audio/WAV; codecs=1` → `audio/wav`). */
export function normalizeMediaType(declared: string | undefined): string {
  return (declared ?? "").split(";")[0].trim().toLowerCase();
}

/**
 * What the first bytes say the audio is: RIFF…WAVE, an Ogg page (OggS), or MPEG audio (an ID3v2
 * tag, or a frame header's 11-bit sync with a valid version, layer and bitrate). Null for anything else.
 */
export function sniffAudio(head: Buffer): AudioFamily | null {
  if (head.length >= 12 && head.toString("latin1", 0, 4) === "RIFF" && head.toString("latin1", 8, 12) === "WAVE") return "wav";
  if (head.length >= 4 && head.toString("latin1", 0, 4) === "OggS") return "ogg";
  if (head.length >= 3 && head.toString("latin1", 0, 3) === "ID3") return "mpeg";
  if (head.length >= 3 && head[0] === 0xff && (head[1] & 0xe0) === 0xe0) {
    const version = (head[1] >> 3) & 0x03;
    const layer = (head[1] >> 1) & 0x03;
    const bitrate = head[2] >> 4;
    const sampleRate = (head[2] >> 2) & 0x03;
    if (version !== 0x01 && layer !== 0x00 && bitrate !== 0x0f && sampleRate !== 0x03) return "mpeg";
  }
  return null;
}
