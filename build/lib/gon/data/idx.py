"""IDX files (the MNIST format) and the two datasets stored in it: MNIST and Fashion-MNIST."""

from __future__ import annotations

import contextlib
import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from gon.core.errors import GonError
from gon.core.validate import check_memory
from gon.data.download import Source, chosen_arrays
from gon.data.subsets import Choice

MAX_IDX_BYTES = 1 << 32  # no real IDX file is this big; a header claiming more is corrupt or hostile

IDX_FILES = {  # split -> (images, labels), without the optional .gz
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@contextlib.contextmanager
def open_maybe_gzipped(path: Path):
    """Yield (the file, a stream of its content): gunzipped when the content is gzip, whatever the name."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        yield raw, (gzip.GzipFile(fileobj=raw) if gzipped else raw)


def read_idx(path: str | Path) -> np.ndarray:
    """Decode an IDX file (gzipped or raw, detected by content) into a native-endian array.

    The header is checked against the payload before anything big is allocated, and the gzip
    stream is read in bounded chunks, so a header claiming billions of items costs nothing.
    Bytes after the declared payload are rejected: they mean the file is not what it says.
    """
    path = Path(path)
    try:
        with open_maybe_gzipped(path) as (raw, stream):
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
            check_memory(2 * nbytes, f"IDX file {path} (shape {shape})", "is it the file it claims to be?")
            if stream is raw:
                actual = os.fstat(raw.fileno()).st_size - 4 - 4 * ndim
                if actual != nbytes:
                    raise GonError(
                        f"{path}: IDX header declares shape {shape} ({nbytes} bytes) "
                        f"but the file holds {actual} bytes of data"
                    )
            array = read_payload(stream, dtype, shape, path, "IDX")
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise GonError(f"cannot read IDX file {path}: {err}") from err
    return array


def read_payload(stream, dtype: np.dtype, shape: tuple[int, ...], path: Path, kind: str) -> np.ndarray:
    """The array a checked header declared, read in bounded chunks; a short or overlong payload is a GonError."""
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    payload = bytearray()
    while len(payload) < nbytes and (chunk := stream.read(min(1 << 24, nbytes - len(payload)))):
        payload += chunk
    if len(payload) < nbytes:
        raise GonError(f"{path}: truncated {kind} file (shape {shape} needs {nbytes} bytes, found {len(payload)})")
    if stream.read(1):
        raise GonError(f"{path}: unexpected bytes after the {kind} data declared by the header {shape}")
    return np.frombuffer(payload, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def _idx_path(root: Path, stem: str) -> Path:
    return root / stem if (root / stem).is_file() else root / f"{stem}.gz"


def read_idx_pair(root: Path, split: str, choice: Choice, size: int | None = None):
    """One split of an MNIST-like dataset -> (uint8 images [N, 1, 28, 28], labels [N], index); native size."""
    image_path, label_path = (_idx_path(root, s) for s in IDX_FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise GonError(f"{image_path}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise GonError(f"{label_path}: expected labels [N], got shape {labels.shape}")
    if len(images) != len(labels):
        raise GonError(f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels")
    return chosen_arrays(images[:, None], labels, choice)  # [N, 1, H, W], [N], [N]


_FILES = [(f, f + ".gz") for split in ("train", "test") for f in IDX_FILES[split]]
_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

FASHION_MNIST = Source(
    name="fashion-mnist",
    classes=["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    files=_FILES,
    read=read_idx_pair,
    how_to_get="install it with `apt-get install dataset-fashion-mnist` or pass --data-dir DIR "
    "holding train-images-idx3-ubyte.gz and the three other IDX files",
    url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    checksums={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12e480ee83cd310",
    },
)
MNIST = Source(
    name="mnist",
    classes=[str(d) for d in range(10)],
    files=_FILES,
    read=read_idx_pair,
    how_to_get=f"download the four IDX files from {_MNIST_URL} and pass --data-dir DIR",
    url=_MNIST_URL,
    checksums={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
)
