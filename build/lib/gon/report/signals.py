"""Pictures and sounds of 1-D and 3-D signals, beside the grids every model gets (gon.report.images.as_pictures).

audio_figure        waveforms and spectrograms of clips, one row per clip, one column pair per version
write_wavs          clips as 16-bit WAV files
isosurface_figure   volumes as the 0.5 isosurface (scikit-image's marching cubes, matplotlib's 3-D axes)
slice_grid          every depth slice of volumes, one row per volume
signal_pictures     what a run and the inference commands write for audio and volume models
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from gon.core.errors import GonError
from gon.data.audio import waveform, write_wav
from gon.report.images import as_pictures, labelled, make_grid, pairs_grid, save_image, upscale
from gon.storage.atomic import save_figure

MAX_ROWS = 4  # clips or volumes in one figure


def audio_figure(versions: dict[str, tuple[Tensor, int]], path: str | Path, title: str = "") -> Path:
    """``versions``: name -> (clips [N, 1, L] in [0, 1], sample rate). One row per clip (at most MAX_ROWS):
    the waveforms of every version over each other, then one spectrogram per version."""
    names = list(versions)
    n = min(MAX_ROWS, min(len(v[0]) for v in versions.values()))
    fig = Figure(figsize=(4 + 3 * len(names), 1.9 * n))
    axes = fig.subplots(n, 1 + len(names), squeeze=False)
    for row in range(n):
        wave_ax = axes[row, 0]
        for i, name in enumerate(names):
            clips, rate = versions[name]
            w = waveform(clips[row])
            wave_ax.plot(np.arange(len(w)) / rate, w, lw=0.6, alpha=0.8, color=f"C{i}", label=name)
            ax = axes[row, 1 + i]
            db, seconds = spectrogram(w, rate)
            ax.imshow(
                db,
                origin="lower",
                aspect="auto",
                cmap="magma",
                vmin=db.max() - 80,
                vmax=db.max(),
                extent=(0, seconds, 0, rate / 2),
            )
            ax.set_ylabel("Hz" if i == 0 else "")
            if row == 0:
                ax.set_title(f"{name} ({rate:,} Hz)", fontsize=9)
        wave_ax.set_ylim(-1.05, 1.05)
        wave_ax.set_ylabel(f"clip {row}")
        if row == 0:
            wave_ax.set_title("waveforms", fontsize=9)
            wave_ax.legend(fontsize=7, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return Path(path)


def spectrogram(w: np.ndarray, rate: int, window_seconds: float = 0.032) -> tuple[np.ndarray, float]:
    """Power in dB [frequencies, frames] of a waveform (Hann windows, half overlapping; -100 dB floor), and the
    seconds it spans."""
    nfft = max(8, min(len(w), round(window_seconds * rate)))
    hop = max(1, nfft // 2)
    starts = range(0, max(1, len(w) - nfft + 1), hop)
    frames = np.stack([np.pad(w[i : i + nfft], (0, max(0, nfft - len(w[i : i + nfft])))) for i in starts])
    power = np.abs(np.fft.rfft(frames * np.hanning(nfft), axis=1)) ** 2 / nfft
    return 10 * np.log10(power.T + 1e-10), len(w) / rate


def write_wavs(folder: str | Path, prefix: str, clips: Tensor, rate: int) -> list[Path]:
    """``folder/prefix_i.wav`` for each clip [1, L] in [0, 1]."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_wav(folder / f"{prefix}_{i}.wav", waveform(c), rate) for i, c in enumerate(clips)]


def isosurface_figure(versions: dict[str, Tensor], path: str | Path, level: float = 0.5) -> Path:
    """``versions``: name -> volumes [N, 1, D, H, W] in [0, 1]. One column per volume (at most MAX_ROWS), one
    row per version: the ``level`` isosurface by marching cubes, drawn in the [-1, 1] cube."""
    try:
        from skimage.measure import marching_cubes
    except ImportError:
        raise GonError("isosurface pictures need scikit-image: pip install 'gon[signals]'") from None
    names = list(versions)
    n = min(MAX_ROWS, min(len(v) for v in versions.values()))
    fig = Figure(figsize=(2.6 * n, 2.6 * len(names)))
    for r, name in enumerate(names):
        for c in range(n):
            ax = fig.add_subplot(len(names), n, r * n + c + 1, projection="3d")
            grid = versions[name][c, 0].detach().float().cpu().numpy()
            if grid.min() < level < grid.max():
                verts, faces, _, _ = marching_cubes(grid, level)
                verts = (verts + 0.5) / np.array(grid.shape) * 2 - 1  # cell centres, as the model's coordinates
                ax.plot_trisurf(verts[:, 2], verts[:, 1], faces, verts[:, 0], color="C0", lw=0, shade=True)
            else:
                ax.text(0, 0, 0, "no surface", ha="center", fontsize=8)
            ax.set(xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1), xticks=[], yticks=[], zticks=[])
            ax.set_box_aspect((1, 1, 1))
            if c == 0:
                ax.set_title(f"{name} {'x'.join(map(str, grid.shape))}", fontsize=9, loc="left")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
    return Path(path)


SLICE_ROWS = ["original", "original", "reconstructed", "reconstructed"]


def slice_grid(volumes: Tensor, most: int = 16):
    """Depth slices of volumes [N, 1, D, H, W] (at most ``most`` evenly spaced), one row per volume."""
    depth = volumes.shape[2]
    picks = torch.linspace(0, depth - 1, min(depth, most)).round().long()
    rows = volumes[:MAX_ROWS, :, picks].transpose(1, 2)  # [N, k, C, H, W]
    return make_grid(rows.flatten(0, 1), nrow=len(picks))


def signal_pictures(model, run: Path, test: Tensor, sample_rate: int | None) -> None:
    """The final pictures a 1-D or 3-D model adds to a run: audio.png and audio/*.wav (originals,
    reconstructions and, for an implicit model, a 4x super-resolved render), or isosurfaces.png and
    slices.png (with a 2x render)."""
    from gon.sampling import eval_mode, model_device

    clips = test[:MAX_ROWS]
    with eval_mode(model):
        z = model.encode(clips.to(model_device(model)))
        recon = model.decode(z).float().cpu().clamp(0, 1)
        scale = 4 if test.ndim == 3 else 2
        fine = tuple(scale * s for s in test.shape[2:])
        render = model.decode(z, size=fine).float().cpu().clamp(0, 1) if model.renders_any_size else None
    if test.ndim == 3:
        rate = sample_rate or 8000
        versions = {"original": (clips, rate), "reconstruction": (recon, rate)}
        if render is not None:
            versions[f"render {scale}x"] = (render, scale * rate)
        audio_figure(versions, run / "audio.png")
        for name, (signal, r) in versions.items():
            write_wavs(run / "audio", name.split()[0], signal, r)
    elif test.ndim == 5:
        versions = {"original": clips, "reconstruction": recon}
        if render is not None:
            versions[f"render {scale}x"] = render
        _isosurfaces_if_possible(versions, run / "isosurfaces.png")
        h, w = clips.shape[-2:]
        title = "depth slices (columns, front to back) of test volumes and their reconstructions"
        grid = labelled(slice_grid(torch.cat([clips[:2], recon[:2]])), title, (h + 2, w + 2), rows=SLICE_ROWS)
        save_image(grid, run / "slices.png")


def trained_rate(model) -> int:
    """The sample rate an audio model was trained at (recorded with its training data), else the default."""
    from gon.data import DEFAULT_SAMPLE_RATE

    return int((getattr(model, "training_data", None) or {}).get("sample_rate") or DEFAULT_SAMPLE_RATE)


def save_signal_extras(out: Path, versions: dict[str, tuple[Tensor, int | None]]) -> list[Path]:
    """Beside the picture ``out`` of audio or volumes: the sounds (OUT_STEM/NAME_i.wav, at each version's rate)
    or the isosurfaces (OUT_STEM-isosurface.png). Returns the files written."""
    first = next(iter(versions.values()))[0]
    if first.ndim == 3:
        return [
            p for name, (clips, rate) in versions.items() for p in write_wavs(out.with_suffix(""), name, clips, rate)
        ]
    if first.ndim == 5:
        path = out.with_name(f"{out.stem}-isosurface.png")
        return [path] if _isosurfaces_if_possible({k: v for k, (v, _) in versions.items()}, path) else []
    return []


def _isosurfaces_if_possible(versions: dict[str, Tensor], path: Path) -> bool:
    """The isosurface figure, or a note on stderr when scikit-image is missing (the other pictures still come)."""
    try:
        isosurface_figure(versions, path)
    except GonError as e:
        print(f"gon: note: {e}; skipped {path.name}", file=sys.stderr)
        return False
    return True


def render_signals(model, inputs: Tensor, size: tuple[int, ...], out: Path, rate: int | None = None) -> list[Path]:
    """Super-resolution of audio or volumes: ``inputs`` encoded at their size, rendered at ``size``, beside the
    usual baseline (band-limited resampling, trilinear). Audio: ``out`` is the waveform and spectrogram figure,
    with the sounds in OUT_STEM/; volumes: ``out`` is a grid of slices (baseline, render), with the isosurfaces in
    OUT_STEM-isosurface.png. Returns the files written."""
    from gon.sampling import render

    rendered = render(model, inputs, size)
    baseline = upscale(inputs, size)
    if inputs.ndim == 3:
        fine = round(rate * size[0] / inputs.shape[-1])
        versions = {"input": (inputs, rate), "resampled": (baseline, fine), "render": (rendered, fine)}
        audio_figure(versions, out, title=f"implicit render at {fine:,} Hz of clips trained at {rate:,} Hz")
    else:
        versions = {"input": (inputs, None), "trilinear": (baseline, None), "render": (rendered, None)}
        title = (
            "volumes at " + "x".join(map(str, size)) + ": trilinear upscale, then the implicit render (middle slices)"
        )
        cell = as_pictures(rendered[:1]).shape[-2:]
        grid = pairs_grid(baseline, rendered, pairs_per_row=2)
        save_image(labelled(grid, title, (cell[0] + 2, cell[1] + 2), columns=["trilinear", "render"]), out)
    return [out, *save_signal_extras(out, versions)]
