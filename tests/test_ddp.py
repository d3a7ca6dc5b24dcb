"""`gon fit --accelerator cpu --devices 2 --strategy ddp`: two processes (gloo) against one.

--batch-size is the global batch: with 2 processes each takes half of it, so the two runs below
take the same optimiser steps over the same number of images, and their test losses agree.
"""

import json
import math
import os

import pytest
import torch

from gon.cli import main
from gon.data import load_dataset
from gon.metrics import reconstruction_metrics
from tests.helpers import TINY, blob_folder, run_gon_fit

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is needed",
)

# 96 images -> 86 train / 10 test; global batch 16 -> 5 steps per epoch (10 if each process saw every image)
RUN = ["--batch-size", "16", "--lr", "2e-3", "--max-epochs", "3", "--accelerator", "cpu", "--seed", "0"]
STEPS = 15


def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path):
    dataset = blob_folder(tmp_path / "blobs")
    common = ["--dataset", dataset, *TINY, *RUN]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MASTER_PORT", "MASTER_ADDR", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK")
    }
    code, out = run_gon_fit("--out", str(tmp_path / "ddp"), "--devices", "2", "--strategy", "ddp", *common, env=env)
    assert code == 0, out[-4000:]
    assert "Starting with 2 processes" in out or "MEMBER: 2/2" in out  # really two processes
    assert main(["fit", "--out", str(tmp_path / "single"), "--devices", "1", *common]) == 0
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    single = json.loads((tmp_path / "single" / "metrics.json").read_text())

    # the sampler splits the data: 5 steps per epoch, as with one process at the same global batch
    assert ddp["steps"] == single["steps"] == STEPS
    # same global batch, same steps: the same test loss within 5%
    assert abs(ddp["test_sse"] - single["test_sse"]) <= 0.05 * single["test_sse"], (ddp, single)

    # its checkpoint loads in one process and gives the figures rank 0 reported
    import gon.models.loading
    import gon.models.pretrained

    model = gon.models.loading.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt")
    test = load_dataset(dataset, "test", image_size=16)
    assert math.isclose(reconstruction_metrics(model, test.images)["sse"], ddp["test_sse"], rel_tol=1e-5)

    # metrics are reduced across processes: the last logged test MSE (each rank saw 5 of the 10 test
    # images) equals rank 0's final evaluation over all 10 with the same weights
    rows = (tmp_path / "ddp" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    logged = [r.split(",")[header.index("test/mse")] for r in rows[1:]]
    assert math.isclose(float([v for v in logged if v][-1]), ddp["test_mse"], rel_tol=1e-5)
    # only rank 0 writes: one log directory, one set of checkpoints
    assert [p.name for p in (tmp_path / "ddp" / "logs").iterdir()] == ["version_0"]
    print(
        f"DDP 2 processes: test SSE {ddp['test_sse']:.4f}; 1 process: {single['test_sse']:.4f} "
        f"({100 * (ddp['test_sse'] / single['test_sse'] - 1):+.2f}%) after {STEPS} steps at global batch 16"
    )


def test_a_batch_that_does_not_split_evenly_is_refused(tmp_path, capsys):
    code = main(
        [
            "fit",
            "--out",
            str(tmp_path / "r"),
            "--dataset",
            blob_folder(tmp_path / "blobs", n=24),
            *TINY,
            "--devices",
            "2",
            "--strategy",
            "ddp",
            "--accelerator",
            "cpu",
            "--max-steps",
            "1",
            "--batch-size",
            "15",
        ]
    )
    assert code == 2  # refused before any process is started
    assert "--batch-size 15 is the global batch; it must divide evenly among the 2 processes" in capsys.readouterr().err
