"""Hostile inputs (issue 25): no output flag writes over what it does not own, absurd counts and damaged files are
one line and exit 2, a full or read-only disk loses nothing."""

from __future__ import annotations

import json

import pytest

from gon.cli import main
from tests.helpers import FASHION_MNIST

needs_data = pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")

TINY_IMPLICIT = [
    "--model",
    "implicit",
    "--limit-train",
    "128",
    "--batch-size",
    "32",
    "--val-size",
    "64",
    "--image-size",
    "16",
    "--latent-dim",
    "8",
    "--hidden",
    "16",
    "--depth",
    "2",
    "--checkpoint-every",
    "3",
    "--picture-every",
    "3",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny implicit GON run (2 steps): checkpoints, config, saved model, pictures."""
    if not FASHION_MNIST.is_dir():
        pytest.skip("needs apt-get install dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("reliability") / "run"
    assert main(["fit", "--max-steps", "2", "--out", str(out), *TINY_IMPLICIT]) == 0
    return out


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert all(n in err for n in needles), err
    return err


# -- (1) output flags -----------------------------------------------------------------------------------------
COMMANDS = {
    "evaluate": ["--limit", "8"],
    "sample": ["-n", "4"],
    "reconstruct": ["-n", "4"],
    "interpolate": ["--pairs", "1", "--steps", "3"],
    "render": ["-n", "2", "--resolution", "32"],
    "encode": ["--limit", "8"],
}
RUN_FILES = ["checkpoints/last.ckpt", "config.yaml", "model/config.json", "model/model.safetensors", "recon.png"]


@needs_data
@pytest.mark.parametrize("command", [*COMMANDS, "report"])
@pytest.mark.parametrize("target", RUN_FILES)
def test_no_output_flag_writes_over_a_runs_own_files(run, capsys, command, target):
    """gon evaluate --out RUN/checkpoints/last.ckpt wrote its JSON there (exit 0) and broke --resume."""
    before = snapshot(run)
    assert main([command, str(run), "--out", str(run / target), *COMMANDS.get(command, [])]) == 2
    one_line_error(capsys, target.split("/")[-1])
    assert snapshot(run) == before


@needs_data
def test_an_output_flag_refuses_an_arbitrary_file_and_replaces_its_own_kind(run, tmp_path, capsys):
    notes = tmp_path / "notes.json"
    notes.write_text('{"chapter": 1}\n')
    assert main(["evaluate", str(run), "--limit", "8", "--out", str(notes)]) == 2
    one_line_error(capsys, "notes.json", "not an evaluation")
    assert notes.read_text() == '{"chapter": 1}\n'
    text = tmp_path / "photo.png"
    text.write_text("not a picture")
    assert main(["sample", str(run), "-n", "4", "--out", str(text)]) == 2
    one_line_error(capsys, "photo.png", "not a picture")
    assert text.read_text() == "not a picture"
    out = tmp_path / "evaluation.json"
    for _ in range(2):  # a second evaluate replaces the first one's file
        assert main(["evaluate", str(run), "--limit", "8", "--out", str(out)]) == 0
        assert json.loads(out.read_text())["images"] == 8
    assert main(["evaluate", str(run), "--limit", "8"]) == 0  # the default, inside the run, is its own
    assert (run / "evaluation-fashion-mnist-test.json").is_file()


@needs_data
def test_export_refuses_a_folder_that_is_not_a_saved_model_before_any_work(run, capsys):
    before = snapshot(run)
    assert main(["export", str(run / "checkpoints" / "last.ckpt"), str(run), "--overwrite"]) == 2
    one_line_error(capsys, "not a gon saved model")
    assert snapshot(run) == before


def test_an_output_name_too_long_for_the_temporary_file_is_refused_before_work(tmp_path, capsys):
    name = "x" * 245 + ".png"  # fits NAME_MAX (255) but not with gon's ".NAME.<12 hex>.tmp"
    assert main(["sample", str(tmp_path / "no-model"), "--out", str(tmp_path / name)]) == 2
    one_line_error(capsys, "too long")


# -- (2) absurd counts, huge numbers ------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--num-workers", "--threads"])
def test_process_and_thread_counts_are_bounded_by_the_machine_before_anything_starts(tmp_path, capsys, flag):
    """--num-workers 1000000 was a fork bomb, --threads 100000 a SIGSEGV that left a half-made run locked."""
    from gon.training.threads import core_count

    run = tmp_path / "run"
    assert main(["fit", flag, "1000000", "--max-steps", "1", "--out", str(run)]) == 2
    one_line_error(capsys, flag, f"must be <= {core_count()}", "CPUs")
    assert not run.exists()


@pytest.mark.parametrize(
    "text,culprit",
    [
        ("max_steps: " + "9" * 400 + "\n", "400 digits"),  # hung gon fit --config (it trained "forever")
        ("max_steps: " + "9" * 5000 + "\n", "5000 digits"),  # Python's int limit: a traceback
        ("lr: 0.1\nlr: 0.2\n", "key 'lr' is given twice"),  # the last one was taken silently
    ],
)
def test_yaml_numbers_are_bounded_before_conversion_and_keys_given_once(tmp_path, capsys, text, culprit):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    assert main(["fit", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    one_line_error(capsys, "c.yaml", culprit)
    assert not (tmp_path / "run").exists()


def test_json_integers_are_bounded_before_conversion(tmp_path):
    from gon.core.errors import GonError
    from gon.core.validate import read_json_capped

    path = tmp_path / "config.json"
    path.write_text('{"steps": ' + "7" * 4000 + "}")
    with pytest.raises(GonError, match="4000 digits"):
        read_json_capped(path, "saved-model config")


# -- (3) readers that check before they allocate or map ---------------------------------------------------------
def idx(path, dims, payload):
    path.write_bytes(bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload)


def mnist_folder(root, width=28, labels=b"\x03"):
    root.mkdir()
    for split in ("train", "t10k"):
        idx(root / f"{split}-images-idx3-ubyte", [1, 1, width], bytes(width))
        idx(root / f"{split}-labels-idx1-ubyte", [len(labels)], labels)
    return root


def test_a_tiny_idx_file_declaring_very_wide_images_is_refused_before_the_resize(tmp_path):
    """A few hundred bytes declaring 1x60000 images made the resize build a 14 GB matrix."""
    from gon.core.errors import GonError
    from gon.data import load_dataset

    root = mnist_folder(tmp_path / "mnist", width=60000)
    with pytest.raises(GonError, match="60000 pixels"):
        load_dataset("mnist", "test", data_dir=str(root), image_size=32, download=False)


def test_mnist_labels_outside_its_classes_are_refused(tmp_path):
    from gon.core.errors import GonError
    from gon.data import load_dataset

    root = mnist_folder(tmp_path / "mnist", labels=b"\x0c")
    with pytest.raises(GonError, match="labels range from 12 to 12"):
        load_dataset("mnist", "test", data_dir=str(root), download=False)


def test_the_resize_matrix_is_the_same_built_in_blocks():
    import torch
    import torch.nn.functional as F

    from gon.data.base import RESIZE_BLOCK, _resize_matrix

    for src, dst in [(28, 16), (28, 64), (1, 8), (RESIZE_BLOCK + 5, 40)]:
        eye = torch.eye(src)[None, None]
        whole = F.interpolate(eye, size=(dst, src), mode="bilinear", align_corners=False, antialias=dst < src)[0, 0]
        assert torch.equal(_resize_matrix(src, dst), whole)


def test_a_truncated_lmdb_is_one_line_not_sigbus(tmp_path, capsys):
    """gon fit on a truncated LMDB died of SIGBUS (exit 135)."""
    import io

    import numpy as np
    from PIL import Image

    lmdb = pytest.importorskip("lmdb")
    env = lmdb.open(str(tmp_path / "db"), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i in range(60):
            buffer = io.BytesIO()
            Image.fromarray(np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buffer, "PNG")
            txn.put(b"%04d" % i, buffer.getvalue())
    env.close()
    data = tmp_path / "db" / "data.mdb"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    run = tmp_path / "run"
    assert main(["fit", "--model", "implicit", "--dataset", f"lmdb:{tmp_path / 'db'}", "--out", str(run)]) == 2
    one_line_error(capsys, "truncated")
    assert not (tmp_path / "run").exists()


def test_a_volume_folder_with_a_damaged_npy_header_is_one_line(tmp_path):
    import numpy as np

    from gon.core.errors import GonError
    from gon.data import load_dataset

    for i in range(4):
        np.save(tmp_path / f"v{i}.npy", np.zeros((4, 4, 4), np.float32))
    blob = (tmp_path / "v1.npy").read_bytes()
    (tmp_path / "v1.npy").write_bytes(blob[:10] + b"\xff" * 20 + blob[30:])  # numpy's header parser: TokenError
    with pytest.raises(GonError, match="v1.npy: its .npy header is damaged"):
        for split in ("train", "test"):
            load_dataset(f"volume:{tmp_path}", split)


# -- (4) full and read-only disks -----------------------------------------------------------------------------
def test_the_locks_first_write_failing_leaves_no_empty_lock(tmp_path, monkeypatch):
    """On a full disk the lock's first write raised a traceback and left an empty gon.lock."""
    import errno
    import os

    from gon.core.errors import GonError
    from gon.storage import lock

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock.os, "pwrite", full)
    with pytest.raises(GonError, match="gon.lock: No space left on device"):
        with lock.run_lock(tmp_path):
            pass
    monkeypatch.undo()
    assert not (tmp_path / "gon.lock").exists() and os.listdir(tmp_path) == []


def test_a_failing_clean_up_does_not_hide_the_real_error(tmp_path, monkeypatch):
    """On a read-only disk atomic.py's clean-up raised inside ``finally`` and hid the real error behind a traceback."""
    import errno
    import os
    from pathlib import Path

    from gon.core.errors import GonError
    from gon.storage import atomic

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(atomic.os, "open", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(GonError, match="out.json: Read-only file system; the previous version"):
        atomic.write_text(tmp_path / "out.json", "{}")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_a_full_disk_names_the_path_and_the_space_needed(tmp_path, monkeypatch):
    import errno

    from gon.core.errors import GonError
    from gon.storage import atomic

    target = tmp_path / "samples.png"
    target.write_bytes(b"before")

    def fill(f):
        f.write(b"x" * 300_000)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(GonError, match=r"samples.png: No space left on device \(the disk has .* free, it needed at"):
        atomic.atomic_write(target, fill)
    assert target.read_bytes() == b"before" and [p.name for p in tmp_path.iterdir()] == ["samples.png"]


@pytest.fixture
def small_disk(tmp_path):
    """A real 3 MB tmpfs mounted for the test (skipped where mounting is not allowed)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@needs_data
def test_a_full_then_read_only_small_disk_is_one_line_and_loses_nothing(run, small_disk, capsys):
    import shutil
    import subprocess

    copy = small_disk / "run"
    shutil.copytree(run, copy)
    new = small_disk / "new"
    assert main(["fit", "--max-steps", "2", "--out", str(new), *TINY_IMPLICIT]) == 2  # 3 MB: less than it needs
    one_line_error(capsys, "not enough free space", "MiB needed")
    assert not new.exists()
    (small_disk / "fill").write_bytes(bytes(shutil.disk_usage(small_disk).free))  # full to the last block
    commands = [
        ["fit", "--resume", "--max-steps", "4", "--out", str(copy)],
        ["report", str(copy)],
        ["evaluate", str(copy), "--limit", "8"],
        ["sample", str(copy), "-n", "4", "--out", str(small_disk / "s.png")],
        ["encode", str(copy), "--limit", "8", "--out", str(small_disk / "l.npz")],
        ["render", str(copy), "-n", "2", "--resolution", "32", "--out", str(small_disk / "r.png")],
        ["export", str(copy), str(small_disk / "exported")],
    ]
    for read_only in (False, True):
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        before = snapshot(copy)
        for command in commands:
            assert main(command) == 2, command
            one_line_error(capsys, str(small_disk))
        assert snapshot(copy) == before
        assert sorted(p.name for p in small_disk.iterdir()) == ["fill", "run"]


# -- (5) damaged run files ------------------------------------------------------------------------------------
@needs_data
def test_report_carries_on_without_a_damaged_metrics_row_or_record_naming_file_and_line(run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    log = copy / "logs" / "version_0" / "metrics.csv"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([*lines[:2], "garbage,row,!!", "1,2,3,4,5", *lines[2:]]) + "\n")
    (copy / "provenance.json").write_text('{"sessions": [')
    assert main(["report", str(copy)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "metrics.csv:3: not a number: 'garbage'; carrying on without it" in err
    assert "metrics.csv:4: its number of fields differs from the header's" in err
    assert "provenance.json: " in err and (copy / "report.html").is_file()


@needs_data
def test_resume_refuses_nan_weights_and_another_runs_checkpoint(run, tmp_path, capsys):
    import shutil

    import torch

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    last = copy / "checkpoints" / "last.ckpt"
    shutil.copy(last, copy / "checkpoints" / "last.ckpt.orig")
    state = torch.load(last, weights_only=True)
    name = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
    state["state_dict"][name][...] = float("nan")
    torch.save(state, last)
    assert main(["fit", "--resume", "--max-steps", "4", "--out", str(copy)]) == 2
    one_line_error(capsys, "last.ckpt", name, "NaN")  # was: accepted, then "a lower --lr may help"
    state = torch.load(copy / "checkpoints" / "last.ckpt.orig", weights_only=True)
    state["hyper_parameters"].update(model="gon", model_options={"latent_dim": 8, "width": 4, "image_size": 16})
    torch.save(state, last)  # as a conv GON run's last.ckpt copied in
    before = snapshot(copy)
    assert main(["fit", "--resume", "--max-steps", "4", "--out", str(copy)]) == 2  # was: resumed as a GON
    one_line_error(capsys, "holds a 'gon' model but the run is a 'implicit'")
    assert snapshot(copy) == before


def test_a_float_picture_of_nan_is_refused_where_it_enters():
    import numpy as np
    from PIL import Image

    from gon.data.folder import deep_gray

    with pytest.raises(ValueError, match="NaN"):
        deep_gray(Image.fromarray(np.full((4, 4), np.nan, np.float32), "F"))


def test_a_decode_error_names_the_picture_not_a_python_object():
    from gon.core.errors import GonError
    from gon.data.encoded import decode

    with pytest.raises(GonError) as error:
        decode(b"garbage", 8, True, "db:key1")
    assert "db:key1" in str(error.value) and "BytesIO" not in str(error.value)


# -- (7) seeded runs reproduce ---------------------------------------------------------------------------------
SEEDED = ["--model", "implicit", "--hidden", "32", "--depth", "2", "--latent-dim", "8", "--coord-fraction", "0.25"]
SEEDED += ["--image-size", "16", "--batch-size", "8", "--limit-train", "64", "--val-size", "16", "--val-every", "3"]
SEEDED += ["--lr", "2e-3", "--seed", "5", "--picture-every", "1000000", "--accelerator", "cpu", "--threads", "1"]


def test_a_seeded_fit_at_a_pinned_thread_count_is_bitwise_the_same_when_the_load_changes_mid_run(tmp_path):
    """Load changes step times, not numbers: a run beside a CPU-burning neighbour that starts mid-run gives the metrics
    CSV, test figures and weights of a run on a quiet machine, bit for bit. (The thread count and --resume do change
    the low bits: README, "Seeded runs".)"""
    import subprocess
    import sys
    import threading

    from gon.storage.checkpoints import read_checkpoint
    from tests.helpers import blob_folder

    dataset = blob_folder(tmp_path / "blobs")
    quiet, loaded = tmp_path / "quiet", tmp_path / "loaded"
    assert main(["fit", "--dataset", dataset, "--out", str(quiet), "--max-steps", "8", *SEEDED]) == 0
    burners = []
    starter = threading.Timer(1.0, lambda: burners.append(subprocess.Popen([sys.executable, "-c", "while 1: pass"])))
    starter.start()  # the load changes under the run, a second in
    try:
        assert main(["fit", "--dataset", dataset, "--out", str(loaded), "--max-steps", "8", *SEEDED]) == 0
    finally:
        starter.cancel()
        for burner in burners:
            burner.kill()
            burner.wait()
    assert (quiet / "metrics.csv").read_bytes() == (loaded / "metrics.csv").read_bytes()
    figures = [
        {k: v for k, v in json.loads((r / "metrics.json").read_text()).items() if not k.endswith("seconds")}
        for r in (quiet, loaded)
    ]
    assert figures[0] == figures[1] and "test_mse" in figures[0]
    wa, wb = (read_checkpoint(r / "checkpoints" / "last.ckpt")["state_dict"] for r in (quiet, loaded))
    assert wa.keys() == wb.keys() and all(wa[k].equal(wb[k]) for k in wa)


def test_provenance_records_the_cpu_seeded_figures_depend_on():
    from gon.training.provenance import cpu, provenance

    assert provenance()["cpu"] == cpu() and cpu().strip()


@pytest.mark.parametrize(
    "command",
    [
        ["fit", "--max-steps", "1", "--out", "d/" * 2100 + "run"],  # longer than PATH_MAX: was a traceback
        ["fit", "--max-steps", "1", "--out", "q" * 256],
        ["report", "run", "--out", "x" * 300 + ".html"],
        ["sample", "run", "--out", "x/" * 2100 + "a.png"],
    ],
)
def test_paths_too_long_for_the_system_are_refused_before_work(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    one_line_error(capsys, "too long")
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_safetensors_header_is_named_as_damage_not_missing_weights(tmp_path):
    """A corrupt header (its SHA-256 updated to match, as a tool rewriting the file would) was reported as
    'missing <first weight>'."""
    import hashlib

    import gon
    from gon.core.errors import GonError
    from tests.helpers import tiny_model

    folder = tiny_model("gon", image_size=16).save_pretrained(tmp_path / "model")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8] = ord("X")  # the JSON header's first byte
    weights.write_bytes(bytes(data))
    config = json.loads((folder / "config.json").read_text())
    config["weights_sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(GonError, match="header is not readable, the file is damaged") as error:
        gon.load(folder)
    assert "missing" not in str(error.value)
