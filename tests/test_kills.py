"""SIGKILL and SIGTERM at random moments of `gon export --overwrite` and `gon report`: the previous artifact
always still loads, and no temporary file outlives the next clean run (the kills of `gon fit` are in test_faults,
its SIGTERMs in test_faults_sigterm). A SIGTERM exits 143 with one line.

Each command runs in a loop in one process, killed at a random moment after its first pass, so the kill
lands anywhere in a write. The seed is random per run and printed; set GON_FAULT_SEED to replay.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gon
from gon.cli import main
from tests.helpers import FASHION_MNIST, tiny_model
from tests.test_cli_fit import TINY_RUN, fit

KILLS = {"export": 8, "report": 7}  # with test_faults' 5 kills of gon fit: 20 per suite run
TERMS = 2  # SIGTERMs per command
LOOP = (
    "import sys\nfrom gon.cli import main\n"
    "while not (code := main(sys.argv[1:])):\n    print('done', flush=True)\nsys.exit(code)"
)


@pytest.fixture(scope="module")
def rng():
    seed = int(os.environ.get("GON_FAULT_SEED", random.randrange(2**32)))
    print(f"kill test seed {seed} (GON_FAULT_SEED={seed} replays it)")
    return random.Random(seed)


def kill_at_random(args: list[str], rng: random.Random, sig: int = signal.SIGKILL) -> None:
    """Start `gon ARGS` in a loop, wait for a first pass, send ``sig`` at a random moment of a later one."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LOOP, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        started = time.monotonic()
        for line in proc.stdout:  # the command's own notes, then the loop's "done"
            if line.strip() == "done":
                break
        else:
            raise AssertionError(f"gon {' '.join(args)} failed before its first pass")
        first = time.monotonic() - started
        time.sleep(rng.uniform(0, min(first, 2.0)))
        proc.send_signal(sig)
        out = proc.communicate(timeout=60)[0]
        if sig == signal.SIGTERM:
            assert proc.returncode == 143 and out.splitlines()[-1].startswith("gon: stopped by SIGTERM"), out[-2000:]
    finally:
        proc.kill()
        proc.wait()


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*") if p.name.endswith((".tmp", ".old", ".replaced"))]


def test_sigkill_during_export_overwrite_always_leaves_a_loadable_model(tmp_path, rng):
    source = tiny_model("gon", width=32, latent_dim=32, image_size=32).save_pretrained(tmp_path / "source")
    target = tmp_path / "out" / "model"
    target.parent.mkdir()
    assert main(["export", str(source), str(target)]) == 0
    expected = gon.load(source).state_dict()
    for sig in [signal.SIGKILL] * KILLS["export"] + [signal.SIGTERM] * TERMS:
        kill_at_random(["export", str(source), str(target), "--overwrite"], rng, sig)
        model = gon.load(target)  # never a half-written model
        assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
    assert main(["export", str(source), str(target), "--overwrite"]) == 0
    assert leftovers(target.parent) == []


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_sigkill_during_report_leaves_the_run_loadable_and_no_half_page(tmp_path, rng):
    run = tmp_path / "run"
    assert fit("--max-steps", "2", "--out", str(run), *TINY_RUN) == 0
    for sig in [signal.SIGKILL] * KILLS["report"] + [signal.SIGTERM] * TERMS:
        kill_at_random(["report", str(run)], rng, sig)
        assert gon.load(run) is not None
        page = (run / "report.html").read_text()
        assert page.rstrip().endswith("</html>"), "report.html was left half-written"
    assert main(["report", str(run)]) == 0  # takes over the lock the last kill left
    assert leftovers(run) == [] and not (run / "gon.lock").exists()
