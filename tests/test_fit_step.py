"""gon fit trains through the one training step (gon.training.graphs.GraphedStep, eager on a CPU) under Lightning's
manual optimisation; checkpoints written while CPUs trained by Lightning's automatic optimisation still resume."""

from __future__ import annotations

import pytest
import torch

from gon.storage.checkpoints import read_checkpoint
from tests.helpers import FASHION_MNIST
from tests.test_cli_fit import TINY_RUN, fit

pytestmark = pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")

MANUAL = "epoch_loop.manual_optimization.optim_step_progress"
AUTOMATIC = "epoch_loop.automatic_optimization.optim_progress"


def as_automatic_optimisation_checkpoint(path) -> None:
    """Rewrite a checkpoint as gon fit wrote it on CPUs before: its steps counted by the automatic loop."""
    checkpoint = torch.load(path, weights_only=True)
    loops = checkpoint["loops"]["fit_loop"]
    steps = loops[MANUAL]
    loops[AUTOMATIC]["optimizer"]["step"] = steps
    loops[AUTOMATIC]["optimizer"]["zero_grad"] = {k: {**v, "started": v["completed"]} for k, v in steps.items()}
    loops[MANUAL] = {k: dict.fromkeys(v, 0) for k, v in steps.items()}
    torch.save(checkpoint, path)


def test_a_checkpoint_from_automatic_optimisation_resumes_at_its_step(tmp_path):
    run = tmp_path / "run"
    assert fit("--max-steps", "2", "--out", str(run), *TINY_RUN) == 0
    last = run / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["loops"]["fit_loop"][MANUAL]["total"]["completed"] == 2  # manual since this change
    as_automatic_optimisation_checkpoint(last)
    assert fit("--resume", "--out", str(run), "--max-steps", "3") == 0
    checkpoint = read_checkpoint(last)
    assert checkpoint["global_step"] == 3
    adam_steps = {float(s["step"]) for s in checkpoint["optimizer_states"][0]["state"].values()}
    assert adam_steps == {3.0}  # one more update, not three from a step counter started again at 0
