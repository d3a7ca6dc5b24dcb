"""The run lock (gon.lock): one writer per run directory, the holder named, stale locks taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gon.core.errors import GonError
from gon.storage.lock import LOCK_NAME, holder_of, run_lock

#: a process that holds the lock of sys.argv[1] until killed
HOLD = "\n".join(
    [
        "import sys, time",
        "from gon.storage.lock import run_lock",
        "with run_lock(sys.argv[1]):",
        " print('held', flush=True)",
    ]
    + [" time.sleep(60)"]
)


@pytest.fixture
def held(tmp_path):
    """``tmp_path`` locked by another process."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_writer_gets_one_line_naming_the_holder(tmp_path, held):
    with pytest.raises(GonError, match=rf"in use by gon process {held.pid} on \S+ \(since "):
        with run_lock(tmp_path):
            pass
    assert str(held.pid) in holder_of(tmp_path)


def test_a_stale_lock_of_a_dead_process_is_reported_and_taken_over(tmp_path, held, capsys):
    held.kill()
    held.wait()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == held.pid  # the dead holder's record
    assert holder_of(tmp_path) is None
    with run_lock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert f"taking over the stale lock of {tmp_path}: process {held.pid}" in capsys.readouterr().err
    assert not (tmp_path / LOCK_NAME).exists()  # a clean stop leaves no lock file


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with run_lock(tmp_path), run_lock(tmp_path, "report"):
        assert holder_of(tmp_path) is None  # this process: not someone else
    assert not (tmp_path / LOCK_NAME).exists()
