"""Tests for gon.data: real Fashion-MNIST, IDX parsing, finding/downloading, folders and CIFAR-10."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gon.data.download as download
import gon.data.idx as idx
from gon.core.errors import GonError
from gon.data import SOURCES, ImageData, ImageDataset, find_or_download, load_dataset, read_idx
from gon.data.cifar import CIFAR_FILES

FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST not installed at {FASHION} (apt-get install dataset-fashion-mnist)",
)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No system datasets, an empty cache, and a network that is never reached unless a test says so."""
    monkeypatch.setattr(download, "SYSTEM_DATA_DIRS", (tmp_path / "system",))
    monkeypatch.setenv("GON_CACHE", str(tmp_path / "cache"))

    def offline(url, timeout=None):
        raise urllib.error.URLError("network unreachable (test)")

    monkeypatch.setattr(download, "urlopen", offline)
    return tmp_path


def write_idx(path: Path, array: np.ndarray, code: int = 0x08, *, gz: bool = False, trailing: bytes = b"") -> Path:
    dtype = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    blob = header + array.astype(dtype).tobytes() + trailing
    path.write_bytes(gzip.compress(blob) if gz else blob)
    return path


def write_fake_mnist(directory: Path, n_train=12, n_test=5, *, gz=True, n_train_labels=None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, n, n_labels in (("train", n_train, n_train_labels or n_train), ("test", n_test, n_test)):
        images, labels = idx.IDX_FILES[split]
        write_idx(directory / f"{images}{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), gz=gz)
        write_idx(directory / f"{labels}{suffix}", rng.integers(0, 10, n_labels, dtype=np.uint8), gz=gz)
    return directory


# ---------------------------------------------------------------------------------------------
# Real Fashion-MNIST


@needs_fashion
def test_fashion_mnist_train_and_test_native():
    train = load_dataset("fashion-mnist", download=False)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.float32
    assert train.images.min() == 0.0 and train.images.max() == 1.0
    assert train.labels.dtype == torch.int64 and torch.bincount(train.labels).tolist() == [6000] * 10
    assert train.name == "fashion-mnist" and train.classes[0] == "T-shirt/top" and len(train.classes) == 10
    assert (len(train), train.channels, train.image_size) == (60000, 1, 28)
    test = load_dataset("fashion-mnist", "test", download=False)
    assert test.images.shape == (10000, 1, 28, 28) and torch.bincount(test.labels).tolist() == [1000] * 10


@needs_fashion
def test_fashion_mnist_resize_matches_bilinear_interpolate():
    full = load_dataset("fashion-mnist", image_size=32, download=False)
    assert full.images.shape == (60000, 1, 32, 32)
    native = load_dataset("fashion-mnist", limit=64, download=False).images
    for size in (32, 16):
        got = load_dataset("fashion-mnist", limit=64, image_size=size, download=False).images
        want = F.interpolate(
            native, size=(size, size), mode="bilinear", align_corners=False, antialias=size < 28
        ).clamp(0, 1)
        assert torch.allclose(got, want, atol=1e-5)
    chosen = load_dataset("fashion-mnist", limit=64, image_size=32, download=False)
    assert torch.allclose(full.images[chosen.index], chosen.images, atol=1e-6)


@needs_fashion
def test_fashion_mnist_pad_centres_with_zeros():
    native = load_dataset("fashion-mnist", "test", limit=10, download=False)
    padded = load_dataset("fashion-mnist", "test", limit=10, image_size=32, resize="pad", download=False)
    assert padded.images.shape == (10, 1, 32, 32)
    assert torch.equal(padded.images[:, :, 2:30, 2:30], native.images)
    border = padded.images.clone()
    border[:, :, 2:30, 2:30] = 0
    assert not border.any()
    with pytest.raises(GonError, match="pad"):
        load_dataset("fashion-mnist", "test", limit=10, image_size=16, resize="pad", download=False)


@needs_fashion
def test_limit_is_a_seeded_choice_of_every_class():
    everything = load_dataset("fashion-mnist", "test", download=False)
    few = load_dataset("fashion-mnist", "test", limit=20, download=False)
    assert len(few) == 20 and few.labels.shape == (20,)
    assert torch.equal(few.images, everything.images[few.index]) and torch.equal(
        few.labels, everything.labels[few.index]
    )
    assert few.labels.bincount(minlength=10).tolist() == [2] * 10  # stratified: every class, in turns
    assert few.labels[:10].tolist() == list(range(10))
    again = load_dataset("fashion-mnist", "test", limit=20, download=False)
    other = load_dataset("fashion-mnist", "test", limit=20, limit_seed=1, download=False)
    assert torch.equal(few.index, again.index) and not torch.equal(few.index, other.index)


# ---------------------------------------------------------------------------------------------
# IDX files


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "code, array",
    [
        (0x08, np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)),
        (0x08, np.array([3, 1, 4, 1, 5], dtype=np.uint8)),
        (0x09, np.array([-3, 7], dtype=np.int8)),
        (0x0B, np.array([[-300, 300]], dtype=np.int16)),
        (0x0C, np.arange(-4, 4, dtype=np.int32).reshape(2, 2, 2)),
        (0x0D, np.linspace(0, 1, 6, dtype=np.float32).reshape(1, 2, 3, 1)),
        (0x0E, np.array([0.5, -2.25])),
        (0x08, np.zeros((0, 28, 28), dtype=np.uint8)),
    ],
)
def test_read_idx_round_trip(tmp_path, gz, code, array):
    got = read_idx(write_idx(tmp_path / "x.idx", array, code, gz=gz))
    assert got.shape == array.shape and got.dtype.isnative and np.array_equal(got, array)


def _raw_header(code, dims):
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "blob, message",
    [
        (b"\x01\x02\x08\x01" + b"\0\0\0\x01" + b"x", "magic"),
        (b"", "magic"),
        (_raw_header(0x07, [1]) + b"x", "type code"),
        (_raw_header(0x08, []), "dimensions"),
        (_raw_header(0x08, [1, 1, 1, 1, 1]) + b"x", "dimensions"),
        (b"\0\0\x08\x03\0\0\0\x02", "header"),
        (_raw_header(0x08, [4, 2]) + b"1234567", "7"),
        (_raw_header(0x0C, [2]) + b"1234", "bytes"),
        (_raw_header(0x08, [2]) + b"123", "after|holds 3 bytes"),  # trailing bytes
    ],
    ids=["magic", "empty", "dtype", "0-dims", "5-dims", "short-header", "truncated", "truncated-int32", "trailing"],
)
def test_read_idx_rejects_bad_files_naming_them(tmp_path, gz, blob, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(gzip.compress(blob) if gz else blob)
    with pytest.raises(GonError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dims", [[2**31, 28, 28], [2**31 - 1], [2**32 - 1] * 4])
def test_read_idx_rejects_giant_declared_size_instantly(tmp_path, gz, dims):
    path = tmp_path / "giant"
    blob = _raw_header(0x08, dims) + b"0123456789"
    path.write_bytes(gzip.compress(blob) if gz else blob)
    start = time.perf_counter()
    with pytest.raises(GonError, match="giant"):
        read_idx(path)
    assert time.perf_counter() - start < 1.0


def test_read_idx_giant_but_allowed_gz_is_read_in_bounded_chunks(tmp_path, monkeypatch):
    """A header under the cap but with a tiny payload fails as truncated, without allocating the claim."""
    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 1 << 62)
    path = tmp_path / "claims-a-lot.gz"
    path.write_bytes(gzip.compress(_raw_header(0x08, [2**20, 2**10]) + b"0123456789"))  # 1 GiB: fits the memory check
    with pytest.raises(GonError, match="truncated"):
        read_idx(path)


def test_read_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "corrupt.gz"
    path.write_bytes(gzip.compress(_raw_header(0x08, [4]) + b"abcd")[:-12] + b"\xff" * 12)
    with pytest.raises(GonError, match="corrupt.gz"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("inside", [False, True])
def test_mnist_from_data_dir_direct_or_named_subdir(isolated, gz, inside):
    root = isolated / "mine"
    write_fake_mnist(root / "mnist" if inside else root, gz=gz)
    train = load_dataset("mnist", data_dir=root, download=False)
    assert train.images.shape == (12, 1, 28, 28) and train.labels.shape == (12,) and train.classes[3] == "3"
    assert load_dataset("mnist", "test", data_dir=root, download=False, image_size=32).images.shape == (5, 1, 32, 32)


def test_label_image_count_mismatch(isolated):
    root = write_fake_mnist(isolated / "mine", n_train=12, n_train_labels=11)
    with pytest.raises(GonError, match="12 images.*11 labels"):
        load_dataset("mnist", data_dir=root, download=False)


def test_idx_images_must_be_uint8_3d(isolated):
    root = write_fake_mnist(isolated / "mine")
    write_idx(root / "train-images-idx3-ubyte.gz", np.zeros((12, 784), np.uint8), gz=True)
    with pytest.raises(GonError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", data_dir=root, download=False)


# ---------------------------------------------------------------------------------------------
# Finding and downloading


def test_missing_dataset_without_download_lists_every_place(isolated):
    with pytest.raises(GonError) as err:
        find_or_download(SOURCES["fashion-mnist"], isolated / "given", download=False)
    message = str(err.value)
    for place in (
        isolated / "given",
        isolated / "given" / "fashion-mnist",
        isolated / "system" / "fashion-mnist",
        isolated / "cache" / "fashion-mnist",
    ):
        assert str(place) in message
    assert "apt-get install dataset-fashion-mnist" in message and "disabled" in message and "\n" not in message


def test_failed_download_is_one_gon_error_and_leaves_nothing(isolated):
    with pytest.raises(GonError, match="download failed.*network unreachable.*--data-dir"):
        load_dataset("mnist")
    assert not (isolated / "cache").exists()  # not even an empty cache folder


def _serve(monkeypatch, files: dict[str, bytes], calls: list[str]):
    def fake_urlopen(url, timeout=None):
        assert timeout is not None
        calls.append(url)
        return io.BytesIO(files[url.rsplit("/", 1)[-1]])

    monkeypatch.setattr(download, "urlopen", fake_urlopen)


@needs_fashion
def test_download_verifies_and_writes_atomically(isolated, monkeypatch):
    served = {p.name: p.read_bytes() for p in FASHION.glob("*.gz")}
    # The packaged files are recompressed, so their MD5s differ from the published ones.
    monkeypatch.setattr(
        SOURCES["fashion-mnist"], "checksums", {k: hashlib.md5(v).hexdigest() for k, v in served.items()}
    )
    calls = []
    _serve(monkeypatch, served, calls)
    test = load_dataset("fashion-mnist", "test", limit=100)
    assert len(calls) == 4 and all(c.startswith(SOURCES["fashion-mnist"].url) for c in calls)
    cache = isolated / "cache" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(served)  # no leftover temp files
    assert all((cache / k).read_bytes() == v for k, v in served.items())
    assert torch.equal(test.images, load_dataset("fashion-mnist", "test", data_dir=FASHION, limit=100).images)
    load_dataset("fashion-mnist", "test", limit=1)  # now found in the cache: no more downloads
    assert len(calls) == 4


def test_download_with_wrong_checksum_is_refused(isolated, monkeypatch):
    blob = gzip.compress(_raw_header(0x08, [1]) + b"x")
    monkeypatch.setattr(SOURCES["mnist"], "checksums", {"train-images-idx3-ubyte.gz": "0" * 32})
    _serve(monkeypatch, {n + ".gz": blob for pair in idx.IDX_FILES.values() for n in pair}, [])
    with pytest.raises(GonError, match="MD5"):
        load_dataset("mnist")
    assert not (isolated / "cache" / "mnist" / "train-images-idx3-ubyte.gz").exists()
    assert not list((isolated / "cache" / "mnist").glob("*.part"))


# ---------------------------------------------------------------------------------------------
# CIFAR-10


def _cifar_batch(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"synthetic",
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"labels": rng.integers(0, 10, n).tolist(),
        b"filenames": [b"x.png"] * n,
    }


def write_fake_cifar(directory: Path, protocol: int = 2) -> dict[str, dict]:
    directory.mkdir(parents=True, exist_ok=True)
    names = CIFAR_FILES["train"] + CIFAR_FILES["test"]
    batches = {name: _cifar_batch(4, i) for i, name in enumerate(names)}
    for name, batch in batches.items():
        (directory / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    return batches


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_reader_on_synthetic_batches(isolated, protocol):
    batches = write_fake_cifar(isolated / "c" / "cifar-10-batches-py", protocol)
    train = load_dataset("cifar10", data_dir=isolated / "c", download=False)
    assert train.images.shape == (20, 3, 32, 32) and train.classes[0] == "airplane"
    first = batches["data_batch_1"]
    assert torch.equal(train.images[:4], torch.from_numpy(first[b"data"].reshape(4, 3, 32, 32)).float() / 255)
    assert train.labels[:4].tolist() == first[b"labels"]
    batch_dir = isolated / "c" / "cifar-10-batches-py"  # the batches' own directory works too
    test = load_dataset("cifar10", "test", data_dir=batch_dir, image_size=16, download=False)
    assert test.images.shape == (4, 3, 16, 16) and test.labels.tolist() == batches["test_batch"][b"labels"]
    assert len(load_dataset("cifar10", data_dir=isolated / "c", limit=6, download=False)) == 6


class _Evil:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_cifar_refuses_malicious_pickle(isolated):
    root = isolated / "c"
    write_fake_cifar(root)
    target = isolated / "pwned"
    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": _Evil(str(target)), b"labels": []}, protocol=2))
    with pytest.raises(GonError, match=r"data_batch_1.*refusing to load .*open"):
        load_dataset("cifar10", data_dir=root, download=False)
    assert not target.exists()


@pytest.mark.parametrize(
    "payload, message",
    [
        (pickle.dumps([1, 2, 3]), "not a CIFAR-10 batch"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}), "2 images but 1 labels"),
        (b"not a pickle at all", "cannot read"),
    ],
)
def test_cifar_rejects_malformed_batches(isolated, payload, message):
    root = isolated / "c"
    write_fake_cifar(root)
    (root / "test_batch").write_bytes(payload)
    with pytest.raises(GonError, match=message):
        load_dataset("cifar10", "test", data_dir=root, download=False)


def test_cifar_download_extracts_only_the_batches(isolated, monkeypatch):
    source = isolated / "src" / "cifar-10-batches-py"
    write_fake_cifar(source)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(source.iterdir()):
            tar.add(p, arcname=f"cifar-10-batches-py/{p.name}")
        evil = tarfile.TarInfo("cifar-10-batches-py/../../escaped")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
        link = tarfile.TarInfo("cifar-10-batches-py/readme.html")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    archive = buf.getvalue()
    monkeypatch.setattr(SOURCES["cifar10"], "checksums", {"cifar-10-python.tar.gz": hashlib.md5(archive).hexdigest()})
    calls = []
    _serve(monkeypatch, {"cifar-10-python.tar.gz": archive}, calls)
    train = load_dataset("cifar10")
    assert len(train) == 20 and calls == [SOURCES["cifar10"].url]
    extracted = isolated / "cache" / "cifar10" / "cifar-10-batches-py"
    assert sorted(p.name for p in extracted.iterdir()) == sorted(p.name for p in source.iterdir())
    assert not any(p.name == "escaped" for p in isolated.rglob("*"))
    assert sorted(p.name for p in (isolated / "cache" / "cifar10").iterdir()) == ["cifar-10-batches-py"]


# ---------------------------------------------------------------------------------------------
# Folders


def _save(path: Path, mode: str, size=(10, 8), fmt=None, value=200):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode in ("L", "1", "P") else (value,) * len(mode)).save(path, fmt)
    return path


@pytest.fixture
def gray_folder(tmp_path):
    root = tmp_path / "gray"
    for i in range(10):
        _save(root / ("deep/er" if i % 3 else "") / f"img{i:02d}.png", "L", value=20 * i)
    (root / "notes.txt").write_text("ignored: not an image extension")
    return root


def test_folder_grayscale_split_is_disjoint_seeded_and_stable(gray_folder):
    spec = f"folder:{gray_folder}"
    train = load_dataset(spec, test_fraction=0.3, seed=1)
    test = load_dataset(spec, "test", test_fraction=0.3, seed=1)
    assert train.images.shape == (7, 1, 32, 32) and test.images.shape == (3, 1, 32, 32)
    assert train.labels is None and train.classes is None and train.name == spec

    def values(d: ImageData) -> set[int]:
        return {round(float(x.mean()) * 255) for x in d.images}  # each file has its own grey

    assert values(train).isdisjoint(values(test)) and len(values(train) | values(test)) == 10
    assert torch.equal(load_dataset(spec, "test", test_fraction=0.3, seed=1).images, test.images)
    other = [values(load_dataset(spec, "test", test_fraction=0.3, seed=s)) for s in range(2, 8)]
    assert any(v != values(test) for v in other)  # the seed matters
    # Adding a file keeps every old test image in test unless the new one displaces one.
    _save(gray_folder / "new.png", "L", value=255)
    assert len(values(test) - values(load_dataset(spec, "test", test_fraction=0.3, seed=1))) <= 1
    assert load_dataset(spec, image_size=12, limit=2).images.shape == (2, 1, 12, 12)


def test_folder_mixed_formats_become_rgb(tmp_path):
    root = tmp_path / "mixed"
    _save(root / "a.png", "L", value=100)
    _save(root / "b.PNG", "RGB", size=(40, 20))
    _save(root / "sub" / "c.png", "RGBA")
    _save(root / "sub" / "d.jpg", "RGB", fmt="JPEG")
    _save(root / "sub" / "deeper" / "e.JPEG", "L", fmt="JPEG")
    _save(root / "f.bmp", "RGB", fmt="BMP")
    _save(root / "g.png", "P")
    Image.fromarray(np.full((6, 6), 65535, np.uint16)).save(root / "h16.png")
    train = load_dataset(f"folder:{root}", image_size=16, test_fraction=0.2)
    test = load_dataset(f"folder:{root}", "test", image_size=16, test_fraction=0.2)
    assert train.images.shape == (6, 3, 16, 16) and test.images.shape == (2, 3, 16, 16)
    everything = torch.cat([train.images, test.images])
    assert everything.dtype == torch.float32 and everything.min() >= 0 and everything.max() <= 1
    grey = torch.full((3, 16, 16), 100 / 255)  # a.png, a grey image expanded to RGB
    assert any(torch.allclose(x, grey, atol=1e-6) for x in everything)
    ds = ImageDataset(train)
    image, label = ds[0]
    assert image.shape == (3, 16, 16) and label.dtype == torch.int64 and label.item() == -1


def test_folder_sixteen_bit_grayscale_keeps_full_range(tmp_path):
    root = tmp_path / "deep"
    root.mkdir()
    Image.fromarray(np.full((6, 6), 65535, np.uint16)).save(root / "a.png")
    Image.fromarray(np.full((6, 6), 32768, np.uint16)).save(root / "b.png")
    splits = [load_dataset(f"folder:{root}", s, image_size=8, test_fraction=0.5) for s in ("train", "test")]
    images = torch.cat([d.images for d in splits])
    assert images.shape == (2, 1, 8, 8)
    assert sorted(round(float(x.mean()), 3) for x in images) == [0.5, 1.0]


@pytest.mark.parametrize("bad", ["fake.png", "empty.png", "truncated.png"])
def test_folder_bad_file_is_named(tmp_path, bad):
    root = tmp_path / "f"
    for i in range(3):
        _save(root / f"ok{i}.png", "RGB", size=(64, 64))
    path = root / bad
    if bad == "fake.png":
        path.write_text("this is not an image")
    elif bad == "empty.png":
        path.touch()
    else:
        full = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full, "PNG")
        path.write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    with pytest.raises(GonError, match=bad):
        for split in ("train", "test"):  # a truncated file fails when its split is decoded
            load_dataset(f"folder:{root}", split, test_fraction=0.5)


def test_folder_decompression_bomb_is_refused(tmp_path, monkeypatch):
    root = tmp_path / "bomb"
    _save(root / "small.png", "L", size=(4, 4))
    _save(root / "huge.png", "L", size=(30, 30))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 900 pixels: a warning, which we treat as an error
    with pytest.raises(GonError, match="huge.png"):
        load_dataset(f"folder:{root}")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # over twice the limit: Pillow's own error
    with pytest.raises(GonError, match="huge.png"):
        load_dataset(f"folder:{root}")


def test_folder_missing_empty_or_too_small(tmp_path):
    with pytest.raises(GonError, match="no such directory"):
        load_dataset(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(GonError, match="no such directory"):
        load_dataset("folder:")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(GonError, match=f"no PNG/JPEG/BMP images under {tmp_path / 'empty'}"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    _save(tmp_path / "one" / "only.png", "L")
    assert len(load_dataset(f"folder:{tmp_path / 'one'}")) == 1  # training on one image is fine
    with pytest.raises(GonError, match="too few"):
        load_dataset(f"folder:{tmp_path / 'one'}", "test")


# ---------------------------------------------------------------------------------------------
# Options and the Dataset wrapper


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"split": "valid"}, "split"),
        ({"image_size": 0}, "image_size"),
        ({"image_size": -3}, "image_size"),
        ({"image_size": 2.5}, "image_size"),
        ({"resize": "crop"}, "resize"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_options_are_named(isolated, kwargs, option):
    with pytest.raises(GonError, match=option):
        load_dataset("fashion-mnist", **kwargs)


def test_unknown_dataset_lists_valid_names(isolated):
    with pytest.raises(
        GonError,
        match="fashion-mnist, mnist, smallnorb, coil20, cifar10, celeba, lsun-bedroom, folder:PATH, lmdb:PATH, "
        "audio:PATH or volume:PATH",
    ):
        load_dataset("imagenet")


def test_image_dataset_indexes_tensors_and_collates():
    labels = torch.arange(5)
    d = ImageData(torch.rand(5, 1, 4, 4), labels, "toy", None)
    ds = ImageDataset(d)
    image, label = ds[3]
    assert len(ds) == 5 and torch.equal(image, d.images[3]) and label.item() == 3 and label.dtype == torch.int64
    images, batch_labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert images.shape == (5, 1, 4, 4) and torch.equal(batch_labels, labels)
    unlabeled = ImageDataset(ImageData(torch.rand(2, 3, 4, 4), None, "toy", None))
    assert unlabeled[1][1].item() == -1 and (d.channels, d.image_size) == (1, 4)
