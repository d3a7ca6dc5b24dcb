"""Fuzzing the dataset readers (IDX, SmallNORB matrices, CIFAR-10 batches, image folders) with hypothesis.

Random and mutated files (truncated, bit-flipped, wrong magic, wrong or giant declared sizes,
random bytes named .png, zero-byte files, images with huge declared dimensions) must give valid
data or a GonError: never another exception, never a hang, never a big allocation.

Each run tries the 10,900 inputs of COUNTS (every fuzz test counts the calls of its check and fails
when fewer ran than planned), derandomised so that every run tries the same ones. Every example runs under a
watchdog (a hang fails the test) and an address-space limit (a blow-up fails it as MemoryError).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import pickle
import resource
import signal
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from gon.core.errors import GonError
from gon.data import load_dataset, read_cifar_batch, read_idx, read_norb
from tests.helpers import GENERATED_CASES

HANG_SECONDS = 20  # one input taking this long is a hang, not slowness
MEMORY_HEADROOM = 1 << 30  # bytes of address space an input may add
COUNTS = {
    "idx": 3500,
    "idx_pair": 1000,
    "norb": 500,
    "cifar_bytes": 2000,
    "cifar_structure": 1000,
    "folder": 2500,
    "png_dims": 400,
}

_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@contextlib.contextmanager
def guarded():
    """A watchdog alarm and an address-space cap (current size + MEMORY_HEADROOM) around one input."""

    def hang(signum, frame):
        raise TimeoutError(f"one input ran for more than {HANG_SECONDS} s")

    vm = (
        int(
            next(
                line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmSize")
            ).split()[1]
        )
        * 1024
    )
    old_limit = resource.getrlimit(resource.RLIMIT_AS)
    old_handler = signal.signal(signal.SIGALRM, hang)
    resource.setrlimit(resource.RLIMIT_AS, (vm + MEMORY_HEADROOM, old_limit[1]))
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, old_limit)
        signal.signal(signal.SIGALRM, old_handler)


def fuzz(name: str, strategy, check) -> None:
    """Run ``check`` on COUNTS[name] derandomised examples of ``strategy``; assert they all ran."""
    calls = 0

    @settings(
        max_examples=COUNTS[name],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(example):
        nonlocal calls
        calls += 1
        GENERATED_CASES["data readers"] += 1
        with guarded():
            check(example)

    run()
    assert calls >= COUNTS[name], f"{name}: only {calls} of {COUNTS[name]} inputs were tried"


def data_or_gon_error(fn, *args, **kwargs):
    """fn's result, or None when it raised GonError; any other exception fails the test."""
    try:
        return fn(*args, **kwargs)
    except GonError as e:
        assert str(e) and "\n" not in str(e).strip(), f"multi-line error: {e!r}"
        return None


@pytest.fixture(scope="module")
def workdir():
    """A scratch directory in memory (/dev/shm) when there is one: thousands of small files, no disk."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="gon-fuzz-", dir=shm if shm.is_dir() else None) as d:
        yield Path(d)


# -- mutations shared by every format ------------------------------------------------------------
@st.composite
def mutated(draw, blob: bytes) -> tuple[bytes, str]:
    """``blob`` unchanged, truncated, bit-flipped, extended or replaced; returns (bytes, what was done)."""
    kind = draw(st.sampled_from(["none", "truncate", "flip", "append", "splice", "empty", "random"]))
    if kind == "truncate":
        blob = blob[: draw(st.integers(0, max(len(blob) - 1, 0)))]
    elif kind == "flip" and blob:
        data = bytearray(blob)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        blob = bytes(data)
    elif kind == "append":
        blob += draw(st.binary(min_size=1, max_size=64))
    elif kind == "splice" and blob:
        at = draw(st.integers(0, len(blob)))
        blob = blob[:at] + draw(st.binary(max_size=16)) + blob[at + draw(st.integers(0, 16)) :]
    elif kind == "empty":
        blob = b""
    elif kind == "random":
        blob = draw(st.binary(max_size=512))
    return blob, kind


# -- IDX ---------------------------------------------------------------------------------------------
def idx_header(code: int, dims: list[int]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


@st.composite
def idx_files(draw, max_dim: int = 6):
    """(file bytes, expected array or None): a valid IDX file, maybe with a mutated header or body."""
    code = draw(st.sampled_from(list(_IDX_DTYPES)))
    dims = draw(st.lists(st.integers(0, max_dim), min_size=1, max_size=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    payload = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).bytes(int(np.prod(dims)) * dtype.itemsize)
    header_change = draw(st.sampled_from(["none", "none", "giant-dim", "bad-magic", "bad-code", "ndim"]))
    header = idx_header(code, dims)
    if header_change == "giant-dim":
        dims = list(dims)
        dims[draw(st.integers(0, len(dims) - 1))] = draw(st.integers(2**16, 2**32 - 1))
        header = idx_header(code, dims)
    elif header_change == "bad-magic":
        header = draw(st.binary(min_size=2, max_size=2).filter(lambda b: b != b"\0\0")) + header[2:]
    elif header_change == "bad-code":
        header = header[:2] + bytes([draw(st.integers(0, 255))]) + header[3:]
    elif header_change == "ndim":
        header = header[:3] + bytes([draw(st.integers(0, 255))]) + header[4:]
    blob, body_change = draw(mutated(header + payload))
    gz = draw(st.booleans())
    if gz:
        blob = gzip.compress(blob, mtime=0)
        if draw(st.booleans()):
            blob, gz_change = draw(mutated(blob))
            body_change = body_change if gz_change == "none" else "gz-" + gz_change
    valid = header_change == "none" and body_change == "none"
    expected = np.frombuffer(payload, dtype).reshape(dims) if valid else None
    return blob, expected


def test_fuzz_read_idx(workdir):
    path = workdir / "fuzz.idx"

    def check(example):
        blob, expected = example
        path.write_bytes(blob)
        got = data_or_gon_error(read_idx, path)
        if expected is not None:
            assert got is not None and got.shape == expected.shape and np.array_equal(got, expected, equal_nan=True)
        elif got is not None:
            assert got.dtype.isnative and got.ndim in (1, 2, 3, 4)

    fuzz("idx", idx_files(), check)


_NORB_TYPES = {0x1E3D4C55: "u1", 0x1E3D4C54: "<i4", 0x1E3D4C56: "<i2", 0x1E3D4C51: "<f4", 0x1E3D4C53: "<f8"}


@st.composite
def norb_files(draw):
    """(file bytes, expected array or None): a SmallNORB binary matrix, maybe with a mutated header or body."""
    magic = draw(st.sampled_from(list(_NORB_TYPES)))
    dims = draw(st.lists(st.integers(0, 6), min_size=1, max_size=4))
    if draw(st.integers(0, 9)) == 0:
        dims[draw(st.integers(0, len(dims) - 1))] = draw(st.integers(2**16, 2**31 - 1))  # giant
    dtype = np.dtype(_NORB_TYPES[magic])
    n = int(np.prod(dims)) * dtype.itemsize
    payload = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).bytes(n if n < 1 << 20 else 0)
    header = magic.to_bytes(4, "little") + len(dims).to_bytes(4, "little")
    header += b"".join(int(d).to_bytes(4, "little") for d in dims + [1] * (3 - len(dims)))
    blob, change = draw(mutated(header + payload))
    if draw(st.booleans()):
        blob = gzip.compress(blob, mtime=0)
    valid = change == "none" and n < 1 << 20
    return blob, np.frombuffer(payload, dtype).reshape(dims) if valid else None


def test_fuzz_read_norb(workdir):
    path = workdir / "fuzz.mat"

    def check(example):
        blob, expected = example
        path.write_bytes(blob)
        got = data_or_gon_error(read_norb, path)
        if expected is not None:
            assert got is not None and np.array_equal(got, expected, equal_nan=True)

    fuzz("norb", norb_files(), check)


def test_fuzz_idx_dataset_pairs(workdir):
    """A whole MNIST-style directory whose test images or labels are fuzzed, through load_dataset."""
    root = workdir / "mnist"
    root.mkdir()
    rng = np.random.default_rng(0)
    good_images = idx_header(0x08, [3, 5, 5]) + rng.integers(0, 256, 75, dtype=np.uint8).tobytes()
    good_labels = idx_header(0x08, [3]) + bytes([1, 2, 3])
    for split in ("train", "t10k"):
        (root / f"{split}-images-idx3-ubyte").write_bytes(good_images)
        (root / f"{split}-labels-idx1-ubyte").write_bytes(good_labels)

    def check(example):
        (blob, _), target, size = example
        (root / f"t10k-{target}").write_bytes(blob)
        try:
            got = data_or_gon_error(load_dataset, "mnist", "test", data_dir=root, download=False, image_size=size)
        finally:
            (root / f"t10k-{target}").write_bytes(good_images if target.startswith("images") else good_labels)
        if got is not None:
            n, c, h, w = got.images.shape
            assert c == 1 and h == w and got.labels.shape == (n,) and got.images.dtype.is_floating_point
            assert bool(((got.images >= 0) & (got.images <= 1)).all())

    target = st.sampled_from(["images-idx3-ubyte", "labels-idx1-ubyte"])
    fuzz("idx_pair", st.tuples(idx_files(max_dim=8), target, st.sampled_from([None, 4, 8])), check)


# -- CIFAR-10 python batches -------------------------------------------------------------------------
def cifar_pickle(n: int, protocol: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    batch = {
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"batch_label": b"fuzz",
        b"filenames": [b"x.png"] * n,
    }
    return pickle.dumps(batch, protocol=protocol)


@st.composite
def cifar_bytes(draw):
    blob = cifar_pickle(draw(st.integers(1, 3)), draw(st.integers(2, 5)), draw(st.integers(0, 3)))
    return draw(mutated(blob))


def check_cifar(path: Path, blob: bytes, must_load: bool) -> None:
    path.write_bytes(blob)
    got = data_or_gon_error(read_cifar_batch, path)
    assert got is not None or not must_load
    if got is not None:
        images, labels = got
        assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32) and labels.shape == (len(images),)


def test_fuzz_cifar_batch_bytes(workdir):
    path = workdir / "data_batch_1"
    fuzz("cifar_bytes", cifar_bytes(), lambda ex: check_cifar(path, ex[0], must_load=ex[1] == "none"))


def test_fuzz_cifar_batch_structure(workdir):
    """Well-formed pickles of the wrong shapes, dtypes and label types."""
    path = workdir / "data_batch_2"
    arrays = hnp.arrays(
        st.sampled_from([np.uint8, np.int64, np.float32, np.bool_]),
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=8),
        elements=None,
    )
    rows = st.integers(0, 3).map(lambda n: np.zeros((n, 3072), np.uint8))
    labels = st.one_of(
        st.none(),
        st.lists(st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=3), st.none()), max_size=4),
        arrays,
    )
    batches = st.one_of(
        st.fixed_dictionaries({b"data": st.one_of(rows, arrays), b"labels": labels}),
        st.dictionaries(st.one_of(st.binary(max_size=6), st.text(max_size=6)), st.integers(), max_size=3),
        st.lists(st.integers(), max_size=3),
        st.integers(),
    )
    fuzz(
        "cifar_structure",
        st.tuples(batches, st.integers(2, 5)),
        lambda ex: check_cifar(path, pickle.dumps(ex[0], protocol=ex[1]), must_load=False),
    )


# -- folders of images -------------------------------------------------------------------------------
MODES = {"PNG": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"], "JPEG": ["L", "RGB"], "BMP": ["1", "L", "P", "RGB"]}
FORMATS = {"PNG": [".png"], "JPEG": [".jpg", ".jpeg"], "BMP": [".bmp"]}


@st.composite
def image_files(draw):
    """(name, bytes): an image in some mode and format, maybe mutated, maybe under the wrong suffix."""
    fmt = draw(st.sampled_from(list(FORMATS)))
    mode = draw(st.sampled_from(MODES[fmt]))
    w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    pixels = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).bytes(w * h)
    image = (
        Image.frombytes("L", (w, h), pixels).convert(mode)
        if mode != "I;16"
        else Image.fromarray(np.frombuffer(pixels, np.uint8).reshape(h, w).astype(np.uint16) * 257)
    )
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    blob, _ = draw(mutated(buffer.getvalue()))
    suffix = draw(st.sampled_from([s for f in FORMATS.values() for s in f]))
    return blob, suffix


def check_folder(root: Path, blob: bytes, suffix: str) -> None:
    for old in root.iterdir():
        old.unlink()
    (root / f"image{suffix}").write_bytes(blob)
    got = data_or_gon_error(load_dataset, f"folder:{root}", "train", image_size=16)
    if got is not None:
        assert got.images.shape[0] == 1 and got.images.shape[1] in (1, 3) and got.images.shape[2:] == (16, 16)
        assert bool(((got.images >= 0) & (got.images <= 1)).all())


def test_fuzz_image_folder(workdir):
    root = workdir / "folder"
    root.mkdir()
    fuzz("folder", image_files(), lambda ex: check_folder(root, *ex))


def png_with_size(width: int, height: int, mode_byte: int, body: bytes) -> bytes:
    """A PNG whose header (with a correct CRC) declares any size, followed by a short image body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode_byte, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")


def test_fuzz_png_declared_dimensions(workdir):
    """Huge declared sizes are refused as decompression bombs; modest ones fail as truncated or load."""
    root = workdir / "png_dims"
    root.mkdir()
    side = st.one_of(st.integers(0, 64), st.integers(5_000, 20_000), st.integers(2**16, 2**31 - 1))
    examples = st.tuples(side, side, st.sampled_from([0, 2, 4, 6]), st.binary(max_size=256))
    fuzz("png_dims", examples, lambda ex: check_folder(root, png_with_size(*ex), ".png"))
