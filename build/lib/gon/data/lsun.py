"""LMDB databases of encoded pictures: LSUN Bedroom (the paper's 128x128 set) and ``lmdb:PATH``.

Two layouts are read, both one encoded picture per value: LSUN's (keys are hex image ids,
values WebP/JPEG; https://github.com/fyu/lsun) and RKelln/vid2frame's (keys "VIDEO/00000012",
values JPEG frames). Values that are not pictures fail with the key named, except the few
metadata keys some tools add (``length``, ``__len__``, ``__keys__``), which are skipped.

LSUN Bedroom: bedroom_train_lmdb/ (3,033,042 pictures, 43 GB) trains, bedroom_val_lmdb/ (300)
tests. ``lmdb:PATH`` holds out a seeded, stable ``test_fraction`` of its keys (by a hash of
the seed and the key, so the split does not depend on the order or number of keys); its test split is the
MAX_TEST_PICTURES of them that rank lowest, so that a run of a huge LMDB does not decode a tenth of it.
A data file shorter than its pages (a truncated copy) is refused before it is mapped.
"""

from __future__ import annotations

import os
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
MAX_TEST_PICTURES = 10_000  # as many as MNIST's test split


class LmdbImages:
    """A read-only LMDB of encoded pictures: its size and its (name, bytes) pairs in key order."""

    def __init__(self, path: Path):
        import lmdb

        if not path.exists():
            raise GonError(f"no LMDB at {path}")
        try:
            self.env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, subdir=path.is_dir())
        except lmdb.Error as err:
            raise GonError(f"cannot open LMDB {path}: {str(err).splitlines()[0]}") from err
        try:
            stat = self.env.stat()  # a file that is not an LMDB fails here
            check_length(path, (self.env.info()["last_pgno"] + 1) * stat["psize"])
            check_tree(path, stat["psize"])
        except lmdb.Error as err:
            self.env.close()
            raise GonError(f"cannot open LMDB {path}: {str(err).splitlines()[0]}") from err
        except GonError:
            self.env.close()  # an environment left open would be opened twice by the next attempt: undefined
            raise
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
                    name = f"{self.path}:{key.decode('utf-8', 'replace')}"
                    value = txn.get(key)
                    if value is None:  # listed by the cursor but not found: a damaged index
                        raise GonError(f"cannot read LMDB {self.path}: key {name} is listed but has no value")
                    yield name, value
        except lmdb.Error as err:
            raise GonError(f"cannot read LMDB {self.path}: {str(err).splitlines()[0]}") from err

    def close(self) -> None:
        self.env.close()


def check_length(path: Path, needed: int) -> None:
    """An LMDB is read through a memory map of its data file: a page past the file's end (a truncated copy) would
    kill the process with SIGBUS, so a file shorter than the pages its meta page counts is refused first."""
    data = path / "data.mdb" if path.is_dir() else path
    length = data.stat().st_size
    if length < needed:
        raise GonError(
            f"LMDB {data} is truncated: it holds {length:,} bytes but its pages need {needed:,} (an interrupted copy?)"
        )


P_BRANCH, P_LEAF, P_META = 0x01, 0x02, 0x08


def check_tree(path: Path, page_size: int) -> None:
    """Walk the main B-tree's branch pages before liblmdb does: it trusts them and aborts the process (an assertion)
    on a child that is not the page it expects. Every branch node must point inside the file at a page of the right
    kind (branches above, leaves at the bottom). Reads the branch pages and the leaves' headers only."""
    data = path / "data.mdb" if path.is_dir() else path
    with open(data, "rb") as f:
        fd = f.fileno()
        pages = os.fstat(fd).st_size // page_size

        def page(number: int) -> bytes:
            return os.pread(fd, page_size, number * page_size)

        metas = [page(0), page(1)]
        meta = max(metas, key=lambda m: int.from_bytes(m[144:152], "little"))  # the newer transaction
        depth, root = int.from_bytes(meta[94:96], "little"), int.from_bytes(meta[128:136], "little")
        if root == 2**64 - 1:  # an empty database
            return
        stack, seen = [(root, depth)], set()
        while stack:
            number, level = stack.pop()
            if not 2 <= number < pages or number in seen or level < 1:
                raise GonError(f"LMDB {data} is damaged: its index points at page {number} ({pages} pages)")
            seen.add(number)
            head = page(number) if level > 1 else os.pread(fd, 16, number * page_size)
            flags, lower, upper = (int.from_bytes(head[at : at + 2], "little") for at in (10, 12, 14))
            if (
                flags & (P_BRANCH if level > 1 else P_LEAF) == 0
                or flags & P_META
                or not 16 <= lower <= upper <= page_size
            ):
                raise GonError(f"LMDB {data} is damaged: page {number} is not the index page it should be")
            if level == 1:
                continue
            for at in range(16, lower, 2):
                node = int.from_bytes(head[at : at + 2], "little")
                if not upper <= node <= page_size - 8:
                    raise GonError(f"LMDB {data} is damaged: page {number} has a node outside it")
                stack.append((int.from_bytes(head[node : node + 6], "little"), level - 1))


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
        test = held_out(keys, test_fraction, seed, keep=MAX_TEST_PICTURES if split == "test" else None)
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
