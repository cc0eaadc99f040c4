import fs from "node:fs";

/** 16-bit PCM samples of a WAV file (its data chunk), and its rate: what a baresip phone recorded. */
export function readWav(file: string): { samples: number[]; rate: number } {
  const wav = fs.readFileSync(file);
  const rate = wav.readUInt32LE(24);
  let at = 12;
  while (at + 8 <= wav.length && wav.toString("latin1", at, at + 4) !== "data") at += 8 + wav.readUInt32LE(at + 4);
  const samples: number[] = [];
  for (let i = at + 8; i + 1 < wav.length; i += 2) samples.push(wav.readInt16LE(i));
  return { samples, rate };
}

/** What LISTEN_IN_PAGE gives back: the page's sample rate and ten blocks of time-domain data. */
export type PageHeard = { rate: number; blocks: number[][] } | null;

/**
 * What the /phone page hears: an AnalyserNode on the call's remote stream, ten snapshots of its
 * time-domain data 150 ms apart (evaluated in the page; this project's TypeScript has no DOM types).
 */
export const LISTEN_IN_PAGE = `(async () => {
  const stream = window.pbxPhone.remoteStream();
  if (!stream) return null;
  const context = new AudioContext();
  await context.resume();
  const analyser = context.createAnalyser();
  analyser.fftSize = 4096;
  context.createMediaStreamSource(stream).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const blocks = [];
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    analyser.getFloatTimeDomainData(data);
    blocks.push(Array.from(data));
  }
  const rate = context.sampleRate;
  await context.close();
  return { rate, blocks };
})()`;

/** Debian's Chromium by default; CHROMIUM_PATH points elsewhere on a machine that keeps it elsewhere. */
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** Headless Chromium with no background traffic (this machine's network is closed): every browser test's base flags. */
export const HEADLESS_CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Headless Chromium's flags for a /phone test: fake microphone playing `micWav`, media allowed
 * without a prompt, no background traffic (this machine's network is closed), and ICE on loopback.
 */
export function phoneChromiumArgs(micWav: string): string[] {
  return [
    ...HEADLESS_CHROMIUM_ARGS,
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${micWav}`,
    "--autoplay-policy=no-user-gesture-required",
    // the only interface is loopback: without these Chromium gathers no ICE candidate (engine-notes §8)
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
  ];
}
