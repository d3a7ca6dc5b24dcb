"""Image grids as PIL images: the pictures a person looks at."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def make_grid(images: Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> Image.Image:
    """[N, C, H, W] in [0, 1] -> one PIL image, ``nrow`` images per row (default: a square)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1 or 3, H, W], got {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value)
    for i, img in enumerate(images.detach().float().cpu().clamp(0, 1)):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = img
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array[..., 0] if c == 1 else array, mode="L" if c == 1 else "RGB")


def side_by_side(originals: Tensor, reconstructions: Tensor, nrow: int = 8) -> Image.Image:
    """Pairs of rows: each row of originals followed by the same images reconstructed."""
    if originals.shape[-2:] != reconstructions.shape[-2:]:
        reconstructions = torch.nn.functional.interpolate(reconstructions, size=originals.shape[-2:], mode="bilinear")
    rows = []
    for start in range(0, len(originals), nrow):
        rows += [originals[start : start + nrow], reconstructions[start : start + nrow]]
    return make_grid(torch.cat(rows), nrow=nrow)


def save_image(image: Image.Image, path: str | Path, scale: int = 1) -> Path:
    """Save a PIL image, optionally enlarged with nearest-neighbour so small digits stay crisp."""
    path = Path(path)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    image.save(path)
    return path


def upscale(images: Tensor, size: int | tuple[int, int], resample: int = Image.BICUBIC) -> Tensor:
    """[N, C, h, w] -> [N, C, H, W] with Pillow's resampling (bicubic by default): the usual baseline for
    super-resolution, as image viewers and editors compute it."""
    h, w = (size, size) if isinstance(size, int) else size
    out = []
    for img in images.detach().float().cpu().clamp(0, 1):
        channels = [Image.fromarray(c.numpy(), mode="F").resize((w, h), resample) for c in img]  # float, no rounding
        out.append(torch.from_numpy(np.stack([np.asarray(c) for c in channels])))
    return torch.stack(out).clamp(0, 1)


def pairs_grid(left: Tensor, right: Tensor, pairs_per_row: int = 4) -> Image.Image:
    """Each left image followed by its right counterpart, ``pairs_per_row`` pairs to a row."""
    if left.shape != right.shape:
        raise ValueError(f"pairs need equal shapes, got {tuple(left.shape)} and {tuple(right.shape)}")
    pairs = torch.stack([left, right], dim=1).flatten(0, 1)  # [2N, C, H, W]: l0 r0 l1 r1 ...
    return make_grid(pairs, nrow=2 * min(pairs_per_row, len(left)))


def rows_grid(rows: Tensor) -> Image.Image:
    """[R, T, C, H, W] -> a grid with one row of T images per r (interpolations, one pair a row)."""
    return make_grid(rows.flatten(0, 1), nrow=rows.shape[1])


def enlarge_for_viewing(image: Image.Image, min_side: int = 256) -> int:
    """The nearest-neighbour scale that makes a small grid comfortable to look at (1 for large ones)."""
    return max(1, min(4, min_side // max(1, min(image.width, image.height))))
