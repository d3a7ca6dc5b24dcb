"""``volume:PATH``: a folder of ``.npy`` grids as volumes [N, 1, D, H, W] for a 3-D implicit GON.

Occupancy grids (bool, or numbers in [0, 1]) are used as they are; any other finite values are signed
distances (negative inside, in the [-1, 1] cube's units), mapped to 0.5 - sdf / (2 SDF_TRUNCATION) and
clipped, so the surface is the 0.5 level set in both cases. The split is ROOT/train and ROOT/test when
both exist, else a seeded held-out subset (:mod:`gon.data.splits`).
"""

from __future__ import annotations

from pathlib import Path
from tokenize import TokenError

import numpy as np
import torch
import torch.nn.functional as F

from gon.core.errors import GonError
from gon.data.base import ImageData
from gon.data.splits import chosen_files
from gon.data.subsets import Choice

MAX_VOLUME_BYTES = 1 << 29  # a .npy grid of more than 512 MiB is not one training example
SDF_TRUNCATION = 0.1  # signed distances beyond +-this are clipped to 0 or 1


def read_volume(path: Path) -> np.ndarray:
    """A 3-D .npy grid as float32 in [0, 1] (see the module docstring)."""
    try:
        grid = np.load(path, mmap_mode="r", allow_pickle=False)  # the header only, until the values are read
    except (ValueError, OSError, EOFError) as e:
        raise GonError(f"cannot read volume {path}: {e or type(e).__name__} (a .npy array is needed)") from None
    except (SyntaxError, TokenError, TypeError, MemoryError):  # numpy parses the header as a Python literal
        raise GonError(f"cannot read volume {path}: its .npy header is damaged") from None
    if not isinstance(grid, np.ndarray) or grid.ndim != 3 or min(grid.shape) < 1:
        raise GonError(f"volume {path} has shape {getattr(grid, 'shape', '?')}; a 3-D grid [D, H, W] is needed")
    if grid.dtype.kind not in "biuf":
        raise GonError(f"volume {path} holds {grid.dtype} values; occupancy (bool or 0..1) or signed distances needed")
    if grid.nbytes > MAX_VOLUME_BYTES:
        raise GonError(f"volume {path} is {grid.nbytes:,} bytes; at most {MAX_VOLUME_BYTES:,} are read")
    values = np.array(grid, dtype=np.float32)  # a copy in memory: a float32 file would stay a read-only memmap
    if not np.isfinite(values).all():
        raise GonError(f"volume {path} holds NaN or infinite values")
    if values.min() >= 0 and values.max() <= 1:
        return values
    return np.clip(0.5 - values / (2 * SDF_TRUNCATION), 0, 1)


def load_volumes(spec: str, split: str, size: int | None, test_fraction: float, seed: int, choice: Choice) -> ImageData:
    """``volume:PATH``: grids of one shape, resized (trilinear) to ``size``^3 when given: [N, 1, D, H, W]; only
    the chosen files are read."""
    files, index, paths = chosen_files(spec, "volume:", ".npy", split, test_fraction, seed, choice)
    grids = []
    for path in files:
        grid = torch.from_numpy(read_volume(path))[None]  # [1, D, H, W]
        if size is not None and tuple(grid.shape[1:]) != (size,) * 3:
            grid = F.interpolate(grid[None], size=(size,) * 3, mode="trilinear", align_corners=False)[0]
        if grids and grid.shape != grids[0].shape:
            raise GonError(
                f"volume {path} is {tuple(grid.shape[1:])} but {files[0]} is {tuple(grids[0].shape[1:])}; "
                "give every grid one shape, or --image-size to resize them all"
            )
        grids.append(grid)
    return ImageData(torch.stack(grids).clamp_(0, 1), None, spec, None, paths, index)
