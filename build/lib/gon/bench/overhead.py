"""What ``gon fit`` (Lightning, logging, checkpoint callbacks) adds to a training step, against a bare
PyTorch loop on the same model, data loader and optimiser.

The fit cost per step is the difference of two real ``gon fit`` runs, ``warm`` and ``warm + timed``
steps long, divided by ``timed``; each run's training time is the ``train_seconds`` that fit
writes to metrics.json (``trainer.fit`` alone, so the start-up, the final evaluation and the
report cancel or are left out). The bare loop runs ``timed`` steps after ``warm`` warm-up steps,
once before and once after the fit runs (the mean of the two), so a changing background load
shows in both. Both take the same step (:class:`gon.training.graphs.GraphedStep`: one CUDA graph on a GPU
unless ``cuda_graphs`` is off, eager on a CPU) at the same CPU thread count.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from gon.training.config import FitConfig
from gon.training.loop import train_loop, training_step

BIG = 10**9  # "never" for checkpoint and picture intervals


def _fit_seconds(config: FitConfig) -> float:
    from gon.training.trainer import fit

    with contextlib.redirect_stdout(io.StringIO()):  # fit's progress bar and summary line would break the tables
        run = fit(config)
    return float(json.loads((run / "metrics.json").read_text())["train_seconds"])


def _bare_seconds(config: FitConfig, warm: int, timed: int, device: torch.device) -> float:
    """Seconds for ``timed`` steps of a plain loop, after ``warm`` steps, on fit's own data loader and model."""
    from gon.models.registry import build, image_size
    from gon.training.data import GonDataModule

    data = GonDataModule(config, image_size(config.model, 28, config.image_size))
    data.setup()
    torch.manual_seed(config.seed)
    model = build(config.model, data.train, **config.model_options).to(device).train()
    step = training_step(model, config.lr, device, cuda_graphs=config.cuda_graphs, log=None)  # as gon fit runs it
    batches = ({"x": x.to(device), "label": y.to(device), "index": i.to(device)} for x, y, i in data.train_dataloader())
    train_loop(step, batches, steps=warm)
    return train_loop(step, batches, steps=timed)[1]


def run_overhead(
    models: list[str],
    batch: int,
    warm: int,
    timed: int,
    device: torch.device,
    model_options: dict[str, dict] | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    rows = []
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    with tempfile.TemporaryDirectory(prefix="gon-bench-") as tmp:
        for name in models:

            def config(steps: int) -> FitConfig:
                return FitConfig(
                    model=name,
                    batch_size=batch,
                    max_steps=steps,
                    limit_train=batch * (warm + timed + 2),
                    out=str(Path(tmp) / name),
                    overwrite=True,
                    accelerator=accelerator,
                    devices="1",
                    checkpoint_every=BIG,
                    picture_every=BIG,
                    val_size=batch,
                    threads=torch.get_num_threads() if device.type == "cpu" else None,  # the bare loop's
                    model_options=(model_options or {}).get(name, {}),
                )

            log(f"  {name}: bare loop, {warm} + {timed} steps")
            bare = _bare_seconds(config(warm + timed), warm, timed, device)
            log(f"  {name}: gon fit, {warm} steps and {warm + timed} steps")
            fit_warm = _fit_seconds(config(warm))
            fit_long = _fit_seconds(config(warm + timed))
            bare = (bare + _bare_seconds(config(warm + timed), warm, timed, device)) / 2
            fit_step, bare_step = (fit_long - fit_warm) / timed, bare / timed
            rows.append(
                {
                    "name": name,
                    "batch": batch,
                    "timed_steps": timed,
                    "bare_step_ms": 1000 * bare_step,
                    "fit_step_ms": 1000 * fit_step,
                    "overhead": fit_step / bare_step - 1,
                }
            )
            log(
                f"  {name}: bare {1000 * bare_step:.1f} ms/step, fit {1000 * fit_step:.1f} ms/step "
                f"({100 * (fit_step / bare_step - 1):+.1f}%)"
            )
    return rows
