"""The --resume contract: the model and its options come from the checkpoint; a flag that contradicts them
is an error naming the flag and both values; budgets, intervals and --lr may change and are honoured."""

from __future__ import annotations

import pytest
import torch
import yaml

from tests.helpers import FASHION_MNIST
from tests.test_cli_fit import TINY_RUN, fit

pytestmark = pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("resume") / "run"
    assert fit("--max-steps", "2", "--out", str(run), *TINY_RUN) == 0
    return run


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--model", "vgon"], "option model (--model) is 'vgon' but the run was trained with 'gon'"),
        (["--width", "8"], "option width (--width) is 8 but the run was trained with 4"),
        (["--latent-dim", "16"], "option latent_dim (--latent-dim) is 16 but the run was trained with 8"),
        (["--steps", "3"], "option steps (--steps) is 3 but the run was trained with 1"),
        (["--batch-size", "16"], "option batch_size (--batch-size) is 16 but the run was trained with 32"),
        (["--hidden", "64"], "has no option 'hidden'"),
    ],
)
def test_a_flag_contradicting_the_run_is_an_error_naming_both_values(run, capsys, flags, message):
    before = (run / "config.yaml").read_text()
    assert fit("--resume", "--out", str(run), "--max-steps", "4", *flags) == 2
    assert message in capsys.readouterr().err
    assert (run / "config.yaml").read_text() == before


def test_resume_honours_a_new_budget_and_learning_rate(run):
    assert fit("--resume", "--out", str(run), "--max-steps", "3", "--lr", "0.5", "--width", "4") == 0
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3
    assert [g["lr"] for g in checkpoint["optimizer_states"][0]["param_groups"]] == [0.5]
    assert yaml.safe_load((run / "config.yaml").read_text())["lr"] == 0.5
