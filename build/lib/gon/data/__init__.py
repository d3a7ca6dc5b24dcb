"""Image datasets for GONs: the paper's named datasets and folders of images.

Every loader returns an :class:`ImageData`: one float32 tensor ``[N, C, H, W]`` in ``[0, 1]``,
already at the requested size, so training indexes memory instead of decoding files per item.
Raw files are looked for locally first (``data_dir``, the system dataset directories, the cache)
and downloaded into the cache only as a last resort (:mod:`gon.data.download`); problems the user
can fix raise :class:`~gon.core.errors.GonError` with a one-line message that names the file, option or
dataset. One module per file format: :mod:`~gon.data.idx` (MNIST, Fashion-MNIST),
:mod:`~gon.data.norb` (SmallNORB), :mod:`~gon.data.coil` (COIL-20), :mod:`~gon.data.cifar`,
:mod:`~gon.data.celeba`, :mod:`~gon.data.lsun` (LSUN Bedroom, ``lmdb:PATH``), :mod:`~gon.data.folder`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gon.core.errors import GonError
from gon.data.audio import DEFAULT_AUDIO_SECONDS, DEFAULT_SAMPLE_RATE, load_audio
from gon.data.base import ImageData, ImageDataset, fit
from gon.data.celeba import CELEBA
from gon.data.cifar import CIFAR10, read_cifar_batch
from gon.data.coil import COIL20
from gon.data.download import Source, find_or_download
from gon.data.folder import load_folder
from gon.data.idx import FASHION_MNIST, MNIST, read_idx
from gon.data.lsun import LSUN_BEDROOM, load_lmdb
from gon.data.norb import SMALLNORB, read_norb
from gon.data.subsets import Choice
from gon.data.volume import load_volumes

SOURCES: dict[str, Source] = {
    s.name: s for s in (FASHION_MNIST, MNIST, SMALLNORB, COIL20, CIFAR10, CELEBA, LSUN_BEDROOM)
}
DATASET_NAMES = tuple(SOURCES)  # plus "folder:PATH", "lmdb:PATH", "audio:PATH" and "volume:PATH"

__all__ = [
    "DATASET_NAMES",
    "DEFAULT_AUDIO_SECONDS",
    "DEFAULT_SAMPLE_RATE",
    "SOURCES",
    "ImageData",
    "ImageDataset",
    "Source",
    "find_or_download",
    "load_dataset",
    "read_cifar_batch",
    "read_idx",
    "read_norb",
    "same_dataset",
]

PATH_KINDS = ("folder:", "lmdb:", "audio:", "volume:")


def same_dataset(a: str | None, b: str | None) -> bool:
    """Whether two dataset names mean the same data: a path compared resolved (``folder:x/`` is ``folder:./x``), a
    name as :func:`load_dataset` reads it (``Fashion-MNIST`` is ``fashion-mnist``)."""
    return a is not None and b is not None and _identity(a) == _identity(b)


def _identity(name: str) -> tuple[str, str]:
    for kind in PATH_KINDS:
        if name.startswith(kind):
            return kind, str(Path(name[len(kind) :]).expanduser().resolve())
    return "", name.strip().lower()


def load_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    resize: str = "resize",
    test_fraction: float = 0.1,
    seed: int = 0,
    download: bool = True,
    limit: int | None = None,
    limit_seed: int | None = None,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    audio_seconds: float = DEFAULT_AUDIO_SECONDS,
) -> ImageData:
    """Load one split of a named dataset (or ``folder:PATH``) as an in-memory :class:`ImageData`.

    ``image_size`` None keeps the native size (28 for MNIST-likes, 96 for SmallNORB, 128 for COIL-20,
    32 for CIFAR-10, folders and LMDBs) or the paper's (64 for CelebA, 128 for LSUN Bedroom).
    ``resize`` is "resize" (bilinear, antialiased when shrinking) or "pad" (zero-pad centred,
    growing only); folders are always resized with Pillow. ``test_fraction`` and ``seed`` pick a
    folder's held-out test images; ``limit`` keeps N images of the split drawn at random with
    ``limit_seed`` (default: ``seed``), stratified by class where there are classes (:class:`gon.data.subsets.Choice`),
    for every kind of dataset; readers that can count first (file names, keys) decode only the chosen images.
    ``audio:PATH`` (WAV files at ``sample_rate``, ``audio_seconds`` long: [N, 1, L], :mod:`gon.data.audio`) and
    ``volume:PATH`` (.npy grids, resized to ``image_size``^3 when given: [N, 1, D, H, W], :mod:`gon.data.volume`)
    are signals for implicit GONs of other dimensions.
    """
    if split not in ("train", "test"):
        raise GonError(f"split must be 'train' or 'test', not {split!r}")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0):
        raise GonError(f"image_size must be a positive integer, not {image_size!r}")
    if resize not in ("resize", "pad"):
        raise GonError(f"resize must be 'resize' or 'pad', not {resize!r}")
    if not 0.0 < test_fraction < 1.0:
        raise GonError(f"test_fraction must be strictly between 0 and 1, not {test_fraction!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise GonError(f"limit must be a positive integer, not {limit!r}")

    choice = Choice(limit, seed if limit_seed is None else limit_seed)
    if name.startswith("audio:"):
        return load_audio(name, split, sample_rate, audio_seconds, test_fraction, seed, choice)
    if name.startswith("volume:"):
        return load_volumes(name, split, image_size, test_fraction, seed, choice)
    if name.startswith("folder:"):
        return load_folder(name, split, image_size or 32, test_fraction, seed, choice)
    if name.startswith("lmdb:"):
        return load_lmdb(name, split, image_size or 32, test_fraction, seed, choice)
    key = name.strip().lower()
    if key not in SOURCES:
        raise GonError(
            f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}, "
            "folder:PATH, lmdb:PATH, audio:PATH or volume:PATH"
        )
    source = SOURCES[key]
    images, labels, keep = source.read(
        find_or_download(source, data_dir, download), split, choice, image_size or source.native_size
    )
    if (
        labels is not None
        and source.classes
        and len(labels)
        and not 0 <= labels.min() <= labels.max() < len(source.classes)
    ):
        raise GonError(
            f"{key}: labels range from {labels.min()} to {labels.max()}, but {key} has {len(source.classes)} classes "
            f"(0 to {len(source.classes) - 1}): the label file is damaged or of another dataset"
        )
    labels = None if labels is None else torch.from_numpy(labels.astype(np.int64))
    x = torch.from_numpy(images)  # uint8 [N, C, h, w]; chosen before resizing: only these grow
    return ImageData(
        fit(x, image_size or x.shape[-1], resize, name=key),
        labels,
        key,
        list(source.classes) or None,
        index=keep,
    )
