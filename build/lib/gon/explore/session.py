"""What the explorer page asks of a trained model, without the page: inputs, latents, pictures.

An :class:`Explorer` holds one loaded model and, when they were found offline, a few test
images of its training data. Every method takes and returns plain tensors ([N, C, H, W] in
[0, 1] for images, [k] or [N, k] for latents) and raises :class:`gon.GonError` for anything
the user can fix; the page (:mod:`gon.explore.app`) only turns these into widgets.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gon.core.errors import GonError
from gon.sampling import decode, encode_images, eval_mode, model_device, sample, slerp

#: the most grid cells an implicit model renders on the page (1024x1024 pixels, 101^3 voxels, 2 min of 8 kHz
#: audio: seconds on a CPU; the chunked decoder keeps the memory bounded)
MAX_RENDER_CELLS = 1 << 20
#: the most samples one draw decodes
MAX_SAMPLES = 64
#: the most interpolation steps shown in one strip
MAX_STEPS = 16


@dataclass
class Examples:
    """Test images of the model's training data: the inputs a user can pick without uploading."""

    images: Tensor  # [N, C, H, W] in [0, 1], at the model's size
    names: list[str]  # one caption per image, e.g. "#3 · Dress"
    dataset: str  # where they come from, e.g. "fashion-mnist (test split)"
    classes: list[str] | None = None  # the dataset's class names, when it has classes


@dataclass
class Explorer:
    """One model and its example inputs; the thread lock serialises the page's events on the model."""

    model: torch.nn.Module
    examples: Examples | None = None
    source: str = ""  # where the model was loaded from, for the page's title
    notes: list[str] = field(default_factory=list)  # what the page should say about missing parts
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- what the model is ----------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    @property
    def zooms(self) -> bool:
        """Whether the model renders at any resolution (an implicit GON)."""
        return self.model.renders_any_size

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # -- inputs ---------------------------------------------------------------------------
    def example(self, index) -> Tensor:
        """Test image number ``index`` as a batch of one: [1, C, H, W]."""
        if self.examples is None:
            raise GonError("this page has no test images (none were found offline): upload an image instead")
        if index is None or index == "":
            raise GonError("no image chosen: pick a test image or upload one")
        index = whole_number(index, "test image", 0, len(self.examples.images) - 1)
        return self.examples.images[index][None]

    # -- the model's answers ----------------------------------------------------------------
    def latents(self, x: Tensor) -> Tensor:
        """Latents [N, k] of images [N, C, H, W]."""
        with self.lock:
            return encode_images(self.model, x)

    def classify(self, x: Tensor) -> str | None:
        """The class a classifier GON (Eq. 13) gives image x [1, C, H, W], by name when known; None for other models."""
        if not callable(getattr(self.model, "classify", None)):
            return None
        with self.lock, eval_mode(self.model):
            label = int(self.model.classify(x.to(model_device(self.model)))[0])
        classes = self.examples.classes if self.examples else None
        return classes[label] if classes and label < len(classes) else f"class {label}"

    def decode(self, z: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """Images [N, C, H, W] in [0, 1] of latents [N, k], at ``size`` for an implicit model."""
        with self.lock:
            return decode(self.model, z, size).clamp(0, 1)

    def render(self, z: Tensor, size: tuple[int, ...]) -> Tensor:
        """An implicit model's signals of latents z [N, k] on a grid of ``size`` (any resolution)."""
        if not self.zooms:
            raise GonError(
                f"a {type(self.model).__name__} decodes only at its training size; zoom needs an implicit GON"
            )
        if math.prod(size) > MAX_RENDER_CELLS:
            raise GonError(
                f"a {'x'.join(map(str, size))} render is over {MAX_RENDER_CELLS:,} cells; choose a smaller one"
            )
        return self.decode(z, size)

    def samples(self, n, temperature, seed) -> Tensor:
        """``n`` samples [n, C, H, W] drawn with ``seed`` at ``temperature`` (see :func:`gon.sampling.sample`)."""
        n = whole_number(n, "number of samples", 1, MAX_SAMPLES)
        seed = whole_number(seed, "seed", 0, 2**63 - 1)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 10:
            raise GonError(f"temperature must be a number from 0 to 10, got {temperature!r}")
        with self.lock:
            return sample(self.model, n, float(temperature), seed).clamp(0, 1)

    def interpolate(self, a: Tensor, b: Tensor, t, steps) -> tuple[Tensor, Tensor]:
        """Slerp between the latents of images a and b [1, C, H, W] (the paper's Fig. 6).

        Returns the image at fraction ``t`` [1, C, H, W] and the strip [steps + 2, C, H, W]: a, the
        decodings at ``steps`` evenly spaced fractions (both ends included), b.
        """
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1:
            raise GonError(f"interpolation position must be a number from 0 to 1, got {t!r}")
        steps = whole_number(steps, "interpolation steps", 2, MAX_STEPS)
        za, zb = self.latents(torch.cat([a, b])).chunk(2)
        fractions = torch.cat([torch.tensor([float(t)]), torch.linspace(0, 1, steps)])
        frames = self.decode(slerp(za, zb, fractions)[0])  # [1 + steps, C, H, W]
        return frames[:1], torch.cat([a, frames[1:], b])


def whole_number(value, name: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high]; a float with a fraction, a bool or anything else is refused."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or value != int(value) or not low <= value <= high:
        raise GonError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)
