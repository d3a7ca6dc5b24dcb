"""One training step and one plain training loop, shared by every way gon trains a model.

The step is :class:`gon.training.graphs.GraphedStep` (a batch's loss terms from the model's own ``loss_terms``,
backward, Adam's update; one CUDA graph on a GPU): :func:`training_step` builds it for a model and
feeds it a batch. :func:`train_loop` is the plain loop over in-memory tensors that ``gon reproduce``
(experiments) and ``gon bench`` (quality, fit overhead, timed steps) share; ``gon fit`` runs the same
GraphedStep on every device, inside Lightning's manual optimisation (gon.training.graphed_training).

A batch is a dict of tensors: ``x`` the images [B, C, H, W], and the fields some losses need:
``index`` (the images' positions in the training set: GLO's codes) and ``label`` (classifiers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor

from gon.core.errors import GonError
from gon.training.graphs import GraphedStep, TrainingAdam, log_line
from gon.training.threads import ThreadTuner

Batch = dict[str, Tensor | None]


def loss_arguments(model: torch.nn.Module, batch: Batch) -> dict[str, Tensor]:
    """The keyword arguments ``model.loss_terms`` takes besides the images: its ``batch_fields``, from the batch."""
    fields = model.batch_fields
    missing = [f for f in fields if batch.get(f) is None]
    if missing:
        raise GonError(f"{type(model).__name__} trains on each image's {' and '.join(missing)}; this data has none")
    return {f: batch[f] for f in fields}


def training_step(
    model: torch.nn.Module,
    lr: float,
    device: str | torch.device,
    cuda_graphs: bool = True,
    log: Callable[[str], None] | None = log_line,
    optimizer: TrainingAdam | None = None,
) -> Callable[[Batch], dict[str, Tensor]]:
    """``step(batch) -> loss terms``: one Adam step of ``model`` on its training objective, through
    :class:`gon.training.graphs.GraphedStep` (replayed as one CUDA graph on a GPU unless ``cuda_graphs`` is False,
    eager elsewhere), the batch's fields mapped to the loss's arguments by :func:`loss_arguments`.

    optimizer: the Adam to step (one made by :func:`training_adam`, e.g. restored from a checkpoint); default a new one.
    """
    graphs = uses_graphs(device, cuda_graphs)
    optimizer = optimizer if optimizer is not None else training_adam(model, lr, device, cuda_graphs)
    step = GraphedStep(model, optimizer, graphs, log=log)
    return lambda batch: step(batch["x"], **loss_arguments(model, batch))


def uses_graphs(device: str | torch.device, cuda_graphs: bool = True) -> bool:
    """Whether a training step on ``device`` is replayed as a CUDA graph."""
    return cuda_graphs and torch.device(device).type == "cuda"


def training_adam(model: torch.nn.Module, lr: float, device: str | torch.device, cuda_graphs: bool = True):
    """The Adam of one training run of ``model`` (capturable where its steps are graphed)."""
    return TrainingAdam(model.parameters(), lr=lr, capturable=uses_graphs(device, cuda_graphs))


def shuffled_batches(
    images: Tensor,
    labels: Tensor | None,
    batch_size: int,
    generator: torch.Generator,
    device: str | torch.device,
    skip: int = 0,
) -> Iterator[Batch]:
    """Endless epochs of shuffled batches (the last partial batch of each dropped), on ``device``.

    skip: start after this many batches, exactly where a run that had taken them would be (a resumed run):
    the skipped epochs' orders are drawn from ``generator`` and dropped, which costs one ``randperm`` each.
    """
    n = len(images)
    per_epoch = n // batch_size
    if per_epoch and skip >= per_epoch:
        for _ in range(skip // per_epoch):
            torch.randperm(n, generator=generator)
        skip %= per_epoch
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(skip * batch_size, n - batch_size + 1, batch_size):
            index = order[start : start + batch_size]
            yield {
                "x": images[index].to(device),
                "index": index.to(device),
                "label": labels[index].to(device) if labels is not None else None,
            }
        skip = 0


def train_loop(
    step: Callable[[Batch], object],
    batches: Iterable[Batch],
    steps: int | None = None,
    seconds: float | None = None,
    on_step: Callable[[int, float], bool | None] | None = None,
    tuner: ThreadTuner | None = None,
) -> tuple[int, float]:
    """Run ``step`` on ``batches`` until ``steps`` steps, ``seconds`` of training time or the last batch; returns
    (steps, seconds).

    The training time counts fetching each batch and its step, not ``on_step(step, seconds)``, which runs
    after every step (e.g. to evaluate; returning True stops there). On a GPU, the time is synchronised
    at the end. ``tuner`` sets the CPU thread count around each step, timing it (:mod:`gon.training.threads`).
    """
    done, elapsed = 0, 0.0
    batches = iter(batches)
    while (steps is None or done < steps) and (seconds is None or elapsed < seconds):
        if tuner is not None:
            tuner.before_step()
        started = time.perf_counter()
        batch = next(batches, None)
        if batch is None:  # a finite iterable ran out
            break
        step(batch)
        took = time.perf_counter() - started
        if tuner is not None:
            tuner.after_step(took)
        elapsed += took
        done += 1
        if on_step is not None and on_step(done, elapsed):
            break
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        started = time.perf_counter()
        torch.cuda.synchronize()
        elapsed += time.perf_counter() - started
    return done, elapsed
