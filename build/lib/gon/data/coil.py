"""COIL-20 (processed): 20 objects x 72 poses, 128x128 grayscale PNGs, read from the zip or its folder.

coil-20-proc.zip (https://www.cs.columbia.edu/CAVE/software/softlib/coil-20.php) holds
coil-20-proc/obj{1..20}__{0..71}.png. There is no official split: gon holds out every 8th pose of
each object (poses 0, 8, ..., 64: 180 test images, 1,260 training images). Columbia publishes no
checksum, so a download is verified by its content (all 1,440 pictures present) instead.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from gon.core.errors import GonError
from gon.data.download import Source, download
from gon.data.encoded import ZIP_ERRORS, decode
from gon.data.subsets import Choice

_ZIP, _FOLDER = "coil-20-proc.zip", "coil-20-proc"
_URL = "https://www.cs.columbia.edu/CAVE/databases/SLAM_coil-20_coil-100/coil-20/coil-20-proc.zip"
OBJECTS, POSES, TEST_EVERY = 20, 72, 8
NATIVE = 128


def coil_names(split: str) -> list[tuple[int, str]]:
    """(label, file name) of a split, objects in order then poses."""
    return [
        (obj - 1, f"obj{obj}__{pose}.png")
        for obj in range(1, OBJECTS + 1)
        for pose in range(POSES)
        if (pose % TEST_EVERY == 0) == (split == "test")
    ]


def _check_zip(path: Path) -> None:
    """A download's content check: every picture is in the zip (ValueError otherwise)."""
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    missing = [n for split in ("train", "test") for _, n in coil_names(split) if f"{_FOLDER}/{n}" not in names]
    if missing:
        raise ValueError(f"{path.name} lacks {len(missing)} of the COIL-20 pictures, e.g. {missing[0]}")


def read_coil20(root: Path, split: str, choice: Choice, size: int | None = None):
    """One split of COIL-20 -> (uint8 images [N, 1, 128, 128], object labels [N], index); native size."""
    names = coil_names(split)
    index = choice(len(names), torch.tensor([label for label, _ in names]))
    chosen = [names[i] for i in index.tolist()]  # only these are decoded
    labels = np.array([label for label, _ in chosen], np.int64)
    if (root / _ZIP).is_file():
        try:
            with zipfile.ZipFile(root / _ZIP) as archive:
                members = {info.filename: info for info in archive.infolist()}
                images = []
                for _, name in chosen:
                    info = members.get(f"{_FOLDER}/{name}")
                    if info is None:
                        raise GonError(f"{root / _ZIP}: no {_FOLDER}/{name}; is this coil-20-proc.zip?")
                    images.append(decode(_read_member(archive, info, root / _ZIP), NATIVE, False, f"{_ZIP}:{name}"))
        except ZIP_ERRORS as err:
            raise GonError(f"cannot read {root / _ZIP}: {err}") from err
        return np.stack(images), labels, index
    folder = root / _FOLDER if (root / _FOLDER).is_dir() else root
    missing = [n for _, n in chosen if not (folder / n).is_file()]
    if missing:
        raise GonError(f"{folder}: no {missing[0]} (and {len(missing) - 1} more COIL-20 pictures missing)")
    return np.stack([decode(folder / n, NATIVE, False, str(folder / n)) for _, n in chosen]), labels, index


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    if info.file_size > 1 << 20:  # a 128x128 PNG is ~10 KB; refuse zip bombs before inflating
        raise GonError(f"{path}: {info.filename} claims {info.file_size} bytes, not a COIL-20 picture")
    return archive.read(info)


def _fetch_coil20(source: Source, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    download(source.url, cache / _ZIP, None, verify=_check_zip)
    return cache


COIL20 = Source(
    name="coil20",
    classes=[f"object {i}" for i in range(1, OBJECTS + 1)],
    files=[(_ZIP, _FOLDER, "obj1__0.png")],
    read=read_coil20,
    how_to_get=f"download {_URL} (keep the zip or extract it) and pass --data-dir DIR",
    url=_URL,
    fetch=_fetch_coil20,
)
