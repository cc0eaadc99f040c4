#!/bin/sh
# Regenerates the media application's shipped prompts (assets/media/*.wav, committed): speech by
# espeak-ng, tones by sox, all as WAV 8 kHz mono 16-bit (what rtpengine plays to a G.711 caller
# without resampling). Needs Debian's espeak-ng and sox. Run from the repository root.
set -eu
out=assets/media
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
speak() { # name text
  espeak-ng -v en-us -s 150 -w "$tmp/$1.raw.wav" "$2"
  sox "$tmp/$1.raw.wav" -r 8000 -c 1 -b 16 "$out/$1.wav" norm -3
}
speak default-greeting "The person you are calling is not available. Please leave a message after the tone. Press hash when you are done."
speak mailbox-full "The mailbox is full. Goodbye."
speak no-messages "You have no new messages."
speak queue-welcome "Please hold. Your call will be answered by the next available agent."
# The beep: 0.4 s of 1.2 kHz, apart from the tones the tests listen for (400 Hz, 1 kHz, 1.6 kHz).
sox -n -r 8000 -c 1 -b 16 "$out/beep.wav" synth 0.4 sine 1200 vol 0.5
# Music on hold: 8 s of a gentle two-chord loop (no tone the tests use: 1 kHz, 1.6 kHz, 400 Hz).
sox -n -r 8000 -c 1 -b 16 "$tmp/a.wav" synth 2 sine 523.25 sine 659.25 vol 0.3
sox -n -r 8000 -c 1 -b 16 "$tmp/b.wav" synth 2 sine 587.33 sine 698.46 vol 0.3
sox "$tmp/a.wav" "$tmp/b.wav" "$tmp/a.wav" "$tmp/b.wav" "$out/music-on-hold.wav"
