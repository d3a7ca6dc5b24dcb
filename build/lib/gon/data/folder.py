"""``folder:PATH``: every PNG/JPEG/BMP below a directory, classes from subfolders, a seeded, stable test split."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from gon.core.errors import GonError
from gon.data.base import ImageData
from gon.data.splits import held_out_split
from gon.data.subsets import Choice

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})  # Pillow modes without colour


def load_folder(spec: str, split: str, size: int, test_fraction: float, seed: int, choice: Choice) -> ImageData:
    """Recursively load PNG/JPEG/BMP files, like torchvision's ImageFolder: when every image sits in a
    subfolder, the first subfolder of its path is its class (sorted names -> labels 0, 1, ...); a flat
    folder has no labels. The test split is a seeded, stable subset of each class's files; ``choice`` picks
    the split's files, stratified by class (only those are decoded)."""
    root = Path(spec[len("folder:") :]).expanduser()
    if not spec[len("folder:") :] or not root.is_dir():
        raise GonError(f"dataset {spec}: no such directory {root}")
    paths = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not paths:
        raise GonError(f"dataset {spec}: no PNG/JPEG/BMP images under {root}")
    classes = sorted({p.split("/")[0] for p in paths}) if all("/" in p for p in paths) else None
    groups = {c: [p for p in paths if p.split("/")[0] == c] for c in classes} if classes else {None: paths}
    in_split = [p for group in groups.values() for p in _split_of(group, root, split, test_fraction, seed, spec)]
    if not in_split:
        raise GonError(f"dataset {spec}: only {len(paths)} image(s), too few for a {split} split")
    labels = torch.tensor([classes.index(p.split("/")[0]) for p in in_split]) if classes else None  # [N]
    files = ImageData(torch.empty(len(in_split), 0), labels, spec, classes, in_split)
    data = files.select(choice(len(files), labels))  # images are decoded below, for the chosen files only
    # Channels are decided over the whole folder (headers only), so train and test agree.
    rgb = any(open_image(root / p, lambda im: im.mode not in GRAY_MODES) for p in paths)
    data.images = torch.from_numpy(
        np.stack([open_image(root / p, lambda im: _decode(im, rgb, size)) for p in data.paths])
    )
    return data  # images [N, C, size, size]


def _split_of(paths: list[str], root: Path, split: str, test_fraction: float, seed: int, spec: str) -> list[str]:
    """The files of one class (or of a flat folder) in ``split``: :func:`held_out_split` within the class, so the
    test split holds every class in proportion; a one-file class trains."""
    if len(paths) < 2:
        return paths if split == "train" else []
    chosen = held_out_split([root / p for p in paths], root, split, test_fraction, seed, spec)
    return [p.relative_to(root).as_posix() for p in chosen]


def open_image(path, use, name: str | None = None):
    """Open ``path`` (a file name or a binary file object) with Pillow and apply ``use``.

    Any failure, decompression bombs included, is a GonError naming ``name`` (default: the path).
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return use(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        why = str(err).replace(f" {path!r}", "").replace(repr(path), "the data")  # Pillow names a BytesIO by its repr
        raise GonError(f"cannot read image {name or path}: {why or type(err).__name__}") from err


def deep_gray(im) -> np.ndarray | None:
    """A 16/32-bit or float grayscale picture as float32 in [0, 1], None for 8-bit modes: Pillow's
    ``convert("L")`` clips such values at 255, so a 16-bit PNG would come out nearly white."""
    if not (im.mode.startswith("I") or im.mode == "F"):
        return None
    values = np.asarray(im, dtype=np.float32)
    if not np.isfinite(values).all():  # a float TIFF of NaN would train on NaN, blamed on the learning rate
        raise ValueError("it holds NaN or infinite pixel values")
    return np.clip(values / (65535.0 if im.mode.startswith("I") else 1.0), 0.0, 1.0)


def _decode(im, rgb: bool, size: int) -> np.ndarray:
    """Pillow image -> float32 [C, size, size] in [0, 1]; alpha is dropped, palettes expanded."""
    from PIL import Image

    im.load()  # decode now so truncated files fail here
    deep = deep_gray(im)
    if deep is not None:  # 16/32-bit grayscale: resized in float, keeping its precision
        out = np.asarray(Image.fromarray(deep).resize((size, size), Image.Resampling.BICUBIC))
        out = np.clip(out, 0.0, 1.0)[None]  # [1, size, size]
        return np.repeat(out, 3, axis=0) if rgb else out
    im = im.convert("RGB" if rgb else "L").resize((size, size), Image.Resampling.BICUBIC)
    out = np.asarray(im, dtype=np.float32) / 255.0  # [size, size, 3] or [size, size]
    return out.transpose(2, 0, 1) if rgb else out[None]
