"""File names that are not UTF-8 (Linux allows any bytes but / and NUL): a folder dataset with such class folders
and files, a run directory with such a name, and every command on it.

Convention: paths are Python's ``os.fsdecode`` strings (the bytes that are not UTF-8 as lone surrogates); files
keep them exactly (``gon encode``'s npz: ``os.fsencode`` gives the bytes back); messages, printed notes, pictures
and report.html show such bytes as ``\\xNN``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gon
from gon.cli import main
from tests.helpers import GON, TINY

BAD = os.fsdecode(b"\xff\xfe")  # not UTF-8: '\udcff\udcfe'


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished 3-step run, named with bytes that are not UTF-8, of a folder whose class folders and files are too."""
    root = tmp_path_factory.mktemp("names")
    rng = np.random.default_rng(0)
    for label in (f"class{BAD}", "plain"):
        (root / "data" / label).mkdir(parents=True)
        for i in range(24):
            image = (255 * rng.random((16, 16))).astype(np.uint8)
            Image.fromarray(image).save(root / "data" / label / (f"img{BAD}{i}.png" if i % 2 else f"ok{i}.png"))
    out = root / f"run{BAD}"
    assert main(["fit", "--dataset", f"folder:{root / 'data'}", "--out", str(out), "--max-steps", "3", *TINY]) == 0
    return out


def test_a_run_on_non_utf8_names_trains_and_every_command_works(run, capsys):
    assert gon.load(run) is not None and (run / "loss_curves.png").is_file()
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_bytes().decode("utf-8")  # valid UTF-8: the name shown as \xff\xfe
    assert "run\\xff\\xfe" in page
    assert main(["encode", str(run), "--out", str(run / "latents.npz")]) == 0
    paths = np.load(run / "latents.npz")["paths"]
    assert any(BAD in p for p in paths)
    data = Path(gon.load(run).training_data["dataset"].removeprefix("folder:"))
    assert all((data / p).is_file() for p in paths)  # the exact names, found again on disk
    assert main(["sample", str(run), "-n", "4", "--out", str(run / f"s{BAD}.png")]) == 0
    assert main(["export", str(run), str(run / f"copy{BAD}")]) == 0
    assert gon.load(run / f"copy{BAD}").latent_gaussian is not None
    out = capsys.readouterr().out
    assert "s\\udcff\\udcfe.png" in out  # printed (Python's escape of the bytes), never raised


def test_messages_and_notes_print_non_utf8_names_in_any_locale(run, tmp_path):
    """A strict UTF-8 terminal (PYTHONIOENCODING=utf-8): notes and errors print, the bytes escaped."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    gon_cli = [str(GON)]
    done = subprocess.run(
        [*gon_cli, "sample", str(run), "-n", "2", "--out", str(run / f"t{BAD}.png")], env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"t\\udcff\\udcfe.png" in done.stdout
    missing = subprocess.run([*gon_cli, "sample", str(tmp_path / f"none{BAD}")], env=env, capture_output=True)
    assert missing.returncode == 2 and missing.stderr.strip().endswith(b"none\\xff\\xfe does not exist")
