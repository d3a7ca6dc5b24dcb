"""SIGTERM at every moment of `gon fit`: while starting (imports), while reading the dataset, once the run
directory is locked and Lightning sets up, and during training (test_faults sends SIGINT and SIGTERM there;
test_kills sends SIGTERM to `gon export --overwrite` and `gon report`).

Convention: a signal exits 128 + its number (143 for SIGTERM, 130 for Ctrl-C / SIGINT) after one line saying
what was kept. Before training started nothing is written: a new run directory is removed, an --overwrite'd
run is put back, a --resume'd run is untouched. The moments are found by watching the process, no hooks:
``/proc/PID/fd`` shows the dataset's images open while it reads them, and the run's lock file once it is locked.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from gon.storage.checkpoints import read_checkpoint
from tests.helpers import TINY, blob_folder, gon_fit

EVERY_STEP = ["--checkpoint-every", "1", "--max-steps", "100000"]
BEFORE = re.compile(r"^gon: stopped by SIGTERM (while starting|before training started); nothing was written", re.M)
DURING = re.compile(r"^gon: training stopped by SIGTERM at step (\d+); checkpoint saved to \S+", re.M)


@pytest.fixture(scope="module")
def slow_dataset(tmp_path_factory):
    """Enough images (64x64, resized to 16) for reading them to take a while, so the test can catch it."""
    return blob_folder(tmp_path_factory.mktemp("blobs"), n=600, size=64)


def open_files(pid: int) -> list[str]:
    """The files the process has open now (``/proc/PID/fd``)."""
    names = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            names.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile
            pass
    return names


def terminate_when(proc, opened: str, timeout: float = 180) -> None:
    """SIGTERM the process the moment it has a file under ``opened`` open."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if any(name.startswith(opened) for name in open_files(proc.pid)):
                proc.send_signal(signal.SIGTERM)
                return
        except FileNotFoundError:  # the process has just exited
            break
    raise AssertionError(f"gon fit never opened {opened} (exit {proc.poll()}):\n{proc.communicate()[0][-3000:]}")


def finish(proc) -> str:
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    return out


def leftovers(folder: Path) -> list[str]:
    """Temporary files, moved-aside runs and locks anywhere below ``folder``."""
    return [p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".replaced")) or p.name == "gon.lock"]


def test_sigterm_while_starting_writes_nothing(tmp_path, slow_dataset):
    run = tmp_path / "run"
    proc = gon_fit("--dataset", slow_dataset, "--out", str(run), *TINY)
    time.sleep(0.5)  # past the interpreter's start, in gon's imports
    proc.send_signal(signal.SIGTERM)
    assert BEFORE.search(finish(proc))
    assert not run.exists() and leftovers(tmp_path) == []


def test_sigterm_while_reading_the_dataset_leaves_every_run_as_it_was(tmp_path, slow_dataset):
    folder = slow_dataset.removeprefix("folder:")
    run = tmp_path / "run"
    command = ["--dataset", slow_dataset, "--out", str(run), *TINY, *EVERY_STEP]

    proc = gon_fit(*command)  # a new run: no directory is left behind
    terminate_when(proc, folder)
    assert "before training started; nothing was written" in finish(proc)
    assert not run.exists() and leftovers(tmp_path) == []

    proc = gon_fit(*command)  # a run with a checkpoint, for --overwrite and --resume
    while not (run / "checkpoints" / "last.ckpt").is_file():
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    step = int(DURING.search(finish(proc)).group(1))
    before = sorted(p.relative_to(run) for p in run.rglob("*"))

    for again in (["--overwrite"], ["--resume"]):
        proc = gon_fit(*command, *again)
        terminate_when(proc, folder)
        out = finish(proc)
        assert f"before training started; nothing was written; {run} is as it was" in out, out[-3000:]
        assert sorted(p.relative_to(run) for p in run.rglob("*")) == before, again
        assert read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == step
        assert leftovers(tmp_path) == []


def test_sigterm_once_the_run_is_locked_either_writes_nothing_or_saves_a_checkpoint(tmp_path, slow_dataset):
    """Between locking the run and the first step (model on the device, Lightning's set-up, the data loaders)
    the signal lands before or just after training starts: either way one line says which, and it is true."""
    run = tmp_path / "run"
    proc = gon_fit("--dataset", slow_dataset, "--out", str(run), *TINY, *EVERY_STEP)
    terminate_when(proc, str(run / "gon.lock"))
    out = finish(proc)
    if BEFORE.search(out):
        assert not run.exists()
    else:
        step = int(DURING.search(out).group(1))
        assert read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == step
    assert leftovers(tmp_path) == []
