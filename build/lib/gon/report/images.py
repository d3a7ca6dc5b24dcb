"""Image grids as PIL images: the pictures a person looks at.

Grids take signals of any grid dimension: :func:`as_pictures` draws audio [N, C, L] as waveforms and
volumes [N, C, D, H, W] as rows of slices, so every grid of a model (reconstructions, samples,
interpolations) is drawn by the same code for images, sounds and volumes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from gon.storage.atomic import save_picture

WAVE_HEIGHT, WAVE_WIDTH = 48, 192  # a waveform's picture in a grid
VOLUME_SLICES = 4  # depth slices of a volume's picture in a grid


def as_pictures(signals: Tensor) -> Tensor:
    """Signals [N, C, *grid] in [0, 1] as images [N, C, H, W]: images as they are; audio (1 grid dimension) as
    its waveform, white on black, each column spanning the min..max of its samples; volumes (3) as
    ``VOLUME_SLICES`` slices across the depth, side by side."""
    signals = signals.detach().float().cpu()
    if signals.ndim == 4:
        return signals
    if signals.ndim == 3:
        n, c, length = signals.shape
        cols = min(length, WAVE_WIDTH)
        edges = torch.linspace(0, length, cols + 1).round().long()
        low = torch.stack([signals[..., a : max(b, a + 1)].amin(-1) for a, b in zip(edges[:-1], edges[1:])], -1)
        high = torch.stack([signals[..., a : max(b, a + 1)].amax(-1) for a, b in zip(edges[:-1], edges[1:])], -1)
        rows = 1 - (torch.arange(WAVE_HEIGHT) + 0.5) / WAVE_HEIGHT  # top row: value 1
        half = 1 / WAVE_HEIGHT  # a trace at least one row thick
        lit = (rows[:, None] >= low[..., None, :] - half) & (rows[:, None] <= high[..., None, :] + half)
        return lit.float()  # [N, C, WAVE_HEIGHT, cols]
    if signals.ndim == 5:
        depth = signals.shape[2]
        picks = [min(depth - 1, int((i + 0.5) * depth / VOLUME_SLICES)) for i in range(VOLUME_SLICES)]
        gap = torch.full((*signals.shape[:2], signals.shape[3], 1), 0.5)  # a grey line between slices
        parts = [p for i in picks for p in (gap, signals[:, :, i])][1:]
        return torch.cat(parts, dim=-1)  # [N, C, H, k * W + k - 1]
    raise ValueError(f"expected signals [N, C, *grid] with 1 to 3 grid dimensions, got {tuple(signals.shape)}")


def make_grid(images: Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> Image.Image:
    """[N, C, H, W] in [0, 1] (or signals of another grid dimension: :func:`as_pictures`) -> one PIL image,
    ``nrow`` images per row (default: a square)."""
    images = as_pictures(images)
    if images.shape[1] not in (1, 3):
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
    originals, reconstructions = as_pictures(originals), as_pictures(reconstructions)
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
    return save_picture(image, path)


def upscale(images: Tensor, size: int | tuple[int, ...], resample: int = Image.BICUBIC) -> Tensor:
    """[N, C, h, w] -> [N, C, H, W] with Pillow's resampling (bicubic by default): the usual baseline for
    super-resolution, as image viewers and editors compute it. Audio [N, C, l] is resampled band-limited
    (the FFT), volumes [N, C, d, h, w] trilinearly: their usual baselines."""
    if images.ndim != 4:
        return _upscale_signal(images, size)
    h, w = (size, size) if isinstance(size, int) else size
    out = []
    for img in images.detach().float().cpu().clamp(0, 1):
        channels = [Image.fromarray(c.numpy(), mode="F").resize((w, h), resample) for c in img]  # float, no rounding
        out.append(torch.from_numpy(np.stack([np.asarray(c) for c in channels])))
    return torch.stack(out).clamp(0, 1)


def _upscale_signal(signals: Tensor, size: int | tuple[int, ...]) -> Tensor:
    from gon.data.audio import resample

    signals = signals.detach().float().cpu()
    size = (size,) * (signals.ndim - 2) if isinstance(size, int) else tuple(size)
    if signals.ndim == 3:
        rows = signals.reshape(-1, signals.shape[-1]).double().numpy()
        out = np.stack([resample(r, rows.shape[-1], size[0]) for r in rows])
        return torch.from_numpy(out).float().reshape(*signals.shape[:2], size[0]).clamp(0, 1)
    return torch.nn.functional.interpolate(signals, size=size, mode="trilinear", align_corners=False).clamp(0, 1)


def pairs_grid(left: Tensor, right: Tensor, pairs_per_row: int = 4) -> Image.Image:
    """Each left image followed by its right counterpart, ``pairs_per_row`` pairs to a row."""
    if left.shape != right.shape:
        raise ValueError(f"pairs need equal shapes, got {tuple(left.shape)} and {tuple(right.shape)}")
    pairs = torch.stack([left, right], dim=1).flatten(0, 1)  # [2N, C, H, W]: l0 r0 l1 r1 ...
    return make_grid(pairs, nrow=2 * min(pairs_per_row, len(left)))


def rows_grid(rows: Tensor) -> Image.Image:
    """[R, T, C, H, W] -> a grid with one row of T images per r (interpolations, one pair a row)."""
    return make_grid(rows.flatten(0, 1), nrow=rows.shape[1])


MAX_SIDE = 768  # small grids are enlarged (nearest neighbour, at most 4x) until their longer side reaches this
FONT_SIZE = 14


def labelled(
    grid: Image.Image,
    title: str,
    cell: tuple[int, int],
    rows: list[str] | None = None,
    columns: list[str] | None = None,
    padding: int = 2,
) -> Image.Image:
    """A grid enlarged for viewing, with a header strip (its title and any column labels) and row labels.

    cell: (height, width) of one image of ``grid`` with its padding; ``rows`` and ``columns`` label them in
    turn, repeating when the grid has more rows (or columns) than labels. Text is drawn after enlarging,
    with Pillow's built-in font, so that it stays sharp.
    """
    from PIL import ImageDraw, ImageFont

    scale = max(1, min(4, MAX_SIDE // max(grid.width, grid.height)))
    grid = grid.convert("RGB").resize((grid.width * scale, grid.height * scale), Image.NEAREST)
    font = ImageFont.load_default(size=FONT_SIZE)
    line = FONT_SIZE + 6
    cell_h, cell_w = cell[0] * scale, cell[1] * scale
    left = 8 + max((int(font.getlength(r)) for r in rows), default=-8) if rows else 0
    top = line * (1 + bool(columns)) + 4
    width = max(grid.width + left, int(font.getlength(title)) + 16)
    out = Image.new("RGB", (width, grid.height + top), "white")
    out.paste(grid, (left, top))
    draw = ImageDraw.Draw(out)
    draw.text((8, 4), title, fill="black", font=font)
    for i in range(grid.width // cell_w if columns else 0):
        text = columns[i % len(columns)]
        x = left + padding * scale + i * cell_w + (cell_w - padding * scale - font.getlength(text)) / 2
        draw.text((x, line + 4), text, fill=(60, 60, 60), font=font)
    for i in range(grid.height // cell_h if rows else 0):
        y = top + padding * scale + i * cell_h + (cell_h - padding * scale - FONT_SIZE) / 2
        draw.text((4, y), rows[i % len(rows)], fill=(60, 60, 60), font=font)
    return out
