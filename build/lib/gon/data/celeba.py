"""CelebA (aligned and cropped faces), the paper's 64x64 set: img_align_celeba + list_eval_partition.txt.

The JPEGs (178x218) are read from the img_align_celeba/ folder or straight from
img_align_celeba.zip; list_eval_partition.txt ("000001.jpg 0" per line; 0 train, 1 validation,
2 test) gives the split. Each face is centre-cropped to 148x148 and resized, the usual CelebA-64
preprocessing. The files sit behind the authors' Google Drive, so gon cannot download them.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from gon.core.errors import GonError
from gon.data.download import Source
from gon.data.encoded import MAX_ENCODED_BYTES, ZIP_ERRORS, decode_all
from gon.data.subsets import Choice

_FOLDER, _ZIP, _PARTITION = "img_align_celeba", "img_align_celeba.zip", "list_eval_partition.txt"
_SPLITS = {"train": "0", "test": "2"}
_LINE = re.compile(r"(\d{6}\.jpg)\s+([012])")
CROP = 148
MAX_PARTITION_BYTES = 16 << 20  # the real file is 4 MB


def read_partition(path: Path, split: str) -> list[str]:
    """The picture names of ``split`` listed in list_eval_partition.txt, in file order."""
    try:
        if path.stat().st_size > MAX_PARTITION_BYTES:
            raise GonError(f"{path}: {path.stat().st_size} bytes, not CelebA's list_eval_partition.txt")
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise GonError(f"cannot read {path}: {err}") from err
    names = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        match = _LINE.fullmatch(line.strip())
        if match is None:
            raise GonError(f"{path}:{number}: expected 'NNNNNN.jpg 0|1|2', got {line[:60]!r}")
        if match[2] == _SPLITS[split]:
            names.append(match[1])
    return names


def read_celeba(root: Path, split: str, choice: Choice, size: int | None = None):
    """One split of CelebA -> (uint8 images [N, 3, size, size], no labels, index); only the chosen are decoded."""
    names = read_partition(root / _PARTITION, split)
    if not names:
        raise GonError(f"{root / _PARTITION} lists no {split} pictures")
    index = choice(len(names))
    names = [names[i] for i in index.tolist()]
    size = size or 64
    if (root / _FOLDER).is_dir():
        folder = root / _FOLDER
        return (
            decode_all(((str(folder / n), folder / n) for n in names), len(names), size, True, "celeba", CROP),
            None,
            index,
        )
    try:
        with zipfile.ZipFile(root / _ZIP) as archive:
            members = {info.filename: info for info in archive.infolist()}

            def items():
                for n in names:
                    info = members.get(f"{_FOLDER}/{n}")
                    if info is None:
                        raise GonError(f"{root / _ZIP}: no {_FOLDER}/{n}; is this img_align_celeba.zip?")
                    if info.file_size > MAX_ENCODED_BYTES:
                        raise GonError(f"{root / _ZIP}: {info.filename} claims {info.file_size} bytes")
                    yield f"{_ZIP}:{n}", archive.read(info)

            return decode_all(items(), len(names), size, True, "celeba", CROP), None, index
    except ZIP_ERRORS as err:
        raise GonError(f"cannot read {root / _ZIP}: {err}") from err


CELEBA = Source(
    name="celeba",
    classes=[],
    files=[(_FOLDER, _ZIP), (_PARTITION,)],
    read=read_celeba,
    how_to_get="download img_align_celeba.zip and list_eval_partition.txt from "
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive) and pass --data-dir DIR",
    downloadable=False,
    native_size=64,
)
