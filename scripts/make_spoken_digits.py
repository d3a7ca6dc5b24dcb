#!/usr/bin/env python3
"""Spoken digits for ``gon fit --dataset audio:DIR``, synthesised offline with Debian's espeak-ng
(``apt-get install espeak-ng``) in several voices, pitches and speeds.

    python scripts/make_spoken_digits.py DIR --per-digit 60 --test-fraction 0.15 --seed 0

writes DIR/train/<digit>/<voice>_p<pitch>_s<speed>.wav and DIR/test/<digit>/... (mono 16-bit PCM at espeak's
22,050 Hz, leading and trailing silence trimmed). Each utterance draws a voice, a voice variant, a pitch and a
speed at random; the test split holds utterances, not voices, out.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
VARIANTS = ("m1", "m3", "m7", "f1", "f2", "f4")
PITCHES = (25, 40, 55, 70)  # espeak -p, 0-99
SPEEDS = (120, 150, 180, 210)  # espeak -s, words per minute
SILENCE = 0.02  # |amplitude| below this (of full scale) at the ends is trimmed


def speak(word: str, voice: str, pitch: int, speed: int, out: Path) -> None:
    """One utterance as a WAV file, silence trimmed."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        cmd = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", tmp.name, word]
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        with wave.open(tmp.name, "rb") as f:
            rate, width, frames = f.getframerate(), f.getsampwidth(), f.readframes(f.getnframes())
    samples = np.frombuffer(frames, dtype="<i2") if width == 2 else None
    if samples is None:
        raise RuntimeError(f"espeak-ng wrote {width}-byte samples; 16-bit expected")
    loud = np.flatnonzero(np.abs(samples) > SILENCE * 32768)
    samples = samples[loud[0] : loud[-1] + 1] if len(loud) else samples
    with wave.open(str(out), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.astype("<i2").tobytes())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="folder to write (DIR/train, DIR/test); must not hold a digit set already")
    p.add_argument("--per-digit", type=int, default=60, help="utterances of each digit (default 60)")
    p.add_argument("--test-fraction", type=float, default=0.15, help="share held out in DIR/test (default 0.15)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = p.parse_args(argv)
    if args.per_digit < 2 or not 0 < args.test_fraction < 1 or args.seed < 0:
        p.error("need --per-digit >= 2, --test-fraction in (0, 1) and --seed >= 0")
    if shutil.which("espeak-ng") is None:
        p.error("espeak-ng is not installed: apt-get install espeak-ng")
    out = Path(args.out)
    if (out / "train").exists() or (out / "test").exists():
        p.error(f"{out} already holds train/ or test/; choose an empty folder")
    rng = np.random.default_rng(args.seed)
    combos = [(v, f, p_, s) for v in VOICES for f in VARIANTS for p_ in PITCHES for s in SPEEDS]
    n_test = max(1, round(args.per_digit * args.test_fraction))
    for digit, word in enumerate(DIGITS):
        picks = rng.choice(len(combos), size=min(args.per_digit, len(combos)), replace=False)
        for j, k in enumerate(picks):
            voice, variant, pitch, speed = combos[k]
            folder = out / ("test" if j < n_test else "train") / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            speak(word, f"{voice}+{variant}", pitch, speed, folder / f"{voice}+{variant}_p{pitch}_s{speed}.wav")
        print(f"{word}: {len(picks)} utterances", flush=True)
    print(f"wrote {10 * (len(picks) - n_test)} training and {10 * n_test} test clips to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
