"""What every experiment shares: its budget, the data, a plain training loop and the row runner.

A *row* is one model configuration (a line of a paper table or a point of a figure); the
runner trains it once per seed on the same data and budget, evaluates it on the test split
and returns one result dict per (row, seed), which :mod:`gon.experiments.tables` summarises.

Training is a plain Adam loop over in-memory tensors, not ``gon fit``: a row needs no run
directory, checkpoints or pictures, and the loop lets runners evaluate at chosen steps or
wall-clock times. It trains on the model's own ``loss_terms``, as ``gon fit`` does.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from gon.core.errors import GonError
from gon.core.settings import check
from gon.core.validate import torch_device
from gon.data import ImageData, load_dataset
from gon.metrics import reconstruction_metrics
from gon.models import GradientOriginModel
from gon.models.registry import build
from gon.training.loop import shuffled_batches, train_loop, training_step
from gon.training.threads import ThreadTuner, log_line

CURVE_IMAGES = 512  # fixed train / test images evaluated at intervals for learning curves


@dataclass
class Budget:
    """The settings of one ``gon reproduce`` run; ``None`` fields take the experiment's defaults."""

    dataset: str | None = None  # None: the preset's (fashion-mnist unless the paper used another)
    data_dir: str | None = None
    out: str | None = None
    seeds: int | None = None
    steps: int | None = None
    epochs: int | None = None
    limit_train: int | None = None  # None after the defaults: the whole training split
    test_size: int | None = None  # None after the defaults: the whole test split
    batch_size: int = 64
    lr: float | None = None
    image_size: int | None = None  # None: 32, the paper's size for its tables
    preset: str = "paper"  # the experiment's configuration: "paper" or "cpu" (gon reproduce --list)
    options: dict[str, Any] = field(default_factory=dict)  # model options of every row (a row's own win)
    device: str = "cpu"
    threads: int | None = None  # torch intra-op threads; 1 is much faster on a CPU shared with other jobs
    jobs: int = 1  # (row, seed) runs trained at once, each in its own process
    cuda_graphs: bool = True  # on a CUDA device: each training step replayed as a CUDA graph (gon.training.graphs)
    progress: bool = True

    def __post_init__(self):
        for key in ("seeds", "steps", "epochs", "limit_train", "test_size", "batch_size", "threads", "jobs"):
            check(key, getattr(self, key), type=int | None, low=1)
        check("lr", self.lr, type=float | None, low=0, low_open=True)
        check("image_size", self.image_size, type=int | None, low=8)
        if self.steps is not None and self.epochs is not None:
            raise GonError("give either --steps or --epochs, not both")
        self.device = str(torch_device(self.device))  # checked (and auto resolved) before any data loads

    @property
    def auto_threads(self) -> bool:
        """Whether the plain loop chooses torch's thread count by timing its steps (no --threads, on a CPU)."""
        return self.threads is None and self.device == "cpu"

    def with_defaults(self, **defaults: Any) -> Budget:
        """A copy where each field still ``None`` takes the experiment's default.

        Defaults for ``steps`` and ``epochs`` apply only when neither was given.
        """
        values = dict(self.__dict__)
        values["options"] = {**defaults.pop("options", {}), **self.options}
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


def load_data(budget: Budget, image_size: int | None = None) -> Data:
    """The training images (``limit_train`` of them) and test images (``test_size``), seeded and stratified,
    at ``image_size`` (default: the budget's, else 32)."""
    kw = dict(data_dir=budget.data_dir, image_size=image_size or budget.image_size or 32)
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


def make_model(row: Row, data: Data, seed: int, budget: Budget) -> GradientOriginModel:
    """``row``'s model for ``data`` (channels, image size, one GLO code per training image), seeded.

    Options: the budget's (the preset's configuration) under the row's own.
    """
    torch.manual_seed(seed)
    try:
        return build(row.model, data.train, **{**budget.options, **row.options}).to(budget.device)
    except GonError as err:
        raise GonError(f"row {row.label!r}: {err}") from None


def network_parameters(model: torch.nn.Module) -> int:
    """Trainable weights, not counting GLO's per-image codes (one latent per training image)."""
    return sum(p.numel() for name, p in model.named_parameters() if name != "codes")


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
    model.train()
    log = bar.write if bar is not None else log_line
    step = training_step(
        model, budget.lr, budget.device, budget.cuda_graphs, log
    )  # gon.training.loop: eager or graphed
    batches = shuffled_batches(
        data.images, data.labels, budget.batch_size, torch.Generator().manual_seed(seed), budget.device
    )
    # no --threads on a CPU: the fastest thread count, timed on these steps (gon.training.threads)
    tuner = ThreadTuner(log=log) if budget.auto_threads else None

    def after(done: int, seconds: float) -> bool:
        if bar is not None:
            bar.update(1)
        stop = on_step is not None and on_step(done, seconds)
        model.train()  # an evaluation in on_step may have left it in eval mode
        return bool(stop)

    return train_loop(step, batches, steps=steps, on_step=after, tuner=tuner)[1]


def curve_count(budget: Budget, n_train: int) -> int:
    """Learning-curve points of a table run: one per epoch up to 50 (then evenly spaced), else 8."""
    per_epoch = max(n_train // budget.batch_size, 1)
    epochs = budget.train_steps(n_train) / per_epoch
    return min(max(round(epochs), 8), 50)


def relative_to(points: list[dict], reference: str, key: str = "test_sse") -> list[dict]:
    """``points`` with ``sse_vs_gon``: each point's ``key`` over the ``reference`` row's at the same seed and step."""
    ref = {(p["seed"], p["step"]): p[key] for p in points if p["row"] == reference}
    return [
        {**p, "sse_vs_gon": p[key] / ref[(p["seed"], p["step"])] if (p["seed"], p["step"]) in ref else None}
        for p in points
    ]


def progress_bar(total: int, budget: Budget, unit: str = "step") -> tqdm:
    return tqdm(total=total, unit=unit, disable=not budget.progress, dynamic_ncols=True, mininterval=0.5)


def curve_points(steps: int, points: int) -> set[int]:
    """``points`` evaluation steps spread evenly over a run, the last step included."""
    return {max(1, round(steps * i / points)) for i in range(1, points + 1)}


Evaluate = Callable[[GradientOriginModel, Data, Budget], dict[str, float]]


def test_reconstruction(model: GradientOriginModel, d: Data, budget: Budget) -> dict[str, float]:
    """The default final metrics: reconstruction error on the whole test subset."""
    return reconstruction_metrics(model, d.test.images.to(budget.device))


@dataclass
class Run:
    """One (row, seed) of an experiment: everything a worker process needs to train and evaluate it.

    ``evaluate`` must be a module-level function (it travels to worker processes by name).
    """

    row: Row
    seed: int
    steps: int
    image_size: int
    curves: int = 0
    train_curve: bool = False
    evaluate: Evaluate = test_reconstruction


def run_one(run: Run, budget: Budget, d: Data, bar: tqdm | None = None) -> tuple[dict, list[dict], GradientOriginModel]:
    """Train and evaluate one run on ``d``: (its result, its curve points, the trained model)."""
    row, seed = run.row, run.seed
    model = make_model(row, d, seed, budget)
    at = curve_points(run.steps, run.curves) if run.curves else set()
    per_epoch = len(d.train) // budget.batch_size
    points = []
    if at:  # the same seeded, stratified images at every point of every run
        test_probe = d.test.subset(CURVE_IMAGES).images.to(budget.device)
        train_probe = d.train.subset(CURVE_IMAGES).images.to(budget.device) if run.train_curve else None

    def on_step(step: int, seconds: float) -> None:
        if step in at:
            point = {"row": row.label, **row.columns, "seed": seed, "step": step, "epoch": round(step / per_epoch, 3)}
            point["seconds"] = round(seconds, 2)
            point["test_sse"] = reconstruction_metrics(model, test_probe)["sse"]
            if train_probe is not None:
                point["train_sse"] = reconstruction_metrics(model, train_probe)["sse"]
            points.append(point)

    seconds = train(model, d.train, budget, seed, run.steps, on_step if at else None, bar)
    started = time.perf_counter()
    metrics = run.evaluate(model, d, budget)
    result = {
        "row": row.label,
        **row.columns,
        "seed": seed,
        "parameters": network_parameters(model),
        "steps": run.steps,
        "epochs": round(run.steps / per_epoch, 2),
        "train_seconds": round(seconds, 2),
        "eval_seconds": round(time.perf_counter() - started, 2),
        **metrics,
    }
    return result, points, model


_WORKER_DATA: dict[tuple, Data] = {}


def _work(run: Run, budget: Budget) -> tuple[dict, list[dict], GradientOriginModel]:
    """A worker process's job: its data (loaded once per process and size), then :func:`run_one`."""
    torch.set_num_threads(budget.threads or 1)
    key = (budget.dataset, budget.data_dir, budget.limit_train, budget.test_size, run.image_size)
    if key not in _WORKER_DATA:
        _WORKER_DATA[key] = load_data(budget, run.image_size)
    result, points, model = run_one(run, budget, _WORKER_DATA[key])
    return result, points, model.cpu()


def run_rows(
    rows: Iterable[Row],
    budget: Budget,
    data: Data | dict[int, Data],
    *,
    curves: int = 0,
    train_curve: bool = False,
    evaluate: Evaluate = test_reconstruction,
    keep: Callable[[Row, int, GradientOriginModel], None] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Train every row for every seed; returns (results, curve points), in row then seed order.

    data: one :class:`Data`, or one per image size (rows with an ``image_size`` option use theirs).
    curves: evaluate the test error (and with ``train_curve`` the training error) on
        ``CURVE_IMAGES`` fixed images at this many points of each run.
    evaluate: the final metrics, a module-level ``fn(model, data, budget)``.
    keep: called with each trained model (in the parent process), e.g. to draw its reconstructions.
    With ``budget.jobs`` > 1 the runs train in that many spawned processes (``budget.threads`` or
    1 thread each), which load the same data themselves; results are identical to a sequential run.
    """
    by_size = data if isinstance(data, dict) else None
    default_size = budget.image_size or 32
    pick = (lambda size: by_size[size]) if by_size else (lambda size: data)
    plan = []
    for row in rows:
        size = row.options.get("image_size", default_size)
        steps = budget.train_steps(len(pick(size).train))
        plan += [Run(row, seed, steps, size, curves, train_curve, evaluate) for seed in budget.seed_list()]
    if budget.jobs > 1 and len(plan) > 1:
        done = _run_in_processes(plan, budget)
    else:
        done = []
        with progress_bar(sum(run.steps for run in plan), budget) as bar:
            for run in plan:
                bar.set_description(f"{run.row.label} (seed {run.seed})")
                done.append(run_one(run, budget, pick(run.image_size), bar))
    results, points = [], []
    for run, (result, run_points, model) in zip(plan, done):
        results.append(result)
        points += run_points
        if keep is not None:
            keep(run.row, run.seed, model.to(budget.device))
    return results, points


def _run_in_processes(plan: list[Run], budget: Budget) -> list[tuple[dict, list[dict], GradientOriginModel]]:
    """Every run of ``plan`` in ``budget.jobs`` spawned processes; their outputs in plan order."""
    worker = Budget(**{**budget.__dict__, "progress": False, "threads": budget.threads or 1, "jobs": 1})
    outputs: dict[int, tuple] = {}
    context = multiprocessing.get_context("spawn")  # fork after torch has run threads can hang
    with (
        ProcessPoolExecutor(min(budget.jobs, len(plan)), mp_context=context) as pool,
        progress_bar(len(plan), budget, unit="run") as bar,
    ):
        futures = {pool.submit(_work, run, worker): i for i, run in enumerate(plan)}
        for future in as_completed(futures):
            outputs[futures[future]] = future.result()
            run = plan[futures[future]]
            bar.set_description(f"{run.row.label} (seed {run.seed}) done")
            bar.update(1)
    return [outputs[i] for i in range(len(plan))]
