/**
 * Tone detection for the audio tests: the Goertzel filter gives the power of one frequency in a
 * block of samples, exactly and in a few lines. A tone "is there" when its power dominates the
 * block's total energy.
 */
export function goertzelPower(samples: ArrayLike<number>, frequency: number, sampleRate = 8000): number {
  const k = (2 * Math.PI * frequency) / sampleRate;
  const coeff = 2 * Math.cos(k);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < samples.length; i++) {
    const s0 = samples[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - coeff * s1 * s2;
}

/** The share (0..1) of a block's energy that lies at `frequency` (a pure tone gives about 1). */
export function toneShare(samples: ArrayLike<number>, frequency: number, sampleRate = 8000): number {
  let energy = 0;
  for (let i = 0; i < samples.length; i++) energy += samples[i] * samples[i];
  if (energy === 0) return 0;
  // A pure sine of N samples has Goertzel power N/2 times its energy.
  return goertzelPower(samples, frequency, sampleRate) / ((samples.length / 2) * energy);
}

/** The 100 ms blocks of `samples` in which `frequency` dominates (share above `threshold`). */
export function blocksWithTone(samples: ArrayLike<number>, frequency: number, threshold = 0.5, sampleRate = 8000): number {
  const block = sampleRate / 10;
  let count = 0;
  for (let at = 0; at + block <= samples.length; at += block) {
    const part = Array.prototype.slice.call(samples, at, at + block) as number[];
    if (toneShare(part, frequency, sampleRate) > threshold) count++;
  }
  return count;
}
