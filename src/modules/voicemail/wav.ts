/**
 * A PCM WAV file (RIFF/WAVE, mono, 16-bit) holding a sine tone: what the simulator leaves as
 * voicemail, and what tests post. `bytes` pads the data to an exact file size when given.
 */
export function toneWav(options: { seconds?: number; bytes?: number; sampleRate?: number; frequency?: number } = {}): Buffer {
  const sampleRate = options.sampleRate ?? 8000;
  const frequency = options.frequency ?? 440;
  const dataBytes = options.bytes !== undefined ? Math.max(0, options.bytes - 44) : Math.round((options.seconds ?? 1) * sampleRate) * 2;
  const wav = Buffer.alloc(44 + dataBytes);
  wav.write("RIFF", 0, "latin1");
  wav.writeUInt32LE(36 + dataBytes, 4);
  wav.write("WAVE", 8, "latin1");
  wav.write("fmt ", 12, "latin1");
  wav.writeUInt32LE(16, 16); // fmt chunk size
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(sampleRate, 24);
  wav.writeUInt32LE(sampleRate * 2, 28); // byte rate
  wav.writeUInt16LE(2, 32); // block align
  wav.writeUInt16LE(16, 34); // bits per sample
  wav.write("data", 36, "latin1");
  wav.writeUInt32LE(dataBytes, 40);
  // One second of the tone (a whole number of cycles when the frequency divides the rate), then copies of it.
  const second = Math.min(dataBytes - (dataBytes % 2), sampleRate * 2);
  for (let i = 0; i + 1 < second; i += 2) {
    wav.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * frequency * (i / 2)) / sampleRate)), 44 + i);
  }
  for (let at = 44 + second; at < wav.length; at += second) wav.copy(wav, at, 44, 44 + Math.min(second, wav.length - at));
  return wav;
}

/** A WAV file (RIFF/WAVE, PCM 16-bit mono) of the given samples: how the media application stores a recording. */
export function pcmWav(samples: Int16Array, sampleRate = 8000): Buffer {
  const header = toneWav({ bytes: 44, sampleRate });
  const data = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  header.writeUInt32LE(36 + data.length, 4);
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

export interface WavInfo {
  format: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** Where the samples start, and how many bytes they take. */
  dataOffset: number;
  dataBytes: number;
  seconds: number;
}

/** The format and length of a RIFF/WAVE file, walking its chunks; null when it is not one. */
export function readWav(wav: Buffer): WavInfo | null {
  if (wav.length < 12 || wav.toString("latin1", 0, 4) !== "RIFF" || wav.toString("latin1", 8, 12) !== "WAVE") return null;
  let fmt: Omit<WavInfo, "dataOffset" | "dataBytes" | "seconds"> | null = null;
  for (let at = 12; at + 8 <= wav.length; ) {
    const id = wav.toString("latin1", at, at + 4);
    const size = wav.readUInt32LE(at + 4);
    if (id === "fmt " && size >= 16 && at + 24 <= wav.length) {
      fmt = { format: wav.readUInt16LE(at + 8), channels: wav.readUInt16LE(at + 10), sampleRate: wav.readUInt32LE(at + 12), bitsPerSample: wav.readUInt16LE(at + 22) };
    } else if (id === "data") {
      if (!fmt || fmt.channels === 0 || fmt.sampleRate === 0 || fmt.bitsPerSample === 0) return null;
      const dataBytes = Math.min(size, wav.length - at - 8);
      const seconds = dataBytes / (fmt.sampleRate * fmt.channels * Math.ceil(fmt.bitsPerSample / 8));
      return { ...fmt, dataOffset: at + 8, dataBytes, seconds };
    }
    at += 8 + size + (size % 2);
  }
  return null;
}
