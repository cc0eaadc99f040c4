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
