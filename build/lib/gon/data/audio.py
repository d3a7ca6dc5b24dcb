"""``audio:PATH``: a folder of WAV files as clips [N, 1, L] for a 1-D implicit GON.

Clips are mono (channels averaged), resampled band-limited to a stated rate (the FFT, numpy only),
cropped from the start or padded with silence to a stated length, and stored like images in [0, 1]:
a waveform w in [-1, 1] as (w + 1) / 2 (:func:`waveform` maps back). The split is ROOT/train and
ROOT/test when both exist, else a seeded held-out subset (:mod:`gon.data.splits`).
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import numpy as np
import torch

from gon.core.errors import GonError
from gon.data.base import ImageData
from gon.data.splits import chosen_files
from gon.data.subsets import Choice
from gon.storage.atomic import atomic_write

MAX_SAMPLE_RATE = 384_000  # Hz: the highest rate audio hardware records at

DEFAULT_SAMPLE_RATE = 8000  # Hz: speech below 4 kHz, the band of telephone audio
DEFAULT_AUDIO_SECONDS = 1.0  # a spoken digit fits in a second
MAX_AUDIO_SECONDS = 600.0


def check_audio_options(sample_rate: int, seconds: float) -> None:
    """Refuse a sample rate or clip length that no reader could honour, naming the flag, before any file is read."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 1 <= sample_rate <= MAX_SAMPLE_RATE:
        raise GonError(
            f"option sample_rate (--sample-rate) must be an integer from 1 to {MAX_SAMPLE_RATE} Hz, got {sample_rate!r}"
        )
    if not 0 < seconds <= MAX_AUDIO_SECONDS:  # `not <` also rejects NaN
        raise GonError(f"option audio_seconds (--audio-seconds) must be in (0, {MAX_AUDIO_SECONDS:g}], got {seconds!r}")


def audio_length(sample_rate: int, seconds: float) -> int:
    """Samples per clip."""
    return max(1, round(sample_rate * seconds))


def read_wav(path: Path, seconds: float | None = None) -> tuple[np.ndarray, int]:
    """A PCM WAV file (its first ``seconds`` when given) as a mono float64 waveform in [-1, 1], channels
    averaged, and its sample rate."""
    try:
        with wave.open(str(path), "rb") as f:
            channels, width, rate, frames = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            if not 1 <= width <= 4 or not 1 <= channels <= 64 or not 1 <= rate <= MAX_SAMPLE_RATE:
                raise GonError(
                    f"cannot read audio {path}: unsupported WAV ({width}-byte samples, {channels} channels, {rate} Hz)"
                )
            raw = f.readframes(min(frames, int(rate * (seconds or MAX_AUDIO_SECONDS)) + 1))
    except (wave.Error, EOFError, OSError, RuntimeError, ValueError, struct.error) as e:  # a damaged chunk
        raise GonError(f"cannot read audio {path}: {str(e) or type(e).__name__} (a PCM WAV file is needed)") from None
    n = len(raw) // (width * channels)
    if n == 0:
        raise GonError(f"cannot read audio {path}: no samples")
    raw = np.frombuffer(raw[: n * width * channels], dtype=np.uint8).reshape(n * channels, width)
    if width == 1:  # 8-bit WAV is unsigned
        values = raw[:, 0].astype(np.float64) - 128
    else:  # little-endian signed: the bytes at the top of an int32 keep the sign, then shift back down
        padded = np.zeros((len(raw), 4), dtype=np.uint8)
        padded[:, 4 - width :] = raw
        values = padded.view("<i4")[:, 0].astype(np.float64) / (1 << (8 * (4 - width)))
    waveform = values.reshape(n, channels).mean(1) / float(1 << (8 * width - 1))
    return np.clip(waveform, -1.0, 1.0), rate


def write_wav(path: str | Path, waveform: np.ndarray, sample_rate: int) -> Path:
    """A mono 16-bit PCM WAV file of ``waveform`` in [-1, 1] (clipped)."""
    pcm = np.round(np.clip(np.asarray(waveform, dtype=np.float64), -1, 1) * 32767).astype("<i2")

    def write(file) -> None:
        with wave.open(file, "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(sample_rate)
            f.writeframes(pcm.tobytes())

    return atomic_write(path, write)


def resample(signal: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling by the FFT: frequencies above the lower Nyquist limit are dropped, the rest kept
    (the mean too, so it works on clips stored in [0, 1] as on waveforms). The signal is mirrored first, so the
    FFT's periodic copy joins it without a step, which would ring at both ends of a clip cut mid-sound. Its length
    is cut to a whole number of rate / gcd(rate, new_rate) samples (22,050 -> 8,000 Hz: 441, 20 ms), so that the
    output samples fall exactly on the new rate's times rather than drift."""
    if rate == new_rate:
        return signal
    period = rate // math.gcd(rate, new_rate)
    if len(signal) >= period:
        signal = signal[: len(signal) // period * period]
    n = len(signal)
    m = max(1, round(n * new_rate / rate))
    spectrum = np.fft.rfft(np.concatenate([signal, signal[::-1]]))  # 2n samples
    out = np.zeros(m + 1, dtype=complex)  # 2m samples
    keep = min(len(spectrum), len(out))
    out[:keep] = spectrum[:keep]
    return np.fft.irfft(out, 2 * m)[:m] * (m / n)


def load_audio(
    spec: str, split: str, sample_rate: int, seconds: float, test_fraction: float, seed: int, choice: Choice
) -> ImageData:
    """``audio:PATH``: float32 clips [N, 1, sample_rate * seconds] in [0, 1]; only the chosen files are read."""
    check_audio_options(sample_rate, seconds)
    files, index, paths = chosen_files(spec, "audio:", ".wav", split, test_fraction, seed, choice)
    length = audio_length(sample_rate, seconds)
    clips = np.zeros((len(files), 1, length), dtype=np.float32)
    for i, path in enumerate(files):
        signal, rate = read_wav(path, seconds * 1.1)  # a little more than needed: no edge at the crop
        signal = resample(signal, rate, sample_rate)[:length]
        clips[i, 0, : len(signal)] = np.clip(signal, -1, 1)
    return ImageData(torch.from_numpy((clips + 1) / 2), None, spec, None, paths, index)


def waveform(clip: torch.Tensor) -> np.ndarray:
    """The inverse of load_audio's mapping: a clip [1, L] or [L] in [0, 1] -> waveform [L] in [-1, 1]."""
    return (clip.detach().float().cpu().reshape(-1).numpy() * 2 - 1).clip(-1, 1)
