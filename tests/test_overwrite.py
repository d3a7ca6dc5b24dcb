"""Transactional --overwrite: everything is checked before the old run is touched, the old run is moved
aside (not deleted) until the new one has started, and gon only ever removes its own runs and models."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gon
from gon.cli import main
from tests.helpers import FASHION_MNIST
from tests.test_cli_fit import TINY_RUN, fit
from tests.test_lock import HOLD

pytestmark = pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run and a snapshot of its files."""
    run = tmp_path_factory.mktemp("overwrite") / "run"
    assert fit("--max-steps", "2", "--out", str(run), *TINY_RUN) == 0
    return run


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder):
    return [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]


@pytest.mark.parametrize(
    "bad,culprit",
    [
        (["--dataset", "fashion-mnsit"], "fashion-mnsit"),
        (["--dataset", "folder:/no/such/folder"], "/no/such/folder"),
        (["--width", "0"], "width"),
        (["--batch-size", "100000"], "batch-size"),
    ],
)
def test_a_failing_overwrite_leaves_the_old_run_intact(finished, capsys, bad, culprit):
    before = snapshot(finished)
    assert fit("--max-steps", "2", "--out", str(finished), "--overwrite", *TINY_RUN, *bad) == 2
    err = capsys.readouterr().err
    assert culprit in err and "Traceback" not in err
    assert snapshot(finished) == before
    assert leftovers(finished) == []


def test_overwrite_refuses_a_folder_that_is_not_a_gon_run(tmp_path, capsys):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "config.yaml").write_text("chapter: 1\n")  # a config.yaml alone does not make a run
    (thesis / "thesis.tex").write_text("\\\\documentclass{book}")
    assert fit("--max-steps", "2", "--out", str(thesis), "--overwrite", *TINY_RUN) == 2
    assert "is not a gon run" in capsys.readouterr().err
    assert sorted(p.name for p in thesis.iterdir()) == ["config.yaml", "thesis.tex"]


def test_overwrite_replaces_a_gon_run_and_leaves_nothing_aside(tmp_path):
    run = tmp_path / "run"
    assert fit("--max-steps", "2", "--out", str(run), *TINY_RUN) == 0
    assert fit("--max-steps", "3", "--out", str(run), "--overwrite", *TINY_RUN) == 0
    assert gon.load(run) is not None
    assert "max_steps: 3" in (run / "config.yaml").read_text()
    assert leftovers(run) == [] and not (run / "gon.lock").exists()


def test_a_run_in_use_is_neither_overwritten_resumed_nor_reported(finished, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(finished)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(finished)
        for command in (
            ["fit", "--max-steps", "2", "--out", str(finished), "--overwrite", *TINY_RUN],
            ["fit", "--max-steps", "4", "--out", str(finished), "--resume"],
            ["report", str(finished)],
        ):
            assert main(command) == 2
            assert f"in use by gon process {holder.pid}" in capsys.readouterr().err
        assert snapshot(finished) == before
    finally:
        holder.kill()
        holder.wait()


def test_export_overwrite_refuses_a_folder_that_is_not_a_saved_model(finished, tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep")
    assert main(["export", str(finished), str(notes), "--overwrite"]) == 2
    assert "not a gon saved model" in capsys.readouterr().err
    assert (notes / "todo.txt").read_text() == "keep"
