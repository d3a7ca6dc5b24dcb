"""Fuzzing the readers tests/test_fuzz.py does not reach (LMDB, WAV, .npy volumes, the COIL-20 zip) from real small
files, cut and corrupted at every offset class of their format: its header, its index, its payload.

Each case truncates the file at an offset of one class, flips a bit there or zeroes 16 bytes from there; the reader
must give data or a one-line GonError, never another exception, a signal (a truncated LMDB was a SIGBUS) or a hang.
Each format runs CASES derandomised cases, counted in the suite's "generated cases" line, and fails if a class of
offsets got no case.
"""

from __future__ import annotations

import io
import struct
import wave
import zipfile
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gon.data import load_dataset
from tests.helpers import GENERATED_CASES
from tests.test_fuzz import data_or_gon_error, guarded

CASES = 150  # per format


def png(side: int, seed: int, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    shape = (side, side, 3) if mode == "RGB" else (side, side)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buffer, "PNG")
    return buffer.getvalue()


def fuzz_file(name: str, blob: bytes, classes: list[str], write, read) -> None:
    """CASES cuts and corruptions of ``blob`` (``classes[i]``: the offset class of byte i), each written by
    ``write(bytes)`` and read by ``read()``: data or a one-line GonError."""
    tried = Counter()
    by_class = {c: [i for i, k in enumerate(classes) if k == c] for c in dict.fromkeys(classes)}

    @settings(
        max_examples=CASES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        st.sampled_from(sorted(by_class)),
        st.integers(0, 2**32),
        st.sampled_from(["truncate", "flip", "zero"]),
        st.integers(0, 7),
    )
    def case(offset_class, pick, how, bit):
        at = by_class[offset_class][pick % len(by_class[offset_class])]
        data = bytearray(blob)
        if how == "truncate":
            data = data[:at]
        elif how == "flip":
            data[at] ^= 1 << bit
        else:
            data[at : at + 16] = bytes(len(data[at : at + 16]))
        write(bytes(data))
        tried[offset_class] += 1
        GENERATED_CASES["data readers"] += 1
        with guarded():
            data_or_gon_error(read)

    case()
    assert sum(tried.values()) >= CASES and set(tried) == set(by_class), f"{name}: cases per offset class {tried}"


# -- LMDB: meta pages (header), branch pages (index), leaf and overflow pages (payload) --------------------------
def test_fuzz_lmdb(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    db = tmp_path / "db"
    env = lmdb.open(str(db), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i in range(40):
            txn.put(b"img/%04d" % i, png(16, i))
        txn.put(b"img/big", png(40, 99))  # an overflow page
    env.close()
    blob = (db / "data.mdb").read_bytes()
    size = 4096
    flags = [int.from_bytes(blob[p * size + 10 : p * size + 12], "little") for p in range(len(blob) // size)]
    kind = {0x08: "header", 0x01: "index"}
    classes = [kind.get(flags[i // size], "payload") for i in range(len(blob))]
    assert {"header", "index", "payload"} <= set(classes)
    damaged = tmp_path / "damaged"
    damaged.mkdir()

    def read():
        load_dataset(f"lmdb:{damaged}", "train", image_size=16)

    fuzz_file("lmdb", blob, classes, (damaged / "data.mdb").write_bytes, read)


# -- WAV: RIFF and fmt chunks (header), the data chunk's header (index), the samples (payload) ------------------
def test_fuzz_wav(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.random.default_rng(0).integers(-3000, 3000, 2 * 800, dtype=np.int16).tobytes())
    blob = buffer.getvalue()
    data_at = blob.index(b"data")
    classes = ["header"] * data_at + ["index"] * 8 + ["payload"] * (len(blob) - data_at - 8)
    for i in range(3):  # the other clips of the split, intact
        (folder / f"ok{i}.wav").write_bytes(blob)

    def read():
        for split in ("train", "test"):
            load_dataset(f"audio:{folder}", split, sample_rate=4000, audio_seconds=0.1)

    fuzz_file("wav", blob, classes, (folder / "damaged.wav").write_bytes, read)


# -- .npy: magic and header length (header), the header's dict (index), the values (payload) ---------------------
def test_fuzz_npy(tmp_path):
    folder = tmp_path / "volumes"
    folder.mkdir()
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).random((6, 6, 6)).astype(np.float32))
    blob = buffer.getvalue()
    header_end = 10 + struct.unpack("<H", blob[8:10])[0]
    classes = ["header"] * 10 + ["index"] * (header_end - 10) + ["payload"] * (len(blob) - header_end)
    for i in range(3):
        (folder / f"ok{i}.npy").write_bytes(blob)

    def read():
        for split in ("train", "test"):
            load_dataset(f"volume:{folder}", split)

    fuzz_file("npy", blob, classes, (folder / "damaged.npy").write_bytes, read)


# -- the COIL-20 zip: local headers (header), central directory (index), compressed pictures (payload) ------------
def test_fuzz_coil_zip(tmp_path):
    from gon.data.coil import OBJECTS, POSES

    buffer = io.BytesIO()
    picture = io.BytesIO()
    Image.new("L", (128, 128), 90).save(picture, "PNG")  # a few hundred bytes: 1,440 of them make a small zip
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for obj in range(1, OBJECTS + 1):
            for pose in range(POSES):
                z.writestr(f"coil-20-proc/obj{obj}__{pose}.png", picture.getvalue())
    blob = buffer.getvalue()
    classes = ["payload"] * len(blob)
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        infos = z.infolist()
        directory = min(blob.index(b"PK\x01\x02"), len(blob))
        for info in infos:
            start = info.header_offset
            end = start + 30 + len(info.filename.encode()) + len(info.extra)
            classes[start:end] = ["header"] * (end - start)
    classes[directory:] = ["index"] * (len(blob) - directory)
    root = tmp_path / "coil"
    root.mkdir()

    def read():
        load_dataset("coil20", "test", data_dir=str(root), limit=1, image_size=32, download=False)

    fuzz_file("coil zip", blob, classes, (root / "coil-20-proc.zip").write_bytes, read)
