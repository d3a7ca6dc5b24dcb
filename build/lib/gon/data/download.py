"""Finding a named dataset's raw files locally, or downloading them, checksummed, into the cache.

Offline first: ``--data-dir``, then the system dataset directories, then the cache; the network
is the last resort, and when it fails the one-line error lists every place looked and how to get
the files by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.request import urlopen  # module attribute, so tests can monkeypatch gon.data.download.urlopen

import numpy as np
import torch

from gon.core.errors import GonError
from gon.data.subsets import Choice
from gon.storage.cache import cache_dir  # where a dataset is downloaded to: cache_dir(NAME)

# Searched (as DIR/<name>) after data_dir and before the cache; tests replace it to simulate "not installed".
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)
DOWNLOAD_TIMEOUT_S = 15

# (root, split, choice, size) -> (uint8 images [N, C, H, W], labels [N] or None, int64 index [N] of each image in
# its split); size None: the native size. ``choice`` (a seeded, stratified :class:`gon.data.subsets.Choice`) is applied
# before decoding where the reader can count first (file names, keys). Readers of fixed-size arrays return their
# native size (load_dataset resizes them); readers of encoded images decode straight to ``size`` so that big images
# never sit in memory.
Reader = Callable[[Path, str, Choice, "int | None"], "tuple[np.ndarray, np.ndarray | None, torch.Tensor]"]


def chosen_arrays(
    images: np.ndarray, labels: np.ndarray | None, choice: Choice
) -> tuple[np.ndarray, np.ndarray | None, torch.Tensor]:
    """``choice`` applied to a split read whole (stratified by ``labels`` when there are labels)."""
    keep = choice(len(images), None if labels is None else torch.from_numpy(labels.astype(np.int64)))
    return images[keep.numpy()], None if labels is None else labels[keep.numpy()], keep


@dataclass
class Source:
    """Everything gon knows about one named dataset: its files, where they come from, how to read them."""

    name: str
    classes: list[str]
    files: list[tuple[str, ...]]  # each file or folder a complete directory holds, as alternative names
    read: Reader
    how_to_get: str  # the end of the "not found" error: what the user can do
    url: str = ""  # a directory URL (files appended) or one archive's URL
    checksums: dict[str, str] = field(default_factory=dict)  # MD5 of each file as published
    subdirs: tuple[str, ...] = ()  # also look in these below each place (an archive's top folder)
    fetch: Callable[[Source, Path], Path] | None = None  # download into the cache; None: download_files
    downloadable: bool = True  # False: the files are behind a sign-up page or too big; only how_to_get
    native_size: int | None = None  # the size load_dataset asks a reader for when the user gives none

    def complete(self, directory: Path) -> bool:
        """Whether ``directory`` holds every raw file (under any of its alternative names)."""
        return all(any((directory / name).exists() for name in names) for names in self.files)


def find_or_download(source: Source, data_dir: str | Path | None, download: bool) -> Path:
    """Return the directory holding ``source``'s raw files, downloading them into the cache if needed.

    Looks in data_dir, data_dir/<name>, each SYSTEM_DATA_DIRS/<name>, then the cache
    ($GON_CACHE/<name> or ~/.cache/gon/<name>), and in the source's subdirs of each.
    Raises one GonError listing every place looked when nothing works.
    """
    name = source.name
    bases = [Path(data_dir).expanduser(), Path(data_dir).expanduser() / name] if data_dir is not None else []
    bases += [d / name for d in SYSTEM_DATA_DIRS] + [cache_dir(name)]
    places = [p for b in bases for p in (b, *(b / s for s in source.subdirs))]
    for place in places:
        if source.complete(place):
            return place
    looked = "; looked in " + ", ".join(str(p) for p in places)
    if not source.downloadable:
        raise GonError(f"{name} not found{looked}; gon cannot download it; {source.how_to_get}")
    if not download:
        raise GonError(f"{name} not found{looked}; downloading is disabled; {source.how_to_get}")
    cache = cache_dir(name)
    created = [p for p in (cache.parent, cache) if not p.exists()]
    try:
        return (source.fetch or download_files)(source, cache)
    except (OSError, ValueError, tarfile.TarError, zipfile.BadZipFile) as err:  # URLError, timeouts, bad MD5
        for folder in reversed(created):  # leave no empty cache folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise GonError(f"{name} not found{looked}; download failed ({err}); {source.how_to_get}") from err


def download_files(source: Source, cache: Path) -> Path:
    """Download each missing file (its first name) from the source's URL directory into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    for names in source.files:
        if not any((cache / n).is_file() for n in names):
            download(source.url + names[-1], cache / names[-1], source.checksums.get(names[-1]))
    return cache


def download(url: str, dest: Path, md5: str | None, verify: Callable[[Path], None] | None = None) -> None:
    """Stream ``url`` into a temp file beside ``dest``, check it, then atomically rename it.

    The check is the published MD5 when there is one; ``verify(path)`` (raising ValueError) checks
    the content of files whose publisher gives no checksum.
    """
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if md5 is not None and digest.hexdigest() != md5:
            raise ValueError(f"{url} has MD5 {digest.hexdigest()}, expected {md5}")
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
