"""The LightningModule of ``gon fit``: any registered model, trained by the one training step."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import lightning as L

from gon.models import per_image_sse
from gon.models.registry import build
from gon.training.graphed_training import GraphedTraining
from gon.training.graphs import TrainingAdam
from gon.training.loop import loss_arguments


class GonModule(L.LightningModule):
    """Trains any gon model on its own ``loss_terms`` through the one training step; evaluates test reconstructions.

    Every step is :class:`gon.training.graphs.GraphedStep` under Lightning's manual optimisation
    (:mod:`gon.training.graphed_training`):
    cuda_graphs: on a single CUDA device, replayed as one CUDA graph; elsewhere, and with False, eager.
    weight_decay, adam_eps: Adam's L2 penalty and epsilon, as the Lightning fork of the original code exposes them.
    """

    def __init__(
        self,
        model: str,
        model_options: dict[str, Any],
        lr: float = 1e-4,
        cuda_graphs: bool = True,
        weight_decay: float = 0.0,
        adam_eps: float = 1e-8,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = build(model, **model_options)
        self.lr, self.weight_decay, self.adam_eps = lr, weight_decay, adam_eps
        self.cuda_graphs = cuda_graphs
        self.automatic_optimization = False  # the step does its own backward and update
        self.step: GraphedTraining | None = None  # made with the optimiser, once the device is known
        self.last_checkpoint: Path | None = None  # named by the non-finite-loss error of graphed steps

    def training_step(self, batch, batch_idx):
        x, label, index = batch
        self.step.training_step(x, loss_arguments(self.model, {"x": x, "label": label, "index": index}))

    def validation_step(self, batch, batch_idx):
        x = batch[0]
        terms, x_hat = self.model.loss_and_reconstruction(x)
        sse = per_image_sse(x_hat, x)
        self.log("test/loss", terms["loss"], sync_dist=True)
        self.log("test/mse", sse.mean() / x[0].numel(), prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        graphs = self.cuda_graphs and self.device.type == "cuda"
        if graphs and self.trainer.world_size > 1:
            graphs = False
            if self.trainer.is_global_zero:
                print(
                    "gon: cuda graphs: off under DDP (the gradient all-reduce is not captured); training eagerly",
                    file=sys.stderr,
                )
        self.step = GraphedTraining(self, self.last_checkpoint, graphs)
        return TrainingAdam(
            self.model.parameters(),
            lr=self.lr,
            capturable=graphs,
            update_in_closure=True,
            eps=self.adam_eps,
            weight_decay=self.weight_decay,
        )

    def on_save_checkpoint(self, checkpoint) -> None:
        if self.step is not None and self.step.graphs:  # never save the weights that followed a NaN
            self.step.check_finite()

    def on_load_checkpoint(self, checkpoint) -> None:
        """A checkpoint written while gon fit trained on CPUs by Lightning's automatic optimisation counts its steps
        in that loop's progress: carried over to the manual loop's, so that --resume continues at its step."""
        loop = checkpoint.get("loops", {}).get("fit_loop", {})
        automatic = loop.get("epoch_loop.automatic_optimization.optim_progress")
        manual = loop.get("epoch_loop.manual_optimization.optim_step_progress")
        if automatic and manual and not manual["total"]["completed"]:
            loop["epoch_loop.manual_optimization.optim_step_progress"] = copy.deepcopy(automatic["optimizer"]["step"])

    def on_train_start(self):
        # --resume --lr/--weight-decay/--adam-eps: the restored optimiser state carries the old values; those of this
        # session (config.yaml's and the checkpoint's record too) are the ones used
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group.update(lr=self.lr, weight_decay=self.weight_decay, eps=self.adam_eps)
