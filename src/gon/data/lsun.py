"""LMDB databases of encoded pictures: LSUN Bedroom (the paper's 128x128 set) and ``lmdb:PATH``.

Two layouts are read, both one encoded picture per value: LSUN's (keys are hex image ids,
values WebP/JPEG; https://github.com/fyu/lsun) and RKelln/vid2frame's (keys "VIDEO/00000012",
values JPEG frames). Values that are not pictures fail with the key named, except the few
metadata keys some tools add (``length``, ``__len__``, ``__keys__``), which are skipped.

LSUN Bedroom: bedroom_train_lmdb/ (3,033,042 pictures, 43 GB) trains, bedroom_val_lmdb/ (300)
tests. ``lmdb:PATH`` holds out a seeded, stable ``test_fraction`` of its keys (by a hash of
the seed and the key, so the split does not depend on the order or number of keys).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from gon.core.errors import GonError
from gon.data.base import ImageData
from gon.data.download import Source
from gon.data.encoded import decode_all, is_rgb
from gon.data.splits import held_out
from gon.data.subsets import Choice

METADATA_KEYS = {b"length", b"__len__", b"__keys__"}


class LmdbImages:
    """A read-only LMDB of encoded pictures: its size and its (name, bytes) pairs in key order."""

    def __init__(self, path: Path):
        import lmdb

        if not path.exists():
            raise GonError(f"no LMDB at {path}")
        try:
            self.env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, subdir=path.is_dir())
            self.env.stat()  # a file that is not an LMDB fails here
        except lmdb.Error as err:
            raise GonError(f"cannot open LMDB {path}: {str(err).splitlines()[0]}") from err
        self.path = path

    def keys(self) -> list[bytes]:
        """The pictures' keys in key order (keys only: cheap even for LSUN's three million)."""
        import lmdb

        try:
            with self.env.begin(buffers=False) as txn:
                return [k for k in txn.cursor().iternext(keys=True, values=False) if k not in METADATA_KEYS]
        except lmdb.Error as err:
            raise GonError(f"cannot read LMDB {self.path}: {str(err).splitlines()[0]}") from err

    def items(self, keys: list[bytes]) -> Iterator[tuple[str, bytes]]:
        """(name, value) of each of ``keys``."""
        import lmdb

        try:
            with self.env.begin(buffers=False) as txn:
                for key in keys:
                    yield f"{self.path}:{key.decode('utf-8', 'replace')}", txn.get(key)
        except lmdb.Error as err:
            raise GonError(f"cannot read LMDB {self.path}: {str(err).splitlines()[0]}") from err

    def close(self) -> None:
        self.env.close()


def read_lmdb(
    path: Path, choice: Choice, size: int, name: str, split_of: Callable[[list[bytes]], list[bytes]] = list
) -> tuple[np.ndarray, torch.Tensor]:
    """The chosen pictures of a split of an LMDB (``split_of``: its keys from all keys) -> (uint8 [N, C, size, size],
    index [N] among the split's keys); colour if its first picture has colour. Only the chosen are decoded."""
    db = LmdbImages(path)
    try:
        keys = split_of(db.keys())
        if not keys:
            raise GonError(f"{name}: {path} holds no pictures for this split")
        first = next(db.items(keys[:1]))
        index = choice(len(keys))
        chosen = [keys[i] for i in index.tolist()]
        return decode_all(db.items(chosen), len(chosen), size, is_rgb(first[1], first[0]), name), index
    finally:
        db.close()


def read_lsun(root: Path, split: str, choice: Choice, size: int | None = None):
    """One split of LSUN Bedroom -> (uint8 images [N, 3, size, size], no labels, index)."""
    folder = root / ("bedroom_train_lmdb" if split == "train" else "bedroom_val_lmdb")
    images, index = read_lmdb(folder, choice, size or 128, "lsun-bedroom")
    return images, None, index


def load_lmdb(spec: str, split: str, size: int, test_fraction: float, seed: int, choice: Choice) -> ImageData:
    """``lmdb:PATH``: every picture of an LMDB; the test split is a seeded, stable subset of keys."""
    path = Path(spec[len("lmdb:") :]).expanduser()
    if not spec[len("lmdb:") :]:
        raise GonError(f"dataset {spec}: give the LMDB's path after lmdb:")

    def split_of(keys: list[bytes]) -> list[bytes]:
        test = held_out(keys, test_fraction, seed)
        return [key for i, key in enumerate(keys) if (i in test) == (split == "test")]

    images, index = read_lmdb(path, choice, size, spec, split_of)
    return ImageData(torch.from_numpy(images).float().div_(255.0), None, spec, None, index=index)


LSUN_BEDROOM = Source(
    name="lsun-bedroom",
    classes=[],
    files=[("bedroom_train_lmdb",), ("bedroom_val_lmdb",)],
    read=read_lsun,
    how_to_get="download bedroom_train_lmdb.zip and bedroom_val_lmdb.zip with LSUN's download.py "
    "(https://github.com/fyu/lsun: python download.py -c bedroom), unzip them into DIR and pass --data-dir DIR",
    downloadable=False,
    native_size=128,
)
