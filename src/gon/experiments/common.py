"""What every experiment shares: its budget, the data, a plain training loop and the row runner.

A *row* is one model configuration (a line of a paper table or a point of a figure); the
runner trains it once per seed on the same data and budget, evaluates it on the test split
and returns one result dict per (row, seed), which :mod:`gon.experiments.tables` summarises.

Training is a plain Adam loop over in-memory tensors, not ``gon fit``: a row needs no run
directory, checkpoints or pictures, and the loop lets runners evaluate at chosen steps or
wall-clock times. It trains on the model's own ``loss_terms``, as ``gon fit`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from gon.data import ImageData, load_dataset
from gon.errors import GonError
from gon.metrics import reconstruction_metrics
from gon.models import GradientOriginModel
from gon.registry import model_class
from gon.threads import ThreadTuner, log_line

CURVE_IMAGES = 512  # fixed train / test images evaluated at intervals for learning curves


@dataclass
class Budget:
    """The settings of one ``gon reproduce`` run; ``None`` fields take the experiment's defaults."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    out: str | None = None
    seeds: int | None = None
    steps: int | None = None
    epochs: int | None = None
    limit_train: int | None = None
    test_size: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    device: str = "cpu"
    threads: int | None = None  # torch intra-op threads; 1 is much faster on a CPU shared with other jobs
    progress: bool = True

    def __post_init__(self):
        for key in ("seeds", "steps", "epochs", "limit_train", "test_size", "batch_size", "threads"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise GonError(f"option --{key.replace('_', '-')} must be >= 1, got {value}")
        if self.lr <= 0:
            raise GonError(f"option --lr must be > 0, got {self.lr}")
        if self.steps is not None and self.epochs is not None:
            raise GonError("give either --steps or --epochs, not both")

    @property
    def auto_threads(self) -> bool:
        """Whether the plain loop chooses torch's thread count by timing its steps (no --threads, on a CPU)."""
        return self.threads is None and self.device == "cpu"

    def with_defaults(self, **defaults: Any) -> Budget:
        """A copy where each field still ``None`` takes the experiment's default.

        Defaults for ``steps`` and ``epochs`` apply only when neither was given.
        """
        values = dict(self.__dict__)
        given_length = self.steps is not None or self.epochs is not None
        for key, value in defaults.items():
            if key in ("steps", "epochs") and given_length:
                continue
            if values.get(key) is None:
                values[key] = value
        return Budget(**values)

    def train_steps(self, n_train: int) -> int:
        """Optimiser steps of one run: ``steps``, or ``epochs`` full passes over the training images."""
        per_epoch = n_train // self.batch_size
        if per_epoch < 1:
            raise GonError(
                f"{n_train} training images are fewer than one batch of {self.batch_size}; "
                f"raise --limit-train or lower --batch-size"
            )
        return self.steps if self.steps is not None else (self.epochs or 1) * per_epoch

    def seed_list(self) -> list[int]:
        return list(range(self.seeds or 1))


@dataclass
class Data:
    train: ImageData
    test: ImageData


def load_data(budget: Budget, image_size: int = 32) -> Data:
    """The training images (first ``limit_train``) and test images (first ``test_size``) at ``image_size``."""
    kw = dict(data_dir=budget.data_dir, image_size=image_size)
    return Data(
        load_dataset(budget.dataset, "train", limit=budget.limit_train, **kw),
        load_dataset(budget.dataset, "test", limit=budget.test_size, **kw),
    )


@dataclass
class Row:
    """One model configuration: a registry name, its options, and extra table columns."""

    label: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)


def make_model(row: Row, data: Data, seed: int, device: str) -> GradientOriginModel:
    """``row``'s model for ``data`` (channels, image size, one GLO code per training image), seeded."""
    torch.manual_seed(seed)
    cls = model_class(row.model)
    options = {"channels": data.train.channels, "image_size": data.train.image_size, **row.options}
    if "index" in getattr(cls, "batch_fields", ()):
        options["num_images"] = len(data.train)  # one persistent code per training image (GLO)
    return cls(**options).to(device)


def network_parameters(model: torch.nn.Module) -> int:
    """Trainable weights, not counting GLO's per-image codes (one latent per training image)."""
    return sum(p.numel() for name, p in model.named_parameters() if name != "codes")


def batch_extras(model: torch.nn.Module, data: ImageData, index: torch.Tensor, device: str) -> dict[str, torch.Tensor]:
    """The extra batch fields a model's loss takes (``batch_fields``): ``index`` for GLO, ``label`` for classifiers."""
    fields = getattr(model, "batch_fields", ())
    if "label" in fields and data.labels is None:
        raise GonError(f"{type(model).__name__} needs labels, and dataset {data.name} has none")
    extras = {"index": index, "label": data.labels[index] if data.labels is not None else None}
    return {k: extras[k].to(device) for k in fields}


def train(
    model: GradientOriginModel,
    data: ImageData,
    budget: Budget,
    seed: int,
    steps: int,
    on_step: Callable[[int, float], bool | None] | None = None,
    bar: tqdm | None = None,
) -> float:
    """Up to ``steps`` Adam steps on shuffled batches (drop last) of ``data``; returns the training seconds.

    ``on_step(step, seconds)`` runs after every step with the training time so far (its own time
    is not counted); returning True stops training there.
    """
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=budget.lr)
    model.train()
    # no --threads on a CPU: the fastest thread count, timed on these steps (gon.threads)
    tuner = ThreadTuner(log=bar.write if bar is not None else log_line) if budget.auto_threads else None
    n, b = len(data), budget.batch_size
    step, seconds = 0, 0.0
    while step < steps:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - b + 1, b):
            if tuner is not None:
                tuner.before_step()
            started = time.perf_counter()
            index = order[start : start + b]
            x = data.images[index].to(budget.device)
            loss = model.loss_terms(x, **batch_extras(model, data, index, budget.device))["loss"]
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            took = time.perf_counter() - started
            seconds += took
            if tuner is not None:
                tuner.after_step(took)
            step += 1
            if bar is not None:
                bar.update(1)
            if on_step is not None:
                stop = on_step(step, seconds)
                model.train()
                if stop:
                    return seconds
            if step == steps:
                break
    return seconds


def progress_bar(total: int, budget: Budget, unit: str = "step") -> tqdm:
    return tqdm(total=total, unit=unit, disable=not budget.progress, dynamic_ncols=True, mininterval=0.5)


def curve_points(steps: int, points: int) -> set[int]:
    """``points`` evaluation steps spread evenly over a run, the last step included."""
    return {max(1, round(steps * i / points)) for i in range(1, points + 1)}


def run_rows(
    rows: Iterable[Row],
    budget: Budget,
    data: Data | dict[int, Data],
    *,
    curves: int = 0,
    train_curve: bool = False,
    evaluate: Callable[[GradientOriginModel, Data], dict[str, float]] | None = None,
    keep: Callable[[Row, int, GradientOriginModel], None] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Train every row for every seed; returns (results, curve points).

    data: one :class:`Data`, or one per image size (rows with an ``image_size`` option use theirs).
    curves: evaluate the test error (and with ``train_curve`` the training error) on
        ``CURVE_IMAGES`` fixed images at this many points of each run.
    evaluate: the final test metrics (default: reconstruction error on the whole test subset).
    keep: called with each trained model, e.g. to draw its reconstructions.
    """
    rows = list(rows)
    seeds = budget.seed_list()
    by_size = data if isinstance(data, dict) else None
    pick = (lambda row: by_size[row.options.get("image_size", 32)]) if by_size else (lambda row: data)
    plan = [(row, seed, budget.train_steps(len(pick(row).train))) for row in rows for seed in seeds]
    evaluate = evaluate or (lambda model, d: reconstruction_metrics(model, d.test.images.to(budget.device)))
    results, points = [], []
    with progress_bar(sum(steps for _, _, steps in plan), budget) as bar:
        for row, seed, steps in plan:
            bar.set_description(f"{row.label} (seed {seed})")
            d = pick(row)
            model = make_model(row, d, seed, budget.device)
            at = curve_points(steps, curves) if curves else set()

            def on_step(step: int, seconds: float, model=model, row=row, seed=seed, d=d) -> None:
                if step in at:
                    point = {"row": row.label, **row.columns, "seed": seed, "step": step}
                    point["test_sse"] = reconstruction_metrics(model, d.test.images[:CURVE_IMAGES].to(budget.device))[
                        "sse"
                    ]
                    if train_curve:
                        point["train_sse"] = reconstruction_metrics(
                            model, d.train.images[:CURVE_IMAGES].to(budget.device)
                        )["sse"]
                    points.append(point)

            seconds = train(model, d.train, budget, seed, steps, on_step if at else None, bar)
            started = time.perf_counter()
            metrics = evaluate(model, d)
            results.append(
                {
                    "row": row.label,
                    **row.columns,
                    "seed": seed,
                    "parameters": network_parameters(model),
                    "steps": steps,
                    "train_seconds": round(seconds, 2),
                    "eval_seconds": round(time.perf_counter() - started, 2),
                    **metrics,
                }
            )
            if keep is not None:
                keep(row, seed, model)
    return results, points
