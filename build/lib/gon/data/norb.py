"""SmallNORB: the NYU "binary matrix" files (.mat, not MATLAB's), gzipped or not.

Format (https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/): a little-endian int32 magic number
naming the element type, an int32 number of dimensions, then max(3, ndim) int32 sizes (unused
ones are 1), then the elements. The -dat files hold [N, 2, 96, 96] uint8 stereo pairs, the -cat
files [N] int32 categories. gon uses the left camera's image, as single-channel pictures.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from gon.core.errors import GonError
from gon.data.download import Source, chosen_arrays
from gon.data.idx import open_maybe_gzipped, read_payload
from gon.data.subsets import Choice

MAX_NORB_BYTES = 1 << 31  # the biggest real file (training-dat) holds 448 MB
_TYPES = {
    0x1E3D4C51: np.dtype("<f4"),
    0x1E3D4C53: np.dtype("<f8"),
    0x1E3D4C54: np.dtype("<i4"),
    0x1E3D4C55: np.dtype("u1"),
    0x1E3D4C56: np.dtype("<i2"),
}
NORB_FILES = {
    "train": ("smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat", "smallnorb-5x46789x9x18x6x2x96x96-training-cat.mat"),
    "test": ("smallnorb-5x01235x9x18x6x2x96x96-testing-dat.mat", "smallnorb-5x01235x9x18x6x2x96x96-testing-cat.mat"),
}
_URL = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"


def read_norb(path: str | Path) -> np.ndarray:
    """Decode one NORB binary matrix (gzipped or raw, detected by content); header checked before allocating."""
    path = Path(path)
    try:
        with open_maybe_gzipped(path) as (_, stream):
            head = stream.read(8)
            if len(head) < 8 or int.from_bytes(head[:4], "little") not in _TYPES:
                raise GonError(f"{path}: not a NORB binary matrix (bad magic number)")
            dtype, ndim = _TYPES[int.from_bytes(head[:4], "little")], int.from_bytes(head[4:], "little", signed=True)
            if not 1 <= ndim <= 4:
                raise GonError(f"{path}: NORB matrices with {ndim} dimensions are not supported (1 to 4)")
            dims_raw = stream.read(4 * max(3, ndim))
            if len(dims_raw) < 4 * max(3, ndim):
                raise GonError(f"{path}: truncated NORB header")
            shape = tuple(int.from_bytes(dims_raw[4 * i : 4 * i + 4], "little", signed=True) for i in range(ndim))
            if min(shape) < 0 or int(np.prod(shape, dtype=object)) * dtype.itemsize > MAX_NORB_BYTES:
                raise GonError(f"{path}: NORB header declares shape {shape}, not a real SmallNORB file")
            array = read_payload(stream, dtype, shape, path, "NORB")
    except (OSError, EOFError, zlib.error) as err:
        raise GonError(f"cannot read NORB file {path}: {err}") from err
    return array


def _norb_path(root: Path, name: str) -> Path:
    return root / name if (root / name).is_file() else root / f"{name}.gz"


def read_smallnorb(root: Path, split: str, choice: Choice, size: int | None = None):
    """One split of SmallNORB -> (uint8 left-camera images [N, 1, 96, 96], categories [N], index); native size."""
    dat_path, cat_path = (_norb_path(root, f) for f in NORB_FILES[split])
    images, labels = read_norb(dat_path), read_norb(cat_path)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 2 or images.shape[2] != images.shape[3]:
        raise GonError(f"{dat_path}: expected uint8 stereo pairs [N, 2, H, H], got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind != "i" or len(labels) != len(images):
        raise GonError(f"{cat_path}: expected {len(images)} integer categories, got {labels.dtype} {labels.shape}")
    if len(labels) and not 0 <= labels.min() <= labels.max() < len(SMALLNORB.classes):
        raise GonError(f"{cat_path}: categories must be 0 to {len(SMALLNORB.classes) - 1}")
    return chosen_arrays(images[:, :1], labels.astype(np.int64), choice)  # [N, 1, 96, 96] (left camera), [N], [N]


SMALLNORB = Source(
    name="smallnorb",
    classes=["animal", "human", "airplane", "truck", "car"],
    files=[(f, f + ".gz") for split in ("train", "test") for f in NORB_FILES[split]],
    read=read_smallnorb,
    how_to_get=f"download the four -dat/-cat .mat.gz files from {_URL} and pass --data-dir DIR",
    url=_URL,
    checksums={  # MD5 of the .gz files as served
        "smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat.gz": "66054832f9accfe74a0f4c36a75bc0a2",
        "smallnorb-5x46789x9x18x6x2x96x96-training-cat.mat.gz": "23c8b86101fbf0904a000b43d3ed2fd9",
        "smallnorb-5x01235x9x18x6x2x96x96-testing-dat.mat.gz": "e4ad715691ed5a3a5f138751a4ceb071",
        "smallnorb-5x01235x9x18x6x2x96x96-testing-cat.mat.gz": "5aa791cd7e6016cf957ce9bdb93b8603",
    },
)
