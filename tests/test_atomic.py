"""Atomic writes (gon.storage.atomic): a failed or killed write leaves the previous file, no temp file, the umask."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from gon.core.errors import GonError
from gon.storage.atomic import TEMP_SUFFIX, atomic_write, recover_directory, replace_directory, temp_sibling, write_text
from gon.storage.checkpoints import save_checkpoint


def temp_files(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX) or ".old" in p.name]


def test_a_failing_write_keeps_the_previous_file_and_leaves_no_temp_file(tmp_path):
    path = write_text(tmp_path / "metrics.json", "old")

    def fail_half_way(f):
        f.write(b"half of the new")
        raise OSError(28, "No space left on device")

    with pytest.raises(GonError, match=r"cannot write .*metrics.json: No space left on device"):
        atomic_write(path, fail_half_way)
    assert path.read_text() == "old"
    assert temp_files(tmp_path) == []


def test_torch_unexpected_pos_is_reported_as_a_write_failure_naming_the_file(tmp_path):
    path = tmp_path / "last.ckpt"

    class FullDisk:  # torch.save's zip writer turns a short write into RuntimeError("... unexpected pos ...")
        def write(self, data):
            raise RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter failed writing file")

    with pytest.raises(GonError, match="cannot write .*last.ckpt"):
        atomic_write(path, lambda f: torch.save({"x": torch.zeros(3)}, FullDisk()))
    save_checkpoint({"x": torch.zeros(3)}, path)
    assert torch.load(path, weights_only=True)["x"].shape == (3,)


def test_files_get_the_users_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "report.html", "<html></html>")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_stale_temp_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    stale = temp_sibling(tmp_path / "config.yaml")
    stale.write_text("killed half way")
    write_text(tmp_path / "config.yaml", "model: gon\n")
    assert temp_files(tmp_path) == []


def test_replace_directory_swaps_a_complete_new_directory_in(tmp_path):
    target = tmp_path / "model"
    replace_directory(target, lambda d: (d / "a").write_text("1"))
    replace_directory(target, lambda d: (d / "b").write_text("2"))
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert temp_files(tmp_path) == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_replace_directory_keeps_the_old_directory_when_building_fails(tmp_path):
    target = tmp_path / "model"
    replace_directory(target, lambda d: (d / "a").write_text("1"))

    def fail(d):
        (d / "half").write_text("x")
        raise OSError(28, "No space left on device")

    with pytest.raises(GonError, match="No space left on device"):
        replace_directory(target, fail)
    assert [p.name for p in target.iterdir()] == ["a"]
    assert temp_files(tmp_path) == []


def test_a_kill_between_the_two_renames_of_a_swap_is_undone(tmp_path):
    target = tmp_path / "model"
    replace_directory(target, lambda d: (d / "a").write_text("1"))
    os.rename(target, temp_sibling(target, ".old"))  # as a kill after "old aside", before "new in" leaves it
    recover_directory(target)
    assert (target / "a").read_text() == "1"
    assert temp_files(tmp_path) == []
