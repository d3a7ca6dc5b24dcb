"""``folder:PATH``: every PNG/JPEG/BMP below a directory, with a seeded, stable test split."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from gon.data.base import ImageData
from gon.data.splits import held_out_split
from gon.errors import GonError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def load_folder(spec: str, split: str, size: int, test_fraction: float, seed: int, limit: int | None) -> ImageData:
    """Recursively load PNG/JPEG/BMP files; the test split is a seeded, stable subset of files."""
    root = Path(spec[len("folder:") :]).expanduser()
    if not spec[len("folder:") :] or not root.is_dir():
        raise GonError(f"dataset {spec}: no such directory {root}")
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise GonError(f"dataset {spec}: no PNG/JPEG/BMP images under {root}")
    chosen = held_out_split(files, root, split, test_fraction, seed, spec)[:limit]
    # Channels are decided over the whole folder (headers only), so train and test agree.
    rgb = any(open_image(f, lambda im: im.mode not in _GRAY_MODES) for f in files)
    images = np.stack([open_image(f, lambda im: _decode(im, rgb, size)) for f in chosen])
    return ImageData(torch.from_numpy(images), None, spec, None)  # [N, C, size, size]


def open_image(path, use, name: str | None = None):
    """Open ``path`` (a file name or a binary file object) with Pillow and apply ``use``.

    Any failure, decompression bombs included, is a GonError naming ``name`` (default: the path).
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return use(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise GonError(f"cannot read image {name or path}: {err or type(err).__name__}") from err


def _decode(im, rgb: bool, size: int) -> np.ndarray:
    """Pillow image -> float32 [C, size, size] in [0, 1]; alpha is dropped, palettes expanded."""
    from PIL import Image

    im.load()  # decode now so truncated files fail here
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grayscale: keep precision
        arr = np.asarray(im, dtype=np.float32) / (65535.0 if im.mode.startswith("I") else 1.0)
        out = np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.BICUBIC))
        out = np.clip(out, 0.0, 1.0)[None]  # [1, size, size]
        return np.repeat(out, 3, axis=0) if rgb else out
    im = im.convert("RGB" if rgb else "L").resize((size, size), Image.Resampling.BICUBIC)
    out = np.asarray(im, dtype=np.float32) / 255.0  # [size, size, 3] or [size, size]
    return out.transpose(2, 0, 1) if rgb else out[None]
