"""How the explorer shows a model's data and reads a user's: one *medium* per kind of signal.

A medium knows the grid a model works on, turns an upload into a model input (saying what it had
to change), shows model outputs as widgets' values, and says what "zoom" means for it (a finer
image, a higher sample rate, a finer volume). The page's tabs use only this interface:

    widgets(label)   the output widgets of one view          show(x)        their values for signals x [N, C, *grid]
    upload(label)    the input widget for a user's file     from_upload(v) -> (x [1, C, *grid], notes)
    thumbnail(x)     a picture for the gallery              zoom_size(v)   the grid to render at, for the zoom slider

:data:`MEDIA` lists them; the first that accepts a model shows it.
"""

from __future__ import annotations

import functools
import itertools
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from gon.core.errors import GonError
from gon.explore.session import MAX_RENDER_CELLS, whole_number
from gon.report.images import make_grid

#: pictures smaller than this (in pixels, per side) are enlarged by nearest neighbour so that the
#: pixels a model sees stay crisp instead of being blurred by the browser
DISPLAY_SIDE = 256


def grid_size(model) -> tuple[int, ...]:
    """The grid a model works on, from its config: (H, W) for images, (L,) for audio, (D, H, W) for volumes."""
    size = (getattr(model, "config", None) or {}).get("image_size")
    return (size, size) if isinstance(size, int) else tuple(size or ())


def suffixed(kw: dict, suffix: str) -> str | None:
    """The elem_id of a view's extra widget: its first widget's with a suffix."""
    return f"{kw['elem_id']}-{suffix}" if kw.get("elem_id") else None


def readable(preprocess):
    """Wrap an image widget's preprocess: a file Pillow cannot read is a message on the page, not a bare "Error".

    (Wrapping the instance, not subclassing: Gradio writes a .pyi stub beside any module that subclasses a widget.)
    """

    @functools.wraps(preprocess)
    def read(payload):
        try:
            return preprocess(payload)
        except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as e:
            name = getattr(payload, "orig_name", None) or "the upload"
            raise gr.Error(
                f"{name} is not an image gon can read ({type(e).__name__}): upload a PNG or JPEG", print_exception=False
            ) from None

    return read


class Medium:
    """What every medium shares: the model's grid and channels, pictures of signals, and the zoom slider."""

    name = ""
    dims = 0  # grid dimensions of the signals it shows
    baseline = ""  # what the zoom's render is compared with
    zoom_label = ""

    def __init__(self, model):
        if not self.accepts(model):
            raise GonError(f"a {type(model).__name__} on a {grid_size(model)} grid is not a {self.name} model")
        self.size = grid_size(model)
        self.channels = model.config["channels"]

    @classmethod
    def accepts(cls, model) -> bool:
        return len(grid_size(model)) == cls.dims and (getattr(model, "config", None) or {}).get("channels") in (1, 3)

    @property
    def describe(self) -> str:
        return f"{'x'.join(map(str, self.size))} {self.name}, {self.channels} channel{'s' if self.channels > 1 else ''}"

    def thumbnail(self, x: Tensor, side: int = 96) -> Image.Image:
        return self.picture(x, side=side)

    def picture(self, x: Tensor, nrow: int | None = None, side: int = DISPLAY_SIDE) -> Image.Image:
        """Signals [N, C, *grid] as one picture (gon.report.images.make_grid), nearest-neighbour enlarged when small."""
        grid = make_grid(x, nrow=nrow, padding=2 if len(x) > 1 else 0)
        scale = max(1, side // max(1, min(grid.size)))
        if len(x) > 1:
            scale = max(1, min(scale, 1024 // max(grid.size)))
        return grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST) if scale > 1 else grid

    def widgets(self, label: str, **kw) -> list:
        return [gr.Image(label=label, type="pil", format="png", interactive=False, **kw)]

    def show(self, x: Tensor, nrow: int | None = None) -> list:
        return [self.picture(x, nrow)]

    def zoom_range(self) -> tuple[int, int, int]:
        """(lowest, highest, default) of the zoom slider."""
        raise NotImplementedError

    def zoom_size(self, value) -> tuple[int, ...]:
        raise NotImplementedError


class Images(Medium):
    """Pictures [N, C, H, W] in [0, 1], C = 1 (greyscale) or 3 (RGB); zoom: the height of the render."""

    name, dims, baseline, zoom_label = "image", 2, "bicubic upscale", "render height in pixels (zoom)"

    @property
    def describe(self) -> str:
        return f"{self.size[0]}x{self.size[1]} {'greyscale' if self.channels == 1 else 'RGB'}"

    def upload(self, label: str):
        widget = gr.Image(label=label, type="pil", sources=["upload", "clipboard"], height=200, image_mode=None)
        widget.preprocess = readable(widget.preprocess)
        return widget

    def from_upload(self, image: Image.Image) -> tuple[Tensor, list[str]]:
        """An uploaded picture as the model's input [1, C, H, W], and a note for each change made to it."""
        notes = []
        height, width = self.size
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            notes.append("transparency dropped")
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16/32-bit: scale into 8 bits, not clip
            array = np.asarray(image, dtype=np.float64)
            span = max(float(array.max() - array.min()), 1e-12)
            image = Image.fromarray(np.round(255 * (array - array.min()) / span).astype(np.uint8))
            notes.append("high bit depth scaled to 8 bits")
        colour = image.mode not in ("1", "L", "LA", "I;16", "I", "F")
        if self.channels == 1 and colour:
            notes.append("colour converted to greyscale")
        if self.channels == 3 and not colour:
            notes.append("greyscale copied to 3 channels")
        image = image.convert("L" if self.channels == 1 else "RGB")
        w, h = image.size
        target = width / height
        if abs(w / h - target) > 1e-6:  # centre crop to the model's aspect ratio
            cw, ch = (round(h * target), h) if w / h > target else (w, round(w / target))
            left, top = (w - cw) // 2, (h - ch) // 2
            image = image.crop((left, top, left + cw, top + ch))
            notes.append(f"cropped {w}x{h} to the centre {cw}x{ch}")
        if image.size != (width, height):
            notes.append(f"resized {image.width}x{image.height} to {width}x{height}")
            image = image.resize((width, height), Image.LANCZOS)
        array = np.asarray(image, dtype=np.float32) / 255
        x = torch.from_numpy(array[None] if self.channels == 1 else array.transpose(2, 0, 1).copy())
        return x[None], notes

    def zoom_range(self) -> tuple[int, int, int]:
        return 8, 1024, min(8 * self.size[0], 256)

    def zoom_size(self, value) -> tuple[int, int]:
        height = whole_number(value, "resolution", 1, 1024)
        return height, max(1, round(height * self.size[1] / self.size[0]))


class Audio(Medium):
    """Clips [N, 1, L] in [0, 1] (waveform (w + 1) / 2, as gon.data.audio stores them) at the trained sample rate;
    shown as waveforms (one clip: with its spectrogram) and a player; zoom: the sample rate of the render (1-D
    super-resolution)."""

    name, dims, baseline, zoom_label = "audio", 1, "band-limited resampling", "render sample rate in Hz (zoom)"
    GAP_SECONDS = 0.25  # silence between the clips of a sample or a strip, played one after another
    LOWEST_PLAYABLE_RATE = 3000  # Hz: Chromium's audio element refuses WAV files below it

    def __init__(self, model):
        from gon.report.signals import trained_rate

        super().__init__(model)
        self.rate = trained_rate(model)

    @property
    def describe(self) -> str:
        return f"{self.size[0] / self.rate:g} s audio at {self.rate:,} Hz"

    def widgets(self, label: str, **kw) -> list:
        kw.pop("height", None)
        sound = gr.Audio(label=f"{label} (listen)", type="numpy", interactive=False, elem_id=suffixed(kw, "sound"))
        return [*super().widgets(label, **kw), sound]

    def picture(self, x: Tensor, nrow: int | None = None, side: int = DISPLAY_SIDE) -> Image.Image:
        """The waveforms, and for one clip its spectrogram beneath (0 Hz at the bottom, the top 80 dB in magma)."""
        waves = super().picture(x, nrow, side)
        if len(x) != 1 or side < DISPLAY_SIDE:  # thumbnails and strips: the waveforms alone
            return waves
        from matplotlib import colormaps

        from gon.data.audio import waveform
        from gon.report.signals import spectrogram

        rate = round(self.rate * x.shape[-1] / self.size[0])
        db, _ = spectrogram(waveform(x[0]), rate)
        level = ((db - db.max() + 80) / 80).clip(0, 1)[::-1]  # [frequencies, frames], high frequencies on top
        colours = (colormaps["magma"](level)[..., :3] * 255).astype(np.uint8)
        spectrum = Image.fromarray(colours).resize((waves.width, waves.height), Image.NEAREST)
        both = Image.new("RGB", (waves.width, 2 * waves.height + 4), "white")
        both.paste(waves.convert("RGB"), (0, 0))
        both.paste(spectrum, (0, waves.height + 4))
        return both

    def show(self, x: Tensor, nrow: int | None = None) -> list:
        """The waveforms' picture and the clips played one after another, at the rate their length implies."""
        from gon.data.audio import resample, waveform

        rate = round(self.rate * x.shape[-1] / self.size[0])
        gap = np.zeros(round(self.GAP_SECONDS * rate))
        sound = np.concatenate([part for clip in x for part in (waveform(clip), gap)][:-1])
        if rate < self.LOWEST_PLAYABLE_RATE:  # browsers refuse to play such rates: resample for the player only
            sound, rate = resample(sound, rate, self.LOWEST_PLAYABLE_RATE).clip(-1, 1), self.LOWEST_PLAYABLE_RATE
        return [self.picture(x, nrow=nrow or 1), (rate, np.round(sound * 32767).astype(np.int16))]

    def upload(self, label: str):
        return gr.Audio(label=label, type="filepath", sources=["upload"], format=None)

    def from_upload(self, path: str) -> tuple[Tensor, list[str]]:
        """A WAV file as the model's input [1, 1, L]: mono, resampled to the trained rate, cut or padded to L."""
        from gon.data.audio import read_wav, resample

        length = self.size[0]
        signal, rate = read_wav(Path(path), seconds=1.1 * length / self.rate)
        notes = []
        if rate != self.rate:
            signal = resample(signal, rate, self.rate)
            notes.append(f"resampled {rate:,} Hz to {self.rate:,} Hz")
        if len(signal) > length:
            notes.append(f"cut to the first {length / self.rate:g} s")
        elif len(signal) < length:
            notes.append(f"padded with silence to {length / self.rate:g} s")
        clip = np.zeros(length, np.float32)
        clip[: min(length, len(signal))] = np.clip(signal[:length], -1, 1)
        return torch.from_numpy((clip + 1) / 2)[None, None], notes

    def zoom_range(self) -> tuple[int, int, int]:
        return max(1, self.rate // 4), 8 * self.rate, 4 * self.rate

    def zoom_size(self, value) -> tuple[int]:
        low, high, _ = self.zoom_range()
        rate = whole_number(value, "sample rate", low, high)
        return (max(1, round(self.size[0] * rate / self.rate)),)


class Volumes(Medium):
    """Grids [N, 1, D, H, W] in [0, 1] (occupancy); shown as depth slices and, with scikit-image, the 0.5
    isosurface; zoom: the side of the rendered cube."""

    name, dims, baseline, zoom_label = "volume", 3, "trilinear upscale", "render grid side (zoom)"

    def __init__(self, model):
        super().__init__(model)
        self.folder = Path(tempfile.mkdtemp(prefix="gon-explore-"))  # isosurface figures are drawn to files
        self.figures = itertools.count()

    def widgets(self, label: str, **kw) -> list:
        surface = gr.Image(
            label=f"{label}: isosurface", type="filepath", interactive=False, elem_id=suffixed(kw, "iso")
        )
        return [*super().widgets(label, **kw), surface]

    def picture(self, x: Tensor, nrow: int | None = None, side: int = DISPLAY_SIDE) -> Image.Image:
        if len(x) == 1:  # one volume: 8 depth slices in a row rather than the grid's 4
            from gon.report.signals import slice_grid

            grid = slice_grid(x, most=8)
            scale = max(1, min(side // grid.height, 1024 // grid.width))
            return grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
        return super().picture(x, nrow, side)

    def show(self, x: Tensor, nrow: int | None = None) -> list:
        from gon.report.signals import isosurface_figure

        try:
            figure = isosurface_figure({"": x}, self.folder / f"isosurface-{next(self.figures)}.png")
        except GonError:  # scikit-image missing: the slices still show
            figure = None
        return [self.picture(x, nrow), str(figure) if figure else None]

    def upload(self, label: str):
        return gr.File(label=label, file_types=[".npy"], type="filepath", height=120)

    def from_upload(self, path: str) -> tuple[Tensor, list[str]]:
        """A .npy grid (occupancy or signed distances) as the model's input [1, 1, D, H, W]."""
        from gon.data.volume import read_volume

        grid = torch.from_numpy(read_volume(Path(path)))[None, None]
        if tuple(grid.shape[2:]) == self.size:
            return grid, []
        note = f"resized {'x'.join(map(str, grid.shape[2:]))} to {'x'.join(map(str, self.size))} (trilinear)"
        return F.interpolate(grid, size=self.size, mode="trilinear", align_corners=False).clamp(0, 1), [note]

    def zoom_range(self) -> tuple[int, int, int]:
        high = round(MAX_RENDER_CELLS ** (1 / 3))
        return 4, high, min(2 * self.size[0], high)

    def zoom_size(self, value) -> tuple[int, int, int]:
        low, high, _ = self.zoom_range()
        side = whole_number(value, "grid side", low, high)
        return side, side, side


#: every medium, tried in order: the first that accepts a model shows it
MEDIA = (Images, Audio, Volumes)


def medium_for(model) -> Medium:
    for medium in MEDIA:
        if medium.accepts(model):
            return medium(model)
    raise GonError(
        f"gon explore cannot show a {type(model).__name__} on a {grid_size(model) or 'unknown'} grid: "
        f"it knows {', '.join(m.name for m in MEDIA)}"
    )
