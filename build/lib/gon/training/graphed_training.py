"""``gon fit``'s training step: the one step (:class:`gon.training.graphs.GraphedStep`) in Lightning's manual
optimisation.

:class:`GraphedTraining` is what :class:`gon.training.module.GonModule` runs per step on every device: the step (loss,
backward, Adam's update) is a :class:`gon.training.graphs.GraphedStep` called through Lightning's optimiser wrapper (so
Lightning counts the step, and checkpoints hold Adam's state as usual).

- **eager** (a CPU, DDP, ``--no-cuda-graphs``): backward is Lightning's ``manual_backward`` (its hooks run:
  the NaN guard :class:`gon.training.guards.StopOnNonFiniteLoss` stops before a bad step's update; under DDP the
  gradients are all-reduced), and each step's loss terms are logged (under DDP, their mean over processes).
- **one replayed CUDA graph** (``--cuda-graphs``, the default on a single GPU): nothing is read off the GPU per
  step: the loss terms are summed on the device and logged as their mean every ``log_every`` steps
  (metrics.csv and the progress bar), and the non-finite-loss flag is read at the same interval and before
  every checkpoint (:class:`gon.training.guards.NonFiniteLossError` then names the steps in between; a checkpoint never
  holds a state after a NaN).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gon.training.graphs import GraphedStep, log_line
from gon.training.guards import NonFiniteLossError, describe_checkpoint


class GraphedTraining:
    """The training step of a LightningModule whose ``model`` is a gon model; ``graphs``: as one CUDA graph."""

    def __init__(self, module, last_checkpoint=None, graphs: bool = True):
        self.module = module
        self.last_checkpoint = last_checkpoint
        self.graphs = graphs
        self.step_fn: GraphedStep | None = None
        self.sums: dict[str, Tensor] | None = None
        self.count = 0
        self.checked_step = 0  # the last step at which the losses were known to be finite

    def training_step(self, x: Tensor, fields: dict[str, Tensor]) -> None:
        module = self.module
        optimizer = module.optimizers()
        if self.step_fn is None:
            log = log_line if module.trainer.is_global_zero else None
            backward = module.manual_backward
            self.step_fn = GraphedStep(module.model, optimizer.optimizer, self.graphs, log=log, backward=backward)
        terms = optimizer.step(closure=lambda: self.step_fn(x, **fields))  # counts the step; the update is inside
        if not self.graphs:
            for name, value in terms.items():
                module.log(f"train/{name}", value, prog_bar=name == "loss", sync_dist=True)  # DDP: the mean
            return
        if self.sums is None:
            self.sums = {k: torch.zeros_like(v) for k, v in terms.items()}
        for k, v in terms.items():
            self.sums[k].add_(v)
        self.count += 1
        if module.global_step % module.trainer.log_every_n_steps == 0:  # the steps Lightning writes to its logger
            self.check_finite()
            for k, total in self.sums.items():
                module.log(f"train/{k}", total / self.count, prog_bar=k == "loss")
            self.sums, self.count = {k: torch.zeros_like(v) for k, v in terms.items()}, 0

    def check_finite(self) -> None:
        """Raise NonFiniteLossError if a loss since the start was NaN or infinite (one read off the GPU)."""
        step = self.module.global_step
        if self.step_fn is not None and self.step_fn.nonfinite_seen():
            last = describe_checkpoint(self.last_checkpoint) if self.last_checkpoint else "none"
            raise NonFiniteLossError(
                f"loss became NaN or infinite between steps {self.checked_step} and {step} (CUDA graphs check every "
                f"--log-every steps); last good checkpoint: {last}; "
                "a lower --lr may help"
            )
        self.checked_step = step
