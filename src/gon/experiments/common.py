"""What every experiment shares: its budget, the data, a plain training loop and the row runner.

A *row* is one model configuration (a line of a paper table or a point of a figure); the
runner trains it once per seed on the same data and budget, evaluates it on the test split
and returns one result dict per (row, seed), which :mod:`gon.experiments.tables` summarises.

Training is a plain Adam loop over in-memory tensors, not ``gon fit``: a row needs no run
directory, checkpoints or pictures, and the loop lets runners evaluate at chosen steps or
wall-clock times. It trains on the model's own ``loss_terms``, as ``gon fit`` does.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from gon.core.errors import GonError, Stopped
from gon.core.settings import check
from gon.core.validate import torch_device
from gon.data import ImageData, load_dataset
from gon.experiments import units
from gon.experiments.units import (
    CHECKPOINT_EVERY,
    UNITS,
    StopRequest,
    UnitFolder,
    deferred_stops,
    forked_rng,
    rng_state,
    set_rng_state,
    slug,
)
from gon.metrics import reconstruction_metrics
from gon.models import GradientOriginModel
from gon.models.baselines import GLO
from gon.models.registry import build
from gon.storage.lock import run_lock
from gon.training.ensemble import EnsembleStep, MemberRandom, stackable
from gon.training.loop import shuffled_batches, train_loop, training_adam, training_step, uses_graphs
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
    # -- resumable sweeps (gon.experiments.units): every (row, seed) a unit in OUT/units/ ----------
    resume: bool = False  # continue the unfinished units of OUT, keep the finished ones
    shard: tuple[int, int] | None = None  # (K, N): train only the K-th of N disjoint slices of the plan
    merge: bool = False  # train nothing: write the tables from OUT's finished units
    rows: tuple[str, ...] | None = None  # only these rows (labels, any case) of the experiment
    checkpoint_every: int = CHECKPOINT_EVERY  # steps between a unit's checkpoints
    curve_images: int | None = None  # test images of each curve point: None the preset's (else 512), 0 all
    phase: str = "whole"  # run_rows: "whole" (train, then tables), "train" (this process's units only), "tables"
    #: train the seeds of a row together as one stacked step (gon.training.ensemble); None: on CUDA only (on a CPU
    #: stacking is slower than separate steps, docs/performance.md)
    ensemble: bool | None = None

    def __post_init__(self):
        for key in ("seeds", "steps", "epochs", "limit_train", "test_size", "batch_size", "threads", "jobs"):
            check(key, getattr(self, key), type=int | None, low=1)
        check("checkpoint_every", self.checkpoint_every, type=int, low=1)
        check("curve_images", self.curve_images, type=int | None, low=0)
        if self.shard is not None:
            k, n = self.shard
            if not 1 <= k <= n:
                raise GonError(f"--shard {k}/{n}: K must be from 1 to N")
        if self.merge and self.shard is not None:
            raise GonError("--merge writes the tables of every shard: give it without --shard")
        check("lr", self.lr, type=float | None, low=0, low_open=True)
        check("image_size", self.image_size, type=int | None, low=8)
        if self.steps is not None and self.epochs is not None:
            raise GonError("give either --steps or --epochs, not both")
        self.device = str(torch_device(self.device))  # checked (and auto resolved) before any data loads

    @property
    def stacks_seeds(self) -> bool:
        """Whether the seeds of a row train together as one stacked ensemble (``--ensemble``; default on CUDA)."""
        return self.ensemble if self.ensemble is not None else torch.device(self.device).type == "cuda"

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

    def identity(self) -> dict[str, Any]:
        """The settings a sweep's units share, compared when a sweep is resumed or merged: everything that changes
        what a unit computes, not where or how fast (device, threads, jobs, shard) nor how long (steps, epochs,
        which --resume extends) nor which of its rows or seeds this process trains. Defaults resolved."""
        keys = ("dataset", "limit_train", "test_size", "batch_size", "lr", "preset", "options")
        identity = {k: getattr(self, k) for k in keys}
        identity["image_size"] = self.image_size or 32
        identity["curve_images"] = CURVE_IMAGES if self.curve_images is None else self.curve_images
        identity["length_in"] = "epochs" if self.by_epoch else "steps"  # (their curves' points differ)
        return json.loads(json.dumps(identity))

    @property
    def by_epoch(self) -> bool:
        """Whether the run's length is given in epochs (its curve points are then :func:`epoch_points`)."""
        return self.steps is None


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
    optimizer: torch.optim.Optimizer | None = None,
    start: int = 0,
) -> float:
    """Adam steps ``start + 1`` to ``steps`` on shuffled batches (drop last) of ``data``; returns the training
    seconds.

    ``on_step(step, seconds)`` runs after every step with the training time so far (its own time
    is not counted); returning True stops training there. ``optimizer`` and ``start``: a resumed run's Adam and
    the steps it had taken (its data order continues where it was).
    """
    model.train()
    log = bar.write if bar is not None else log_line
    step = training_step(model, budget.lr, budget.device, budget.cuda_graphs, log, optimizer)  # eager or graphed
    batches = shuffled_batches(
        data.images, data.labels, budget.batch_size, torch.Generator().manual_seed(seed), budget.device, skip=start
    )
    # no --threads on a CPU: the fastest thread count, timed on these steps (gon.training.threads)
    tuner = ThreadTuner(log=log) if budget.auto_threads else None

    def after(done: int, seconds: float) -> bool:
        if bar is not None:
            bar.update(1)
        stop = on_step is not None and on_step(start + done, seconds)
        model.train()  # an evaluation in on_step may have left it in eval mode
        return bool(stop)

    return train_loop(step, batches, steps=steps - start, on_step=after, tuner=tuner)[1]


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


def epoch_points(steps: int, per_epoch: int) -> set[int]:
    """The curve of a run measured in epochs: every quarter epoch up to 2, every epoch up to 50, then every 10th,
    and the last step. The same points whatever the run's length, so that a sweep extended by ``--resume --epochs``
    continues its curves where a longer run would have had them."""
    quarters = [round(per_epoch * q / 4) for q in range(1, 9)]
    epochs = [per_epoch * e for e in range(3, 51)] + [per_epoch * e for e in range(60, steps // per_epoch + 1, 10)]
    return {s for s in quarters + epochs if 1 <= s <= steps} | {steps}


Evaluate = Callable[[GradientOriginModel, Data, Budget], dict[str, float]]


def test_reconstruction(model: GradientOriginModel, d: Data, budget: Budget) -> dict[str, float]:
    """The default final metrics: reconstruction error on the whole test subset."""
    return reconstruction_metrics(model, d.test.images.to(budget.device))


@dataclass
class Run:
    """One (row, seed) of an experiment: everything a worker process needs to train and evaluate it.

    ``evaluate`` must be a module-level function (it travels to worker processes by name).
    ``unit``: its folder under OUT/units (checkpoints, result), or None to train in memory only.
    """

    row: Row
    seed: int
    steps: int
    image_size: int
    curves: int = 0
    train_curve: bool = False
    evaluate: Evaluate = test_reconstruction
    unit: UnitFolder | None = None

    @property
    def name(self) -> str:
        return f"{self.row.label} (seed {self.seed})"


Outcome = tuple[dict, list[dict], GradientOriginModel]


class UnitTraining:
    """One run's training in progress: its model and Adam (from its unit's checkpoint, if any), its curve so far,
    what it does after each step (a curve point, a checkpoint) and its final figures. A run trained alone
    (:func:`run_one`) and one trained stacked with its row's other seeds (:func:`run_together`) share it.

    ``random``: the run's own random generators, as they are right after its model is built (or as its
    checkpoint holds them); ``done``: the outcome of a unit that had finished earlier (nothing to train).
    """

    def __init__(self, run: Run, budget: Budget, d: Data, stop: StopRequest | None = None):
        self.run, self.budget, self.d, self.stop = run, budget, d, stop
        row, unit = run.row, run.unit
        self.model = make_model(row, d, run.seed, budget)
        self.random = MemberRandom.current(budget.device)
        self.optimizer = training_adam(self.model, budget.lr, budget.device, budget.cuda_graphs)
        state = unit.load_state() if unit is not None else None
        self.start, self.points, self.seconds_before = 0, [], 0.0
        self.rng: dict | None = None  # the checkpoint's generators
        self.done: Outcome | None = None
        if state is not None:
            if state["step"] > run.steps:
                raise GonError(
                    f"{unit.path}: this unit has trained {state['step']} steps, more than the {run.steps} asked for; "
                    "give at least as many --steps or --epochs as the sweep has run"
                )
            restore(self.model, self.optimizer, state, budget.device, unit)
            self.rng = state["rng"]
            self.random = member_random(self.rng, self.random)
            self.start, self.points, self.seconds_before = state["step"], list(state["points"]), state["seconds"]
            done = unit.load_result()
            if self.start == run.steps and done is not None and done["result"]["steps"] == run.steps:
                self.done = done["result"], done["points"], self.model  # finished earlier
        self.reached = self.start
        self.per_epoch = len(d.train) // budget.batch_size
        self.at = set()
        if run.curves and budget.by_epoch:
            self.at = epoch_points(run.steps, self.per_epoch)
        elif run.curves:
            self.at = curve_points(run.steps, run.curves)
        probe = CURVE_IMAGES if budget.curve_images is None else (budget.curve_images or None)  # 0: all
        if isinstance(self.model, GLO):  # its test codes are fitted by 100 Adam steps: a curve point on every image
            probe = min(probe or CURVE_IMAGES, CURVE_IMAGES)  # costs ~17 epochs of training, so it keeps the 512
        if self.at:  # the same seeded, stratified images at every point of every run
            self.test_probe = d.test.subset(probe).images.to(budget.device)
            self.train_probe = d.train.subset(probe).images.to(budget.device) if run.train_curve else None

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.requested

    def due(self, step: int) -> bool:
        """Whether the step ends with a curve point or a checkpoint (a stacked run then writes its members back)."""
        checkpoint = self.run.unit is not None and (step % self.budget.checkpoint_every == 0 or step == self.run.steps)
        return step in self.at or checkpoint or self.stopping()

    def after_step(self, step: int, seconds: float, rng: Callable[[], dict]) -> bool:
        """A curve point and a checkpoint where due (``rng()``: the run's generators then); True: stop here."""
        row, seed = self.run.row, self.run.seed
        self.reached = step
        if step in self.at:
            point = {
                "row": row.label,
                **row.columns,
                "seed": seed,
                "step": step,
                "epoch": round(step / self.per_epoch, 3),
            }
            point["seconds"] = round(self.seconds_before + seconds, 2)
            with forked_rng(self.budget.device):  # evaluating never moves the training's random numbers
                point["test_sse"] = reconstruction_metrics(self.model, self.test_probe)["sse"]
                if self.train_probe is not None:
                    point["train_sse"] = reconstruction_metrics(self.model, self.train_probe)["sse"]
            self.points.append(point)
        stopping = self.stopping()
        if self.run.unit is not None and (
            step % self.budget.checkpoint_every == 0 or step == self.run.steps or stopping
        ):
            self.run.unit.save_state(
                {
                    "step": step,
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "rng": rng(),
                    "points": self.points,
                    "seconds": float(self.seconds_before + seconds),
                }
            )
        return stopping

    def finish(self, seconds: float) -> Outcome | None:
        """The final figures after ``seconds`` of training in all (None when stopped before the last step)."""
        if self.reached < self.run.steps or (self.start == self.run.steps and self.stopping()):
            return None  # stopped by a signal, checkpointed after its last whole step
        run, row = self.run, self.run.row
        started = time.perf_counter()
        with forked_rng(self.budget.device):
            metrics = run.evaluate(self.model, self.d, self.budget)
        result = {
            "row": row.label,
            **row.columns,
            "seed": run.seed,
            "parameters": network_parameters(self.model),
            "steps": run.steps,
            "epochs": round(run.steps / self.per_epoch, 2),
            "train_seconds": round(seconds, 2),
            "eval_seconds": round(time.perf_counter() - started, 2),
            **metrics,
        }
        if run.unit is not None:
            run.unit.save_result(result, self.points)
        return result, self.points, self.model


def member_random(rng: dict, built: MemberRandom) -> MemberRandom:
    """A checkpoint's generators (:func:`gon.experiments.units.rng_state`) as one run's :class:`MemberRandom`."""
    cuda = rng["cuda"] if built.cuda is not None and "cuda" in rng else built.cuda
    return MemberRandom(rng["cpu"], cuda, built.device)


def member_rng_state(random: MemberRandom) -> dict:
    """One member's generators in the checkpoint format of :func:`gon.experiments.units.rng_state`."""
    state = {"cpu": random.cpu.clone()}
    if random.cuda is not None:
        state["cuda"] = random.cuda.clone()
    return state


def run_one(
    run: Run, budget: Budget, d: Data, bar: tqdm | None = None, stop: StopRequest | None = None
) -> Outcome | None:
    """Train and evaluate one run on ``d``: (its result, its curve points, the trained model).

    With a unit folder the run starts from its checkpoint, if any, checkpoints every ``budget.checkpoint_every``
    steps and at the end, and writes its result there; a finished unit is loaded, not trained. Returns None when
    ``stop`` was requested (SIGINT / SIGTERM): the unit was checkpointed after its last whole step.
    """
    return train_alone(UnitTraining(run, budget, d, stop), bar)


def train_alone(t: UnitTraining, bar: tqdm | None = None) -> Outcome | None:
    """Train one :class:`UnitTraining` to its end (or a stop), with the global random generators as its own."""
    run, budget = t.run, t.budget
    if t.done is not None:
        if bar is not None:
            bar.update(run.steps)
        return t.done
    if t.rng is not None:
        set_rng_state(t.rng, budget.device)
    seconds = t.seconds_before
    if t.start < run.steps:
        on_step = lambda step, s: t.after_step(step, s, lambda: rng_state(budget.device))  # noqa: E731
        seconds += train(t.model, t.d.train, budget, run.seed, run.steps, on_step, bar, t.optimizer, t.start)
    return t.finish(seconds)


def run_together(
    runs: list[Run], budget: Budget, d: Data, bar: tqdm | None = None, stop: StopRequest | None = None
) -> list[Outcome | None]:
    """Train the runs of one row (its seeds) on ``d`` as one stacked ensemble (:class:`EnsembleStep`); each unit
    checkpoints and finishes in its own folder exactly as :func:`run_one` does, and its training time is its share
    of the stacked steps' time. Runs at another step than the first unfinished one, or of a model that does not
    stack, train alone. Returns each run's outcome (None: stopped), in order."""
    trainings = [UnitTraining(run, budget, d, stop) for run in runs]
    outcomes: list[Outcome | None] = [t.done for t in trainings]
    todo = [i for i, t in enumerate(trainings) if t.done is None]
    group = [i for i in todo if trainings[i].start == trainings[todo[0]].start] if todo else []
    if len(group) < 2 or not stackable(trainings[group[0]].model):
        group = []
    stopped = lambda: stop is not None and stop.requested  # noqa: E731
    for i in todo:
        if i not in group and not stopped():
            outcomes[i] = train_alone(trainings[i], bar)
    if group and not stopped():
        for i, outcome in zip(group, _train_stacked([trainings[i] for i in group], bar)):
            outcomes[i] = outcome
    return outcomes


def _train_stacked(members: list[UnitTraining], bar: tqdm | None) -> list[Outcome | None]:
    budget, start, steps = members[0].budget, members[0].start, members[0].run.steps
    if start >= steps:
        return [t.finish(t.seconds_before) for t in members]
    log = bar.write if bar is not None else log_line
    graphs = uses_graphs(budget.device, budget.cuda_graphs)
    ensemble = EnsembleStep(
        [t.model for t in members], [t.optimizer for t in members], [t.random for t in members], graphs, log
    )
    orders = [
        shuffled_batches(
            t.d.train.images,
            t.d.train.labels,
            budget.batch_size,
            torch.Generator().manual_seed(t.run.seed),
            budget.device,
            skip=start,
        )
        for t in members
    ]
    tuner = ThreadTuner(log=log) if budget.auto_threads else None

    def after(done: int, seconds: float) -> bool:
        if bar is not None:
            bar.update(len(members))
        step = start + done
        if not any(t.due(step) for t in members):
            return False
        ensemble.write_back()
        share = seconds / len(members)
        stops = [
            t.after_step(step, share, lambda r=ensemble.random[i]: member_rng_state(r)) for i, t in enumerate(members)
        ]
        for t in members:
            t.model.train()  # an evaluation may have left it in eval mode
        return any(stops)

    seconds = train_loop(
        ensemble.step, (list(b) for b in zip(*orders)), steps=steps - start, on_step=after, tuner=tuner
    )[1]
    return [t.finish(t.seconds_before + seconds / len(members)) for t in members]


def restore(model: GradientOriginModel, optimizer, state: dict, device: str, unit: UnitFolder) -> None:
    """A unit's model, Adam and random generators from its checkpoint; one line naming it when they do not fit."""
    try:
        model.load_state_dict(state["model"])
        if state["optimizer"]:
            optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"], device)
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise GonError(f"{unit.path / 'state.pt'}: does not fit this unit's model ({reason}); remove it") from None
    except GonError as e:
        raise GonError(f"{unit.path / 'state.pt'}: {e}") from None


def load_unit(run: Run, budget: Budget, d: Data) -> Outcome:
    """A finished unit's result, curve and trained model, from its folder (trained by another process)."""
    done, state = run.unit.load_result(), run.unit.load_state()
    if done is None or state is None or state["step"] != done["result"]["steps"]:
        at = "no checkpoint" if state is None else f"its checkpoint at step {state['step']}"
        raise GonError(
            f"{run.unit.path}: its result is at {done['result']['steps'] if done else 'no'} steps and {at}: it is "
            "being extended or was stopped while it was; finish it with --resume before its tables are written"
        )
    with forked_rng(budget.device):  # building a model seeds the generator
        model = make_model(run.row, d, run.seed, budget)
    model.load_state_dict(state["model"])
    return done["result"], done["points"], model


def unit_finished(run: Run) -> bool:
    """Whether ``run``'s unit holds its result at ``run.steps`` steps."""
    done = run.unit.load_result() if run.unit is not None else None
    return done is not None and done["result"]["steps"] == run.steps and (run.unit.path / "state.pt").exists()


class Unfinished(Exception):
    """This process's share of a sweep is done, but other units of the plan are not (other shards, or in use)."""


class TrainedShare(Exception):
    """This process has trained its share of a sweep that others share: the tables are written separately
    (:func:`gon.experiments.join_sweep`), under the sweep's lock."""


_WORKER_DATA: dict[tuple, Data] = {}
_WORKER_STOP = None  # the sweep's shared stop Event, in a worker process


def _start_worker(stop_event) -> None:
    """A --jobs worker: a signal only sets the sweep's shared stop (an idle worker must not die of it)."""
    global _WORKER_STOP
    _WORKER_STOP = stop_event
    handler = lambda signum, frame: stop_event.set()  # noqa: E731
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


def _work(runs: list[Run], budget: Budget) -> list[Outcome | str | None]:
    """A worker process's job: its data (loaded once per process and size), then its runs (one, or a row's seeds
    trained together) on their units.

    Returns each run's outcome, None when stopped (checkpointed, or not started), or a line when its unit is in use.
    """
    if _WORKER_STOP is not None and _WORKER_STOP.is_set():
        return [None] * len(runs)
    torch.set_num_threads(budget.threads or 1)
    size = runs[0].image_size
    key = (budget.dataset, budget.data_dir, budget.limit_train, budget.test_size, size)
    with deferred_stops(_WORKER_STOP) as stop:
        if key not in _WORKER_DATA:
            _WORKER_DATA[key] = load_data(budget, size)
        outcomes = train_group(runs, budget, _WORKER_DATA[key], stop=stop)
    return [(o[0], o[1], o[2].cpu()) if isinstance(o, tuple) else o for o in outcomes]


def train_group(
    runs: list[Run], budget: Budget, d: Data, bar: tqdm | None = None, stop: StopRequest | None = None
) -> list[Outcome | str | None]:
    """Train ``runs`` (one run, or seeds of one row to train together) holding their units' locks: each run's
    outcome, None when stopped, or a line when another process holds its unit (it is skipped)."""
    with ExitStack() as locks:
        outcomes: list[Outcome | str | None] = []
        free = []
        for run in runs:
            try:
                locks.enter_context(unit_lock(run))
                free.append(run)
                outcomes.append(None)
            except UnitBusy as busy:
                outcomes.append(str(busy))
        if not free:
            return outcomes
        trained = iter(
            run_together(free, budget, d, bar, stop) if len(free) > 1 else [run_one(free[0], budget, d, bar, stop)]
        )
        return [o if isinstance(o, str) else next(trained) for o in outcomes]


def seed_groups(plan: list[Run], todo: list[int], budget: Budget) -> list[list[int]]:
    """The runs ``todo`` in groups trained at once: with ``budget.stacks_seeds``, the seeds of each row (same
    length and image size) together; else one run each."""
    if not budget.stacks_seeds:
        return [[i] for i in todo]
    groups: dict[tuple, list[int]] = {}
    for i in todo:
        run = plan[i]
        groups.setdefault((run.row.label, run.steps, run.image_size), []).append(i)
    return list(groups.values())


class UnitBusy(Exception):
    """Another process holds the unit."""


@contextmanager
def unit_lock(run: Run) -> Iterator[None]:
    """Hold the unit's lock for the block (nothing to hold without a unit folder); :class:`UnitBusy` when another
    process holds it."""
    with ExitStack() as stack:
        if run.unit is not None:
            try:
                stack.enter_context(run_lock(run.unit.path, "train"))
            except GonError as e:
                if "in use" not in str(e):
                    raise
                raise UnitBusy(f"{run.name}: {e}") from None
        yield


def select_rows(rows: Iterable[Row], wanted: tuple[str, ...] | None) -> list[Row]:
    """The rows named by ``--rows`` (labels in any case, or their folder names), in the experiment's order."""
    rows = list(rows)
    if not wanted:
        return rows
    known = {key: row for row in rows for key in (row.label.lower(), slug(row.label))}
    unknown = [w for w in wanted if w.lower() not in known]
    if unknown:
        labels = ", ".join(repr(r.label) for r in rows)
        raise GonError(f"--rows: no row {unknown[0]!r} in this experiment; its rows are {labels}")
    chosen = {id(known[w.lower()]) for w in wanted}
    return [row for row in rows if id(row) in chosen]


def unit_identity(run: Run, budget: Budget, d: Data) -> dict[str, Any]:
    """What a unit is: its row (model and options as trained), seed and data, and the sweep's settings (not its
    length)."""
    identity = {
        "row": run.row.label,
        "model": run.row.model,
        "model_options": {**budget.options, **run.row.options},
        "columns": run.row.columns,
        "seed": run.seed,
        "train_image_size": run.image_size,
        "train_images": len(d.train),
        "test_images": len(d.test),
        "evaluate": run.evaluate.__name__,
        "train_curve": run.train_curve,
        "sweep": budget.identity(),
    }
    return json.loads(json.dumps(identity, default=str))


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
    curves: evaluate the test error (and with ``train_curve`` the training error) at this many points of each run
        (runs given in epochs: at :func:`epoch_points`), on ``budget.curve_images`` fixed test images (default
        ``CURVE_IMAGES``).
    evaluate: the final metrics, a module-level ``fn(model, data, budget)``.
    keep: called with each trained model (in the parent process), e.g. to draw its reconstructions.
    With ``budget.jobs`` > 1 the runs train in that many spawned processes (``budget.threads`` or
    1 thread each), which load the same data themselves; results are identical to a sequential run.

    With ``budget.out`` every (row, seed) is a resumable unit in OUT/units (:mod:`gon.experiments.units`):
    finished units are loaded, unfinished ones continue from their checkpoints, ``budget.shard`` trains one slice
    and ``budget.merge`` none. :class:`Unfinished` is raised when units of the plan remain for other processes.
    """
    by_size = data if isinstance(data, dict) else None
    default_size = budget.image_size or 32
    pick = (lambda size: by_size[size]) if by_size else (lambda size: data)
    plan = []
    for row in select_rows(rows, budget.rows):
        size = row.options.get("image_size", default_size)
        steps = budget.train_steps(len(pick(size).train))
        plan += [Run(row, seed, steps, size, curves, train_curve, evaluate) for seed in budget.seed_list()]
    if budget.out is not None:
        folders = [f"{slug(run.row.label)}-seed{run.seed}" for run in plan]
        if len(set(folders)) < len(folders):
            raise GonError("two rows of this experiment share a folder name; give them different labels")
        for run, folder in zip(plan, folders):
            run.unit = UnitFolder(Path(budget.out) / UNITS / folder, unit_identity(run, budget, pick(run.image_size)))
            if budget.phase == "tables":  # (writes nothing but the tables: an unknown unit is unfinished)
                if (run.unit.path / "unit.json").exists():
                    run.unit.check_identity()
                continue
            run.unit.path.mkdir(parents=True, exist_ok=True)
            run.unit.check_identity()
    outcomes: dict[int, Outcome] = {}
    if budget.phase != "tables":
        mine = [i for i in range(len(plan)) if budget.shard is None or i % budget.shard[1] == budget.shard[0] - 1]
        todo = [i for i in mine if not unit_finished(plan[i])]
        train_units(plan, todo, budget, pick, outcomes)
        if budget.phase == "train":
            raise TrainedShare()
    left = [run.name for i, run in enumerate(plan) if i not in outcomes and not unit_finished(run)]
    if left:
        message = f"{len(left)} of the {len(plan)} units are not finished: {', '.join(left[:4])}"
        message += " ..." if len(left) > 4 else ""
        if budget.merge:
            raise GonError(f"--merge: {message}; run them first (gon reproduce ... --resume)")
        raise Unfinished(message)
    results, points = [], []
    for i, run in enumerate(plan):
        result, run_points, model = outcomes[i] if i in outcomes else load_unit(run, budget, pick(run.image_size))
        results.append(result)
        points += run_points
        if keep is not None:
            keep(run.row, run.seed, model.to(budget.device))
    return results, points


def train_units(plan: list[Run], todo: list[int], budget: Budget, pick, outcomes: dict[int, Outcome]) -> None:
    """Train the runs ``todo`` (indices into ``plan``) into ``outcomes``, a row's seeds stacked together where
    ``budget.stacks_seeds``; a signal checkpoints them and stops."""
    if todo:
        for hook in list(units.before_training):
            hook()
    groups = seed_groups(plan, todo, budget)
    parallel = budget.jobs > 1 and len(groups) > 1
    shared = multiprocessing.get_context("spawn").Event() if parallel else None
    with deferred_stops(shared) as stop:
        if parallel:
            _run_in_processes(plan, groups, budget, shared, outcomes)
        else:
            with progress_bar(sum(plan[i].steps for i in todo), budget) as bar:
                for group in groups:
                    runs = [plan[i] for i in group]
                    seeds = ", ".join(str(run.seed) for run in runs)
                    bar.set_description(runs[0].name if len(runs) == 1 else f"{runs[0].row.label} (seeds {seeds})")
                    done = train_group(runs, budget, pick(runs[0].image_size), bar, stop)
                    for i, outcome in zip(group, done):
                        if isinstance(outcome, str):
                            tqdm.write(f"gon reproduce: skipping {outcome}", file=sys.stderr)
                        elif outcome is not None:
                            outcomes[i] = outcome
                    if stop.requested:
                        break
        if stop.requested:
            signum = stop.signum or signal.SIGTERM
            raise Stopped(signum, stopped_message(signum, budget))


def stopped_message(signum: int, budget: Budget) -> str:
    where = f" in {Path(budget.out) / UNITS}" if budget.out else ""
    return (
        f"stopped by {signal.Signals(signum).name}: every unit in training was checkpointed{where}; "
        f"continue with the same command and --resume"
    )


def _run_in_processes(plan: list[Run], groups: list[list[int]], budget: Budget, shared, outcomes) -> None:
    """The run groups (:func:`seed_groups`) of ``plan`` in ``budget.jobs`` spawned processes, into ``outcomes``.

    ``shared``: the sweep's stop Event. A stop (or a failure of one group) sets it; workers then checkpoint the units
    they are training, start no other, and the groups not yet handed out are cancelled.
    """
    worker = Budget(**{**budget.__dict__, "progress": False, "threads": budget.threads or 1, "jobs": 1})
    context = multiprocessing.get_context("spawn")  # fork after torch has run threads can hang
    pool = ProcessPoolExecutor(
        min(budget.jobs, len(groups)), mp_context=context, initializer=_start_worker, initargs=(shared,)
    )
    try:
        with progress_bar(sum(len(g) for g in groups), budget, unit="run") as bar:
            futures = {pool.submit(_work, [plan[i] for i in group], worker): group for group in groups}
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                group = futures[future]
                for i, outcome in zip(group, future.result()):
                    if isinstance(outcome, str):
                        tqdm.write(f"gon reproduce: skipping {outcome}", file=sys.stderr)
                    elif outcome is not None:
                        outcomes[i] = outcome
                    bar.set_description(f"{plan[i].name} {'done' if i in outcomes else 'stopped'}")
                    bar.update(1)
                if shared.is_set():
                    for other in futures:
                        other.cancel()
    except BaseException:
        shared.set()  # the other units checkpoint and stop instead of training on for days
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
