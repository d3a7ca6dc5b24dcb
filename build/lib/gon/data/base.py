"""The in-memory dataset every reader returns, and fitting raw images to the requested size."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from gon.core.errors import GonError


@dataclass
class ImageData:
    """A whole dataset split in memory, ready to index."""

    images: torch.Tensor  # float32 [N, C, H, W] in [0, 1]
    labels: torch.Tensor | None  # int64 [N] into ``classes``; None for unlabelled data (a flat folder)
    name: str
    classes: list[str] | None
    paths: list[str] | None = field(default=None)  # a folder's files, relative to it; None for named datasets
    index: torch.Tensor | None = field(default=None)  # int64 [N]: each image's position in its split; None: 0..N-1

    def __len__(self) -> int:
        return self.images.shape[0]

    def select(self, indices: torch.Tensor) -> ImageData:
        """The images at ``indices`` (with their labels and paths), e.g. a :func:`gon.data.subsets.choose`."""
        indices = torch.as_tensor(indices, dtype=torch.int64)
        return ImageData(
            self.images[indices],
            None if self.labels is None else self.labels[indices],
            self.name,
            self.classes,
            None if self.paths is None else [self.paths[i] for i in indices.tolist()],
            indices if self.index is None else self.index[indices],
        )

    def subset(self, k: int | None, seed: int = 0) -> ImageData:
        """k images drawn at random with ``seed``, stratified by class when labelled (all of them when k is None)."""
        from gon.data.subsets import choose

        return self if k is None or k >= len(self) else self.select(choose(len(self), k, seed, self.labels))

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[2]

    @property
    def grid(self) -> tuple[int, ...]:
        """The sample grid of each item: (H, W) for images, (L,) for audio, (D, H, W) for volumes."""
        return tuple(self.images.shape[2:])


class ImageDataset(torch.utils.data.Dataset):
    """Map-style view of :class:`ImageData` for DataLoaders; items are plain tensor slices."""

    def __init__(self, data: ImageData):
        self.data = data
        # -1 stands in for "no label" so every item has the same structure and collates.
        self.labels = data.labels if data.labels is not None else torch.full((len(data),), -1, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.images[index], self.labels[index]  # [C, H, W] float32, int64 scalar


def fit(x: torch.Tensor, size: int, resize: str, *, name: str) -> torch.Tensor:
    """uint8 [N, C, h, w] -> float32 [N, C, size, size] in [0, 1]."""
    h, w = x.shape[-2:]
    if max(h, w) > MAX_RESIZE_SIDE and (h, w) != (size, size):  # the resize matrices grow as the side squared
        raise GonError(f"{name}: images of {h}x{w} pixels; gon resizes images of at most {MAX_RESIZE_SIDE} a side")
    x = x.to(torch.float32).div_(255.0)
    if (h, w) == (size, size):
        return x
    if resize == "pad":
        if size < h or size < w:
            raise GonError(f"resize='pad' can only grow images; {name} is {h}x{w}, image_size={size}")
        top, left = (size - h) // 2, (size - w) // 2
        return F.pad(x, (left, size - w - left, top, size - h - top))
    # Bilinear resizing is separable and linear, so it is two small matrix products: the same
    # numbers as F.interpolate(x, mode="bilinear", align_corners=False), several times faster.
    rows, cols = _resize_matrix(h, size), _resize_matrix(w, size)  # [size, h], [size, w]
    return (rows @ x @ cols.T).clamp_(0.0, 1.0)


def _resize_matrix(src: int, dst: int) -> torch.Tensor:
    """[dst, src] matrix applying 1-D bilinear resizing (antialiased when shrinking) to a vector."""
    # Column i of the identity "image" is impulse i; resizing only its height gives column i of
    # the matrix. (A width of 1 would be simpler but hits a wrong antialias path in torch.) The identity is
    # built RESIZE_BLOCK columns at a time: a whole one for a 60,000-pixel-wide image would be 14 GB.
    blocks = []
    for start in range(0, src, RESIZE_BLOCK):
        width = min(RESIZE_BLOCK, src - start)
        eye = torch.zeros(src, max(width, 2))  # [src, width] columns start.. of the identity
        eye[torch.arange(start, start + width), torch.arange(width)] = 1.0
        out = F.interpolate(
            eye[None, None], size=(dst, eye.shape[1]), mode="bilinear", align_corners=False, antialias=dst < src
        )
        blocks.append(out[0, 0, :, :width])
    return torch.cat(blocks, dim=1)  # [dst, src]


RESIZE_BLOCK = 1024
MAX_RESIZE_SIDE = 8192  # a resize matrix from this side takes about a second to build
