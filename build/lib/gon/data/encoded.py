"""Decoding many encoded images (JPEG, PNG, WebP) straight to a small square size, with a memory check first.

Used by the datasets distributed as compressed pictures (COIL-20, CelebA, LSUN, any LMDB):
each picture is centre-cropped to a square, resized with Pillow (JPEGs decoded at reduced scale
when that is enough) and stored as uint8, so memory holds only the final pixels.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import gon.core.validate
from gon.core.errors import GonError
from gon.data.folder import GRAY_MODES, deep_gray, open_image

BYTES_PER_VALUE = 5  # uint8 while decoding + float32 once loaded
#: what reading a damaged zip raises: bad headers, an unknown version or method, a broken deflate stream, a CRC
ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError, zlib.error)
MAX_ENCODED_BYTES = 64 << 20  # no picture of these datasets is close; a bigger one is corrupt or hostile


def check_split_fits(count: int, channels: int, size: int, name: str) -> None:
    """Refuse, before decoding anything, a split that would not fit in memory; say how to make it fit."""
    per_image = channels * size * size * BYTES_PER_VALUE
    fits = max(1, gon.core.validate.available_memory() // per_image)
    gon.core.validate.check_memory(
        count * per_image,
        f"{name}: {count} images at {size}x{size}",
        f"pass --limit-train (at most about {fits}) or a smaller --image-size",
    )


def decode(data: bytes | Path, size: int, rgb: bool, name: str, crop: int | None = None) -> np.ndarray:
    """One encoded picture -> uint8 [C, size, size]: the centred ``crop`` square (default the largest), resized."""
    from PIL import Image

    if isinstance(data, bytes) and len(data) > MAX_ENCODED_BYTES:
        raise GonError(f"cannot read image {name}: {len(data)} bytes, more than any real picture")

    def use(im) -> np.ndarray:
        w, h = im.size
        side = crop or min(w, h)
        if side > min(w, h):
            raise GonError(f"cannot read image {name}: {w}x{h} is smaller than the {side}x{side} crop")
        if im.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale when that still covers size
            im.draft("RGB" if rgb else "L", (max(1, w * size // side), max(1, h * size // side)))
        scale = im.size[0] / w
        left, top, side = (im.size[0] - side * scale) / 2, (im.size[1] - side * scale) / 2, side * scale
        deep = deep_gray(im)
        if deep is not None:  # 16-bit grayscale: scaled to 8 bits, not clipped
            im = Image.fromarray(np.round(deep * 255).astype(np.uint8))
        im = im.convert("RGB" if rgb else "L")
        out = np.asarray(im.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)))
        return out.transpose(2, 0, 1) if rgb else out[None]

    return open_image(io.BytesIO(data) if isinstance(data, bytes) else data, use, name)


def is_rgb(data: bytes | Path, name: str) -> bool:
    """Whether a picture has colour (its mode, from the header only)."""
    return open_image(
        io.BytesIO(data) if isinstance(data, bytes) else data,
        lambda im: im.mode not in GRAY_MODES,
        name,
    )


def decode_all(
    items: Iterable[tuple[str, bytes | Path]], count: int, size: int, rgb: bool, dataset: str, crop: int | None = None
) -> np.ndarray:
    """Decode ``count`` (name, data) pairs into one uint8 [count, C, size, size] array, with a progress bar."""
    check_split_fits(count, 3 if rgb else 1, size, dataset)
    out = np.empty((count, 3 if rgb else 1, size, size), np.uint8)
    n = 0
    for name, data in tqdm(items, total=count, desc=f"decoding {dataset}", unit="img", disable=None, leave=False):
        if n == count:
            break
        out[n] = decode(data, size, rgb, name, crop)
        n += 1
    return out[:n]
