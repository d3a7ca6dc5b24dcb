"""How the explorer shows a model's data and reads a user's: one *medium* per kind of signal.

A medium knows the shape a model takes, turns an upload into a model input (saying what it had
to change) and turns model outputs into widgets' values. Images are the only medium today; a
model over other signals (audio, volumes) adds its own class to :data:`MEDIA`, with its own
widgets, and the page's tabs use it unchanged.
"""

from __future__ import annotations

import functools

import gradio as gr
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from gon.errors import GonError
from gon.images import make_grid

#: pictures smaller than this (in pixels, per side) are enlarged by nearest neighbour so that the
#: pixels a model sees stay crisp instead of being blurred by the browser
DISPLAY_SIDE = 256


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
            raise gr.Error(f"{name} is not an image gon can read ({type(e).__name__}): upload a PNG or JPEG") from None

    return read


class Images:
    """Pictures [N, C, H, W] in [0, 1], C = 1 (greyscale) or 3 (RGB)."""

    name = "image"

    def __init__(self, model):
        if not self.accepts(model):
            raise GonError(f"a {type(model).__name__} of this shape is not an image model")
        self.height, self.width = self.size(model)
        self.channels = model.config["channels"]

    @staticmethod
    def size(model) -> tuple[int, ...]:
        """The model's grid size from its config: (H, W) for an image model."""
        size = getattr(model, "config", {}).get("image_size")
        return (size, size) if isinstance(size, int) else tuple(size or ())

    @classmethod
    def accepts(cls, model) -> bool:
        return len(cls.size(model)) == 2 and getattr(model, "config", {}).get("channels") in (1, 3)

    @property
    def describe(self) -> str:
        return f"{self.height}x{self.width} {'greyscale' if self.channels == 1 else 'RGB'}"

    # -- widgets --------------------------------------------------------------------------
    def upload(self, label: str) -> gr.Image:
        widget = gr.Image(label=label, type="pil", sources=["upload", "clipboard"], height=200, image_mode=None)
        widget.preprocess = readable(widget.preprocess)
        return widget

    def picture(self, label: str, **kw) -> gr.Image:
        return gr.Image(label=label, type="pil", format="png", interactive=False, **kw)

    # -- values -----------------------------------------------------------------------------
    def from_upload(self, image: Image.Image) -> tuple[Tensor, list[str]]:
        """An uploaded picture as the model's input [1, C, H, W], and a note for each change made to it."""
        notes = []
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
        target = self.width / self.height
        if abs(w / h - target) > 1e-6:  # centre crop to the model's aspect ratio
            cw, ch = (round(h * target), h) if w / h > target else (w, round(w / target))
            left, top = (w - cw) // 2, (h - ch) // 2
            image = image.crop((left, top, left + cw, top + ch))
            notes.append(f"cropped {w}x{h} to the centre {cw}x{ch}")
        if image.size != (self.width, self.height):
            notes.append(f"resized {image.width}x{image.height} to {self.width}x{self.height}")
            image = image.resize((self.width, self.height), Image.LANCZOS)
        array = np.asarray(image, dtype=np.float32) / 255
        x = torch.from_numpy(array[None] if self.channels == 1 else array.transpose(2, 0, 1).copy())
        return x[None], notes

    def show(self, images: Tensor, nrow: int | None = None, side: int = DISPLAY_SIDE) -> Image.Image:
        """Images [N, C, H, W] as one picture, enlarged (nearest neighbour) towards ``side`` pixels when small."""
        grid = make_grid(images, nrow=nrow, padding=2 if len(images) > 1 else 0)
        scale = max(1, side // max(1, min(images.shape[-2:])))
        if len(images) > 1:
            scale = max(1, min(scale, 1024 // max(grid.size)))
        return grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST) if scale > 1 else grid


#: every medium, tried in order: the first that accepts a model shows it
MEDIA = (Images,)


def medium_for(model):
    for medium in MEDIA:
        if medium.accepts(model):
            return medium(model)
    raise GonError(f"gon explore cannot show a {type(model).__name__} yet: it knows {', '.join(m.name for m in MEDIA)}")
