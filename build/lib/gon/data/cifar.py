"""CIFAR-10's python batches: a restricted unpickler, and extracting only the batches from the archive."""

from __future__ import annotations

import os
import pickle
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from gon.core.errors import GonError
from gon.data.download import Source, chosen_arrays, download
from gon.data.subsets import Choice

CIFAR_DIR = "cifar-10-batches-py"
CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_ARCHIVE = "cifar-10-python.tar.gz"
_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only; anything else could run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),  # protocol 5
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at protocol 2
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> (uint8 images [n, 3, 32, 32], int64 labels [n])."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = _RestrictedUnpickler(f, encoding="bytes").load()
    except Exception as err:  # hostile or corrupt pickles fail in many ways
        reason = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)  # one line
        raise GonError(f"cannot read CIFAR-10 batch {path}: {reason}") from err
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise GonError(f"{path}: not a CIFAR-10 batch (expected b'data' as uint8 [n, 3072])")
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()  # Python ints, so the check below sees their true values
    if not isinstance(labels, (list, tuple)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(_CLASSES) for v in labels
    ):
        raise GonError(f"{path}: CIFAR-10 labels must be a list of class numbers 0 to 9")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),):
        raise GonError(f"{path} holds {len(data)} images but {labels.size} labels")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar(root: Path, split: str, choice: Choice, size: int | None = None):
    """One split of CIFAR-10 -> (uint8 images [N, 3, 32, 32], labels [N], index); always native size."""
    batches = [read_cifar_batch(root / f) for f in CIFAR_FILES[split]]
    return chosen_arrays(np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches]), choice)


def _fetch_cifar(source: Source, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / _ARCHIVE
    if not archive.is_file():
        download(source.url, archive, source.checksums[_ARCHIVE])
    _extract_cifar(archive, cache / CIFAR_DIR, source)
    archive.unlink()
    return cache / CIFAR_DIR


def _extract_cifar(archive: Path, target: Path, source: Source) -> None:
    """Extract only the regular files directly under cifar-10-batches-py/: no links, no traversal."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".cifar-extract."))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if member.isfile() and len(parts) == 2 and parts[0] == CIFAR_DIR and parts[1] not in ("", ".", ".."):
                    with tar.extractfile(member) as src, open(staging / parts[1], "wb") as dst:
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
        if not source.complete(staging):
            raise ValueError(f"{archive} does not contain the CIFAR-10 batches")
        os.replace(staging, target)
    except BaseException:
        for f in staging.glob("*"):
            f.unlink()
        staging.rmdir()
        raise


CIFAR10 = Source(
    name="cifar10",
    classes=_CLASSES,
    files=[(f,) for split in ("train", "test") for f in CIFAR_FILES[split]],
    read=read_cifar,
    how_to_get="download and extract https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and pass --data-dir DIR",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    checksums={_ARCHIVE: "c58f30108f718f92721af3b95e74349a"},
    subdirs=(CIFAR_DIR,),
    fetch=_fetch_cifar,
)
