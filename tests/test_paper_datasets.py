"""The paper's other datasets, read from small synthetic files written in each real format (no network).

SmallNORB (.mat binary matrices), COIL-20 (the processed PNG zip), CelebA (aligned JPEGs +
list_eval_partition.txt), LSUN Bedroom (LMDB of WebP) and lmdb:PATH (vid2frame's JPEG layout).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image

from gon.core.errors import GonError
from gon.data import SOURCES, load_dataset, read_norb
from gon.data.coil import coil_names
from gon.data.norb import NORB_FILES
from tests import test_data

isolated = test_data.isolated  # the fixture: no system datasets, an empty cache, no network
_serve = test_data._serve

NORB_MAGIC = {np.uint8: 0x1E3D4C55, np.int32: 0x1E3D4C54}


def write_norb(path: Path, array: np.ndarray, *, gz: bool = False, magic: int | None = None) -> Path:
    dims = list(array.shape) + [1] * (3 - array.ndim)
    header = (magic or NORB_MAGIC[array.dtype.type]).to_bytes(4, "little") + array.ndim.to_bytes(4, "little")
    blob = (
        header
        + b"".join(int(d).to_bytes(4, "little") for d in dims)
        + array.astype(array.dtype.newbyteorder("<")).tobytes()
    )
    path.write_bytes(gzip.compress(blob) if gz else blob)
    return path


def write_fake_norb(directory: Path, n: int = 6, gz: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    directory.mkdir(parents=True, exist_ok=True)
    rng, out = np.random.default_rng(0), {}
    for split, (dat, cat) in NORB_FILES.items():
        images = rng.integers(0, 256, (n, 2, 96, 96), dtype=np.uint8)
        labels = rng.integers(0, 5, n).astype(np.int32)
        write_norb(directory / (dat + (".gz" if gz else "")), images, gz=gz)
        write_norb(directory / (cat + (".gz" if gz else "")), labels, gz=gz)
        out[split] = images, labels
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_smallnorb_reads_the_left_camera_and_categories(isolated, gz):
    written = write_fake_norb(isolated / "norb", gz=gz)
    train = load_dataset("smallnorb", data_dir=isolated / "norb", download=False)
    images, labels = written["train"]
    assert train.images.shape == (6, 1, 96, 96) and train.classes[0] == "animal"
    assert torch.equal(train.images, torch.from_numpy(images[:, :1]).float() / 255)
    assert train.labels.tolist() == labels.tolist()
    test = load_dataset("smallnorb", "test", data_dir=isolated / "norb", image_size=32, download=False)
    assert test.images.shape == (6, 1, 32, 32)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"\x00" * 4 + b[4:], "bad magic"),
        (lambda b: b[:30], "truncated"),
        (lambda b: b + b"x", "unexpected bytes"),
        (lambda b: b[:8] + (1 << 30).to_bytes(4, "little") + b[12:], "not a real SmallNORB"),
    ],
)
def test_smallnorb_hostile_files_are_one_line_errors(isolated, mutate, message):
    write_fake_norb(isolated / "norb", gz=False)
    path = isolated / "norb" / NORB_FILES["train"][0]
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(GonError, match=message) as err:
        load_dataset("smallnorb", data_dir=isolated / "norb", download=False)
    assert "\n" not in str(err.value) and path.name in str(err.value)


def test_smallnorb_rejects_wrong_categories(isolated):
    write_fake_norb(isolated / "norb", gz=False)
    write_norb(isolated / "norb" / NORB_FILES["test"][1], np.full(6, 7, np.int32))
    with pytest.raises(GonError, match="categories must be 0 to 4"):
        load_dataset("smallnorb", "test", data_dir=isolated / "norb", download=False)
    assert read_norb(isolated / "norb" / NORB_FILES["train"][1]).shape == (6,)


def _png(value: int, size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (size, size), value).save(buf, "PNG")
    return buf.getvalue()


def write_fake_coil(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for split in ("train", "test"):
            for label, name in coil_names(split):
                archive.writestr(f"coil-20-proc/{name}", _png(10 * label + int(name.split("__")[1][:-4]) % 7))
    return path


def test_coil20_from_the_zip_and_from_its_folder(isolated):
    write_fake_coil(isolated / "coil" / "coil-20-proc.zip")
    train = load_dataset("coil20", data_dir=isolated / "coil", download=False)
    test = load_dataset("coil20", "test", data_dir=isolated / "coil", image_size=32, download=False)
    assert train.images.shape == (1260, 1, 128, 128) and test.images.shape == (180, 1, 32, 32)
    assert torch.bincount(test.labels).tolist() == [9] * 20 and train.classes[19] == "object 20"
    assert train.images[0, 0, 0, 0].item() == pytest.approx(1 / 255)  # obj1__1.png: value 1, resized exactly
    with zipfile.ZipFile(isolated / "coil" / "coil-20-proc.zip") as archive:
        archive.extractall(isolated / "extracted")
    again = load_dataset("coil20", data_dir=isolated / "extracted", download=False)
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)


def test_coil20_download_is_checked_by_content_and_failures_leave_no_cache(isolated, monkeypatch):
    partial = io.BytesIO()
    with zipfile.ZipFile(partial, "w") as archive:
        archive.writestr("coil-20-proc/obj1__0.png", _png(0))
    _serve(monkeypatch, {"coil-20-proc.zip": partial.getvalue()}, [])
    with pytest.raises(GonError, match="lacks 1439 of the COIL-20 pictures"):
        load_dataset("coil20")
    assert not (isolated / "cache").exists()  # neither the dataset's folder nor the cache root stays
    whole = write_fake_coil(isolated / "served" / "coil-20-proc.zip").read_bytes()
    calls = []
    _serve(monkeypatch, {"coil-20-proc.zip": whole}, calls)
    assert len(load_dataset("coil20", "test")) == 180 and calls == [SOURCES["coil20"].url]
    assert sorted(p.name for p in (isolated / "cache" / "coil20").iterdir()) == ["coil-20-proc.zip"]


def _jpeg(rgb: tuple[int, int, int], size=(178, 218)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def write_fake_celeba(root: Path, zipped: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    names = [f"{i:06d}.jpg" for i in range(1, 8)]
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{n} {[0, 0, 0, 1, 2, 2, 0][i]}\n" for i, n in enumerate(names))
    )
    if zipped:
        with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as archive:
            for i, n in enumerate(names):
                archive.writestr(f"img_align_celeba/{n}", _jpeg((30 * i, 100, 200)))
    else:
        (root / "img_align_celeba").mkdir()
        for i, n in enumerate(names):
            (root / "img_align_celeba" / n).write_bytes(_jpeg((30 * i, 100, 200)))


@pytest.mark.parametrize("zipped", [True, False])
def test_celeba_splits_crops_and_resizes(isolated, zipped):
    write_fake_celeba(isolated / "celeba", zipped)
    train = load_dataset("celeba", data_dir=isolated / "celeba", download=False)
    test = load_dataset("celeba", "test", data_dir=isolated / "celeba", image_size=32, download=False)
    assert train.images.shape == (4, 3, 64, 64) and test.images.shape == (2, 3, 32, 32)
    assert train.labels is None and train.classes is None
    colour = train.images[1].mean(dim=(1, 2)) * 255  # picture 2: RGB (30, 100, 200), JPEG-rounded
    assert torch.allclose(colour, torch.tensor([30.0, 100.0, 200.0]), atol=3)


def test_celeba_bad_partition_line_and_missing_picture(isolated):
    write_fake_celeba(isolated / "celeba", zipped=False)
    (isolated / "celeba" / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(GonError, match="000002.jpg"):
        load_dataset("celeba", data_dir=isolated / "celeba", download=False)
    (isolated / "celeba" / "list_eval_partition.txt").write_text("000001.jpg 0\n../../etc/passwd 0\n")
    with pytest.raises(GonError, match=r"list_eval_partition.txt:2: expected"):
        load_dataset("celeba", data_dir=isolated / "celeba", download=False)


def test_undownloadable_datasets_say_how_to_get_them(isolated):
    for name, hint in (("celeba", "mmlab.ie.cuhk.edu.hk"), ("lsun-bedroom", "github.com/fyu/lsun")):
        with pytest.raises(GonError, match=f"{name} not found.*cannot download it.*{hint}") as err:
            load_dataset(name)
        assert "\n" not in str(err.value)
    assert not (isolated / "cache").exists()


def write_lmdb(path: Path, items: dict[bytes, bytes]) -> Path:
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in items.items():
            txn.put(key, value)
    env.close()
    return path


def _webp(rgb, size=(300, 256)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, "WEBP", lossless=True)
    return buf.getvalue()


def test_lsun_bedroom_reads_its_lmdb_layout(isolated):
    root = isolated / "lsun"
    root.mkdir()
    ids = [hashlib.sha1(bytes([i])).hexdigest().encode() for i in range(5)]  # LSUN keys: hex image ids
    write_lmdb(root / "bedroom_train_lmdb", {k: _webp((40 * i, 0, 255)) for i, k in enumerate(ids)})
    write_lmdb(root / "bedroom_val_lmdb", {ids[0]: _webp((1, 2, 3))})
    train = load_dataset("lsun-bedroom", data_dir=root, download=False)
    assert train.images.shape == (5, 3, 128, 128) and train.labels is None
    order = sorted(range(5), key=lambda i: ids[i])  # key order
    assert torch.allclose(train.images[:, 0, 64, 64] * 255, torch.tensor([40.0 * i for i in order]), atol=1)
    assert load_dataset("lsun-bedroom", "test", data_dir=root, image_size=16, download=False).images.shape == (
        1,
        3,
        16,
        16,
    )
    assert len(load_dataset("lsun-bedroom", data_dir=root, limit=2, download=False)) == 2


def test_lmdb_path_vid2frame_layout_and_a_stable_seeded_split(tmp_path):
    frames = {f"clip{v}/{i:08d}".encode(): _jpeg((v * 50, i, 0), (64, 48)) for v in range(2) for i in range(20)}
    path = write_lmdb(tmp_path / "frames.lmdb", {**frames, b"length": b"40"})
    train = load_dataset(f"lmdb:{path}", image_size=16)
    test = load_dataset(f"lmdb:{path}", "test", image_size=16)
    assert train.images.shape[1:] == (3, 16, 16) and len(train) + len(test) == 40 and 0 < len(test) < 15
    again = load_dataset(f"lmdb:{path}", "test", image_size=16)
    assert torch.equal(again.images, test.images)
    other = load_dataset(f"lmdb:{path}", "test", image_size=16, seed=1)
    assert not torch.equal(other.images, test.images)


def test_lmdb_path_hostile_values_and_paths(tmp_path):
    path = write_lmdb(tmp_path / "bad.lmdb", {b"a": _jpeg((0, 0, 0), (8, 8)), b"b": b"not a picture"})
    with pytest.raises(GonError, match=r"bad.lmdb:b") as err:
        load_dataset(f"lmdb:{path}", test_fraction=0.01)
    assert "\n" not in str(err.value)
    (tmp_path / "junk").write_bytes(b"junk" * 100)
    with pytest.raises(GonError, match="cannot open LMDB"):
        load_dataset(f"lmdb:{tmp_path / 'junk'}")
    with pytest.raises(GonError, match="no LMDB at"):
        load_dataset(f"lmdb:{tmp_path / 'missing'}")


def _write_lsun(root: Path) -> None:
    root.mkdir(parents=True)
    for split, n in (("train", 6), ("val", 3)):
        ids = [hashlib.sha1(f"{split}{i}".encode()).hexdigest().encode() for i in range(n)]
        write_lmdb(root / f"bedroom_{split}_lmdb", {k: _webp((40 * i, 90, 200 - 20 * i)) for i, k in enumerate(ids)})


def _write_frames(root: Path) -> str:
    root.mkdir(parents=True)
    frames = {f"clip{v}/{i:08d}".encode(): _jpeg((v * 60, 8 * i, 90), (48, 40)) for v in range(3) for i in range(12)}
    return f"lmdb:{write_lmdb(root / 'frames.lmdb', frames)}"


# Every dataset of the paper, in its real format, through the experiments that use it (MNIST and
# Fashion-MNIST share the IDX reader).
PAPER_RUNS = {
    "smallnorb": ("table1", lambda root: write_fake_norb(root, n=40)),
    "coil20": ("table1", lambda root: write_fake_coil(root / "coil-20-proc.zip")),
    "mnist": ("table1", lambda root: test_data.write_fake_mnist(root, n_train=40, n_test=10)),
    "cifar10": ("table1", lambda root: test_data.write_fake_cifar(root / "cifar-10-batches-py")),
    "celeba": ("table2", lambda root: write_fake_celeba(root, zipped=True)),
    "lsun-bedroom": ("fig9a", _write_lsun),
    "lmdb:": ("fig9b", _write_frames),
}
TABLE_ROWS = {"table1": ("GON", "AE", "TiedAE", "GLO"), "table2": ("VGON", "VAE")}


@pytest.mark.parametrize("dataset", list(PAPER_RUNS))
def test_every_paper_dataset_runs_through_its_experiment(isolated, dataset):
    from gon.cli import main

    experiment, write = PAPER_RUNS[dataset]
    root = isolated / "data"
    written = write(root)
    name = written if dataset == "lmdb:" else dataset
    args = ["reproduce", experiment, "--dataset", name, "--data-dir", str(root), "--out", str(isolated / "out")]
    args += ["--limit-train", "8", "--test-size", "2", "--batch-size", "4", "--steps", "2", "--no-progress"]
    if experiment.startswith("fig9"):
        args += ["--image-size", "32"]  # the figures' sizes (128, 64) are for real pictures; the reader is the point
    assert main(args) == 0
    out = isolated / "out"
    if experiment in TABLE_ROWS:
        table = (out / f"{experiment}.md").read_text()
        assert all(f"| {row} |" in table for row in TABLE_ROWS[experiment]), table
    else:
        assert (out / f"{experiment}.png").stat().st_size > 1000


def _png16(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buf, "PNG")  # mode I;16: a 16-bit grayscale PNG
    return buf.getvalue()


def test_16_bit_pictures_read_alike_from_an_lmdb_and_a_folder(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 16), (16, 1))  # dark to light, left to right
    pictures = {f"p/{i:02d}".encode(): _png16(ramp * (i + 1) / 12) for i in range(12)}
    via_lmdb = load_dataset(f"lmdb:{write_lmdb(tmp_path / 'deep.lmdb', pictures)}", image_size=16, test_fraction=0.01)
    (tmp_path / "f").mkdir()
    for key, png in pictures.items():
        (tmp_path / "f" / f"{key.decode().replace('/', '_')}.png").write_bytes(png)
    via_folder = load_dataset(f"folder:{tmp_path / 'f'}", image_size=16, test_fraction=0.01)
    expected = torch.tensor([np.clip(ramp * (i + 1) / 12, 0, 65535).mean() / 65535 for i in range(12)])
    for data in (via_lmdb, via_folder):
        assert data.images.shape[1] == 1  # grayscale, not colour
        means = data.images.mean(dim=(1, 2, 3))  # each picture's brightness is one of the 12 written
        assert (means[:, None] - expected[None]).abs().min(dim=1).values.max() < 0.01, means


def test_a_split_too_big_for_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    import gon.core.validate

    path = write_lmdb(tmp_path / "frames.lmdb", {f"c/{i:04d}".encode(): _jpeg((i, 0, 0), (64, 64)) for i in range(40)})
    monkeypatch.setattr(gon.core.validate, "available_memory", lambda: 10 * 3 * 64 * 64 * 5)  # room for 10 images
    with pytest.raises(GonError, match=r"images at 64x64 needs about .* pass --limit-train \(at most about 10\)"):
        load_dataset(f"lmdb:{path}", image_size=64)


@pytest.mark.parametrize("count", [2, 5, 9])
def test_a_small_lmdb_holds_out_an_exact_share_never_none(tmp_path, count):
    path = write_lmdb(
        tmp_path / "small.lmdb", {f"k{i}".encode(): _jpeg((20 * i, 0, 0), (16, 16)) for i in range(count)}
    )
    expected = min(max(round(count * 0.1), 1), count - 1)  # at least one test picture, never all (as folders)
    for seed in (0, 1):
        test = load_dataset(f"lmdb:{path}", "test", image_size=16, test_fraction=0.1, seed=seed)
        train = load_dataset(f"lmdb:{path}", image_size=16, test_fraction=0.1, seed=seed)
        assert len(test) == expected and len(train) == count - expected
