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
