"""The settings of a training run: one typed, validated record, written to RUN/config.yaml.

Every setting is an :class:`gon.core.settings.Option` made from a :class:`FitConfig` field (its type and
default) and ``FIT_INFO`` (help, choices, bounds): ``gon fit``'s flags, the YAML keys and the checks
come from there, and the model options from the model's own constructor (:func:`gon.models.registry.schema`).
A typo or a wrong value in a YAML config fails at once with the key named, not hours into training.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gon.core.errors import GonError
from gon.core.settings import Info, Option, check_options
from gon.core.validate import read_yaml_capped
from gon.data.audio import MAX_SAMPLE_RATE
from gon.training.threads import core_count

GPU_LOG_EVERY = 50
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
LOGGERS = ("csv", "tensorboard")
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
#: processes and threads a run may start: the CPUs this process may use (more only slows it, and a huge
#: count is a fork bomb or a crash in the thread pool)
CPU_BOUND = {"high": core_count(), "high_note": "the CPUs this machine gives gon"}
MAX_IMAGE_SIZE = 8192  # pixels a side: 64x the paper's largest (128); a 2-D image of that size is 256 MiB in float32
DEVICES_HELP = "a positive count, 'auto', -1 (all) or device indices like '0,1'"
#: what one ``gon fit`` session does with its run directory, not how the model is trained: RUN/config.yaml leaves
#: them out and a ``--config`` file may not switch them on, so that repeating a run never resumes or replaces it
SESSION_SWITCHES = ("out", "resume", "overwrite")


@dataclass
class FitConfig:
    """Everything ``gon fit`` needs. CLI flags and YAML keys have the same names (``-`` for ``_``)."""

    model: str = "gon"
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    image_size: int | None = None  # None: the dataset's size, grown to the model's minimum (32 for conv models)
    resize: str = "resize"  # how 28x28 data reaches 32x32: "resize" (bilinear, as the paper) or "pad"
    batch_size: int = 64  # the global batch: split evenly among DDP processes
    lr: float = 1e-4
    weight_decay: float = 0.0  # Adam's L2 penalty on the weights (an option of the Lightning fork of the original code)
    adam_eps: float = 1e-8  # Adam's epsilon (its denominator's floor)
    max_steps: int | None = None
    max_epochs: int | None = None  # neither given: one epoch
    seed: int = 0
    split_seed: int = 0  # the held-out test split of folder:, lmdb:, audio: and volume: data; the same for every seed
    out: str | None = None
    resume: bool = False
    overwrite: bool = False
    accelerator: str = "auto"
    devices: str | int = "auto"  # a count, "auto", -1 (all) or a list of indices "0,1"
    strategy: str = "auto"
    num_nodes: int = 1  # machines in a multi-node run (torchrun or SLURM start one process per device)
    num_workers: int = 0
    val_every: int | None = None  # steps between test evaluations; None: once per epoch
    val_size: int = 10000  # test images used at intervals (the final evaluation uses all)
    checkpoint_every: int = 500  # steps
    picture_every: int = 500  # steps
    # steps between metrics.csv rows and progress-bar refreshes (each reads the loss off the device);
    # None: every step on a CPU, every GPU_LOG_EVERY steps on a GPU (where a read per step costs ~10% of a step)
    log_every: int | None = None
    limit_train: int | None = None  # train on N images drawn with the seed, stratified by class (quick runs, tests)
    cuda_graphs: bool = True  # on one CUDA device: each training step replayed as a CUDA graph (gon.training.graphs)
    threads: int | None = (
        None  # torch CPU threads; None: the fastest count, measured on the run's steps (gon.training.threads)
    )
    sample_rate: int = 8000  # audio:PATH datasets: clips resampled to this rate (Hz)
    audio_seconds: float = 1.0  # audio:PATH datasets: clips cropped or padded with silence to this length
    logger: list[str] | str = field(default_factory=lambda: ["csv"])  # csv (always kept) and/or tensorboard
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for name, option in fit_options().items():
            setattr(self, name, option.check(getattr(self, name)))
        if isinstance(self.logger, str):
            self.logger = [name.strip() for name in self.logger.split(",") if name.strip()]
        unknown = [name for name in self.logger if name not in LOGGERS]
        if unknown or not self.logger:
            raise fit_options()["logger"].error(f"must list some of {', '.join(LOGGERS)}", ",".join(self.logger))
        self.logger = ["csv", *(name for name in dict.fromkeys(self.logger) if name != "csv")]
        if not _valid_devices(self.devices):
            raise fit_options()["devices"].error(f"must be {DEVICES_HELP}", self.devices)
        if self.max_steps is not None and self.max_epochs is not None:
            raise GonError("give either --max-steps or --max-epochs, not both")
        from gon.models.registry import schema  # imports torch: only once a config is being checked

        self.model_options = check_options(
            schema(self.model), self.model_options, "model_options", owner=f"model {self.model!r}"
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> FitConfig:
        """Build from a dict, rejecting unknown keys, wrong types and out-of-range values with the key named."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = [key for key in values if not isinstance(key, str) or key not in known]
        if unknown:
            raise GonError(f"{source}: unknown key {unknown[0]!r}; known keys: {', '.join(known)}")
        try:
            return cls(**values)
        except GonError as e:
            raise GonError(f"{source}: {e}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> FitConfig:
        return cls.from_dict(read_yaml(path), source=str(path))

    def resolved_log_every(self, on_gpu: bool) -> int:
        """``log_every``, or its default: every step on a CPU, every GPU_LOG_EVERY steps on a GPU."""
        return self.log_every or (GPU_LOG_EVERY if on_gpu else 1)

    def to_dict(self) -> dict[str, Any]:
        """The settings as RUN/config.yaml records them: without the :data:`SESSION_SWITCHES`."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in SESSION_SWITCHES}


#: the bound of counts and sizes: "must be > 0", as gon fit has always said
POSITIVE = {"low": 0, "low_open": True}

#: what FitConfig's field types and defaults cannot say: the help of each flag, its choices and bounds
FIT_INFO = {
    "model": Info("the model to train (its options below)"),
    "dataset": Info(
        "fashion-mnist | mnist | smallnorb | coil20 | cifar10 | celeba | lsun-bedroom | folder:PATH | lmdb:PATH | "
        "audio:PATH (WAV files) | volume:PATH (.npy grids)"
    ),
    "data_dir": Info("where to look for dataset files first"),
    "image_size": Info(  # the cap: a huge size overflowed Pillow's resize (found by the hostile pass)
        "training size (default: the data's, grown to the model's minimum: 32 for conv models)",
        **POSITIVE,
        high=MAX_IMAGE_SIZE,
    ),
    "resize": Info("how 28x28 data grows to 32x32", choices=("resize", "pad")),
    "batch_size": Info("images per step, split evenly among DDP processes", **POSITIVE),
    "lr": Info("Adam learning rate", low=0, low_open=True),
    "max_steps": Info("stop after N optimiser steps", **POSITIVE),
    "max_epochs": Info("stop after E epochs (default 1 when no --max-steps)", **POSITIVE),
    "seed": Info("random seed", low=0, high=MAX_SEED),
    "split_seed": Info(
        "seed of the held-out test split of folder:, lmdb:, audio: and volume: datasets (named ones have their own); "
        "the same for every --seed, so that seeds are trained and tested on the same split",
        low=0,
        high=MAX_SEED,
    ),
    "out": Info("run directory (default runs/MODEL-DATASET)"),
    "resume": Info("continue the run in --out from its last checkpoint"),
    "overwrite": Info("replace an existing run directory"),
    "accelerator": Info("where to train", choices=ACCELERATORS),
    "devices": Info("number of devices, 'auto', -1 (all) or indices like '0,1'"),
    "strategy": Info("Lightning strategy, e.g. ddp"),
    "num_nodes": Info("machines in a multi-node DDP run", **POSITIVE),
    "num_workers": Info("data loader worker processes", low=0, **CPU_BOUND),
    "val_every": Info("steps between test evaluations (default: each epoch)", **POSITIVE),
    "val_size": Info("test images evaluated at intervals, drawn with --seed, stratified by class", **POSITIVE),
    "checkpoint_every": Info("steps between checkpoints", **POSITIVE),
    "picture_every": Info("steps between reconstruction grids", **POSITIVE),
    "log_every": Info(
        "steps between logged train losses and progress-bar refreshes (default: 1 on a CPU, 50 on a GPU, where "
        "reading the loss every step costs ~10% of a step; with CUDA graphs the logged loss is the mean since the "
        "last row)",
        **POSITIVE,
    ),
    "limit_train": Info("train on N images drawn at random with --seed, stratified by class", **POSITIVE),
    "weight_decay": Info("Adam's L2 penalty on the weights (as the Lightning fork of the original code)", low=0),
    "adam_eps": Info("Adam's epsilon", low=0, low_open=True),
    "logger": Info(
        "csv and/or tensorboard, comma-separated (csv is always kept: metrics.csv and the report read it; "
        "tensorboard adds RUN/tensorboard/ with the scalars and the picture grids)"
    ),
    "sample_rate": Info("audio:PATH datasets: clips resampled to this rate (Hz)", **POSITIVE, high=MAX_SAMPLE_RATE),
    "audio_seconds": Info(
        "audio:PATH datasets: clips cropped or padded with silence to this length", low=0, low_open=True
    ),
    "cuda_graphs": Info(
        "on one CUDA device, replay each training step as one CUDA graph (off under DDP and on CPUs; falls back to "
        "eager with a one-line notice where capture fails)"
    ),
    "threads": Info(
        "torch CPU threads (default: the fastest count, timed on the first steps and again when step times jump; "
        "pin it for bit-identical reruns)",
        **POSITIVE,
        **CPU_BOUND,
    ),
}


@functools.cache
def fit_options() -> dict[str, Option]:
    """Every FitConfig field but model_options as an Option: type and default from the dataclass, the rest
    from FIT_INFO."""
    hints = typing.get_type_hints(FitConfig)
    fields = [f for f in dataclasses.fields(FitConfig) if f.name != "model_options"]
    return {f.name: FIT_INFO.get(f.name, Info()).option(f.name, hints[f.name], _default(f)) for f in fields}


def _default(field: dataclasses.Field) -> Any:
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


def read_yaml(path: str | Path) -> dict[str, Any]:
    values = read_yaml_capped(path)  # safe_load's tags only; size, aliases, depth capped; numbers finite
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise GonError(f"config file {path} must hold a mapping of keys to values")
    return values


def _valid_devices(devices: str | int) -> bool:
    if isinstance(devices, int):
        return devices > 0 or devices == -1
    text = devices.strip()
    return text in ("auto", "-1") or bool(re.fullmatch(r"\d+(\s*,\s*\d+)*\s*,?", text)) and text.strip(",") != "0"
