"""Image datasets for GONs: Fashion-MNIST, MNIST, CIFAR-10 and folders of images.

Every loader returns an :class:`ImageData`: one float32 tensor ``[N, C, H, W]`` in ``[0, 1]``,
already at the requested size, so training indexes memory instead of decoding files per item.
Raw files are looked for locally first (``data_dir``, the system dataset directories, the cache)
and downloaded into the cache only as a last resort; problems the user can fix raise
:class:`~gon.errors.GonError` with a one-line message that names the file, option or dataset.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import tarfile
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.request import urlopen  # module attribute, so tests can monkeypatch gon.data.urlopen

import numpy as np
import torch
import torch.nn.functional as F

from gon.errors import GonError

DATASET_NAMES = ("fashion-mnist", "mnist", "cifar10")  # plus "folder:PATH"

# Searched (as DIR/<name>) after data_dir and before the cache; tests replace it to simulate "not installed".
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)
DOWNLOAD_TIMEOUT_S = 15
MAX_IDX_BYTES = 1 << 32  # no real IDX file is this big; a header claiming more is corrupt or hostile

_IDX_FILES = {  # split -> (images, labels), without the optional .gz
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
URLS = {
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
}
# MD5 of the files as published (downloads are checked against these; local files are only parsed).
CHECKSUMS = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12e480ee83cd310",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "cifar10": {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
}
CLASSES = {
    "fashion-mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "mnist": [str(d) for d in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_HOW_TO_GET = {
    "fashion-mnist": "install it with `apt-get install dataset-fashion-mnist` or pass --data-dir DIR "
    "holding train-images-idx3-ubyte.gz and the three other IDX files",
    "mnist": f"download the four IDX files from {URLS['mnist']} and pass --data-dir DIR",
    "cifar10": f"download and extract {URLS['cifar10']} and pass --data-dir DIR",
}


@dataclass
class ImageData:
    """A whole dataset split in memory, ready to index."""

    images: torch.Tensor  # float32 [N, C, H, W] in [0, 1]
    labels: torch.Tensor | None  # int64 [N]; None for folders
    name: str
    classes: list[str] | None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[2]


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


# ---------------------------------------------------------------------------------------------
# Entry point


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
) -> ImageData:
    """Load one split of a named dataset (or ``folder:PATH``) as an in-memory :class:`ImageData`.

    ``image_size`` None keeps the native size (28 for MNIST-likes, 32 for CIFAR-10 and folders).
    ``resize`` is "resize" (bilinear, antialiased when shrinking) or "pad" (zero-pad centred,
    growing only); folders are always resized with Pillow. ``test_fraction`` and ``seed`` pick a
    folder's held-out test images; ``limit`` keeps the first N images of the split.
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

    if name.startswith("folder:"):
        return _load_folder(name, split, image_size or 32, test_fraction, seed, limit)
    key = name.strip().lower()
    if key not in DATASET_NAMES:
        raise GonError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)} or folder:PATH")
    root = find_or_download(key, data_dir, download)
    images, labels = (_read_cifar if key == "cifar10" else _read_idx_pair)(root, split, limit)
    x = torch.from_numpy(images)  # uint8 [N, C, h, w]
    return ImageData(
        _fit(x, image_size or x.shape[-1], resize, name=key),
        torch.from_numpy(labels.astype(np.int64)),
        key,
        list(CLASSES[key]),
    )


def _fit(x: torch.Tensor, size: int, resize: str, *, name: str) -> torch.Tensor:
    """uint8 [N, C, h, w] -> float32 [N, C, size, size] in [0, 1]."""
    x = x.to(torch.float32).div_(255.0)
    h, w = x.shape[-2:]
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
    # the matrix. (A width of 1 would be simpler but hits a wrong antialias path in torch.)
    eye = torch.eye(src)[None, None]  # [1, 1, src, src]
    out = F.interpolate(eye, size=(dst, src), mode="bilinear", align_corners=False, antialias=dst < src)
    return out[0, 0]  # [dst, src]


# ---------------------------------------------------------------------------------------------
# Finding and downloading raw files


def _required(name: str) -> list[str]:
    """Raw file names (IDX ones without .gz) that make a dataset directory complete."""
    table = _CIFAR_FILES if name == "cifar10" else _IDX_FILES
    return [f for split in ("train", "test") for f in table[split]]


def _has_files(directory: Path, name: str) -> bool:
    """Whether ``directory`` holds every raw file of ``name`` (IDX files gzipped or not)."""
    if name == "cifar10":
        return all((directory / f).is_file() for f in _required(name))
    return all((directory / f).is_file() or (directory / f"{f}.gz").is_file() for f in _required(name))


def _cache_dir(name: str) -> Path:
    base = os.environ.get("GON_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "gon") / name


def find_or_download(name: str, data_dir: str | Path | None, download: bool) -> Path:
    """Return the directory holding ``name``'s raw files, downloading them into the cache if needed.

    Looks in data_dir, data_dir/<name>, each SYSTEM_DATA_DIRS/<name>, then the cache
    ($GON_CACHE/<name> or ~/.cache/gon/<name>); for CIFAR-10 also in a cifar-10-batches-py
    subdirectory of each. Raises one GonError listing every place looked when nothing works.
    """
    bases = [Path(data_dir).expanduser(), Path(data_dir).expanduser() / name] if data_dir is not None else []
    bases += [d / name for d in SYSTEM_DATA_DIRS] + [_cache_dir(name)]
    places = [p for b in bases for p in ([b, b / _CIFAR_DIR] if name == "cifar10" else [b])]
    for place in places:
        if _has_files(place, name):
            return place
    looked = "; looked in " + ", ".join(str(p) for p in places)
    if not download:
        raise GonError(f"{name} not found{looked}; downloading is disabled; {_HOW_TO_GET[name]}")
    try:
        return _download_dataset(name, _cache_dir(name))
    except (OSError, ValueError, tarfile.TarError) as err:  # URLError, timeouts, bad MD5, full disk
        raise GonError(f"{name} not found{looked}; download failed ({err}); {_HOW_TO_GET[name]}") from err


def _download_dataset(name: str, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        archive = cache / "cifar-10-python.tar.gz"
        if not archive.is_file():
            _download(URLS[name], archive, CHECKSUMS[name][archive.name])
        _extract_cifar(archive, cache / _CIFAR_DIR)
        archive.unlink()
        return cache / _CIFAR_DIR
    for f in _required(name):
        if not ((cache / f).is_file() or (cache / f"{f}.gz").is_file()):
            _download(URLS[name] + f + ".gz", cache / f"{f}.gz", CHECKSUMS[name].get(f + ".gz"))
    return cache


def _download(url: str, dest: Path, md5: str | None) -> None:
    """Stream ``url`` into a temp file beside ``dest``, check its MD5, then atomically rename it."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if md5 is not None and digest.hexdigest() != md5:
            raise ValueError(f"{url} has MD5 {digest.hexdigest()}, expected {md5}")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _extract_cifar(archive: Path, target: Path) -> None:
    """Extract only the regular files directly under cifar-10-batches-py/: no links, no traversal."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".cifar-extract."))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if member.isfile() and len(parts) == 2 and parts[0] == _CIFAR_DIR and parts[1] not in ("", ".", ".."):
                    with tar.extractfile(member) as src, open(staging / parts[1], "wb") as dst:
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
        if not _has_files(staging, "cifar10"):
            raise ValueError(f"{archive} does not contain the CIFAR-10 batches")
        os.replace(staging, target)
    except BaseException:
        for f in staging.glob("*"):
            f.unlink()
        staging.rmdir()
        raise


# ---------------------------------------------------------------------------------------------
# IDX (MNIST-style) files

_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Decode an IDX file (gzipped or raw, detected by content) into a native-endian array.

    The header is checked against the payload before anything big is allocated, and the gzip
    stream is read in bounded chunks, so a header claiming billions of items costs nothing.
    Bytes after the declared payload are rejected: they mean the file is not what it says.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
            header = stream.read(4)
            if len(header) < 4 or header[:2] != b"\0\0":
                raise GonError(f"{path}: not an IDX file (bad magic number)")
            dtype, ndim = _IDX_DTYPES.get(header[2]), header[3]
            if dtype is None:
                raise GonError(f"{path}: unsupported IDX data type code 0x{header[2]:02x}")
            if not 1 <= ndim <= 4:
                raise GonError(f"{path}: IDX files with {ndim} dimensions are not supported (1 to 4)")
            dims_raw = stream.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise GonError(f"{path}: truncated IDX header")
            shape = tuple(int.from_bytes(dims_raw[4 * i : 4 * i + 4], "big") for i in range(ndim))
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize  # Python ints: no overflow
            # (zero-sized dims included: numpy cannot even describe an empty 0 x 2^24 x 2^24 x 2^24 array)
            if max(nbytes, int(np.prod([d for d in shape if d], dtype=object)) * dtype.itemsize) > MAX_IDX_BYTES:
                raise GonError(f"{path}: IDX header declares shape {shape}, more data than any real dataset")
            if not gzipped:
                actual = os.fstat(raw.fileno()).st_size - 4 - 4 * ndim
                if actual != nbytes:
                    raise GonError(
                        f"{path}: IDX header declares shape {shape} ({nbytes} bytes) "
                        f"but the file holds {actual} bytes of data"
                    )
            payload = bytearray()
            while len(payload) < nbytes and (chunk := stream.read(min(1 << 24, nbytes - len(payload)))):
                payload += chunk
            if len(payload) < nbytes:
                raise GonError(f"{path}: truncated IDX file (shape {shape} needs {nbytes} bytes, found {len(payload)})")
            if stream.read(1):
                raise GonError(f"{path}: unexpected bytes after the IDX data declared by the header {shape}")
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise GonError(f"cannot read IDX file {path}: {err}") from err
    return np.frombuffer(payload, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def _idx_path(root: Path, stem: str) -> Path:
    return root / stem if (root / stem).is_file() else root / f"{stem}.gz"


def _read_idx_pair(root: Path, split: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    image_path, label_path = (_idx_path(root, s) for s in _IDX_FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise GonError(f"{image_path}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise GonError(f"{label_path}: expected labels [N], got shape {labels.shape}")
    if len(images) != len(labels):
        raise GonError(f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels")
    return images[:limit, None], labels[:limit]  # [N, 1, H, W], [N]


# ---------------------------------------------------------------------------------------------
# CIFAR-10 python batches


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
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(CLASSES["cifar10"]) for v in labels
    ):
        raise GonError(f"{path}: CIFAR-10 labels must be a list of class numbers 0 to 9")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),):
        raise GonError(f"{path} holds {len(data)} images but {labels.size} labels")
    return data.reshape(-1, 3, 32, 32), labels


def _read_cifar(root: Path, split: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    images, labels, count = [], [], 0
    for f in _CIFAR_FILES[split]:
        x, y = read_cifar_batch(root / f)
        images.append(x)
        labels.append(y)
        count += len(x)
        if limit is not None and count >= limit:
            break  # don't unpickle batches we'd throw away
    return np.concatenate(images)[:limit], np.concatenate(labels)[:limit]


# ---------------------------------------------------------------------------------------------
# Folders of images


def _load_folder(spec: str, split: str, size: int, test_fraction: float, seed: int, limit: int | None) -> ImageData:
    """Recursively load PNG/JPEG/BMP files; the test split is a seeded, stable subset of files."""
    root = Path(spec[len("folder:") :]).expanduser()
    if not spec[len("folder:") :] or not root.is_dir():
        raise GonError(f"dataset {spec}: no such directory {root}")
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise GonError(f"dataset {spec}: no PNG/JPEG/BMP images under {root}")
    # Each file's rank depends only on (seed, its relative path), so adding or removing files
    # moves few others between splits; the lowest-ranked ones are held out for testing.
    rank = sorted(
        range(len(files)),
        key=lambda i: hashlib.sha256(f"{seed}\0{files[i].relative_to(root).as_posix()}".encode()).digest(),
    )
    n_test = min(max(round(len(files) * test_fraction), 1), len(files) - 1)
    held_out = set(rank[:n_test])
    chosen = [f for i, f in enumerate(files) if (i in held_out) == (split == "test")][:limit]
    if not chosen:
        raise GonError(f"dataset {spec}: only {len(files)} image(s), too few for a {split} split")
    # Channels are decided over the whole folder (headers only), so train and test agree.
    rgb = any(_open_image(f, lambda im: im.mode not in _GRAY_MODES) for f in files)
    images = np.stack([_open_image(f, lambda im: _decode(im, rgb, size)) for f in chosen])
    return ImageData(torch.from_numpy(images), None, spec, None)  # [N, C, size, size]


def _open_image(path: Path, use):
    """Open ``path`` with Pillow and apply ``use``; any failure, decompression bombs included, is a GonError."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return use(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise GonError(f"cannot read image {path}: {err or type(err).__name__}") from err


def _decode(im, rgb: bool, size: int) -> np.ndarray:
    """Pillow image -> float32 [C, size, size] in [0, 1]; alpha is dropped, palettes expanded."""
    from PIL import Image

    im.load()  # decode now so truncated files fail here
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grayscale: keep precision
        arr = np.asarray(im, dtype=np.float32) / (65535.0 if im.mode.startswith("I") else 1.0)
        out = np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.BICUBIC))
        out = np.clip(out, 0.0, 1.0)[None]  # [1, size, size]
        return np.repeat(out, 3, axis=0) if rgb else out
    im = im.convert("RGB" if rgb else "L").resize((size, size), Image.Resampling.BICUBIC)
    out = np.asarray(im, dtype=np.float32) / 255.0  # [size, size, 3] or [size, size]
    return out.transpose(2, 0, 1) if rgb else out[None]
