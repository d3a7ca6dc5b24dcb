"""The settings of a training run: one typed, validated record, written to RUN/config.yaml.

Every value is checked when the record is built, so a typo or a wrong value in a YAML config
fails at once with the key named, not as a traceback hours into training.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gon.data.audio import MAX_SAMPLE_RATE
from gon.errors import GonError

GPU_LOG_EVERY = 50
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # YAML 1.1 reads "1e-4" as a string


@dataclass
class FitConfig:
    """Everything ``gon fit`` needs. CLI flags and YAML keys have the same names (``-`` for ``_``)."""

    model: str = "gon"
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    image_size: int | None = None  # None: the dataset's size, grown to 32 for the conv models
    resize: str = "resize"  # how 28x28 data reaches 32x32: "resize" (bilinear, as the paper) or "pad"
    batch_size: int = 64  # the global batch: split evenly among DDP processes
    lr: float = 1e-4
    max_steps: int | None = None
    max_epochs: int | None = None  # neither given: one epoch
    seed: int = 0
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
    limit_train: int | None = None  # use only the first N training images (quick runs, tests)
    cuda_graphs: bool = True  # on one CUDA device: each training step replayed as a CUDA graph (gon.graphs)
    threads: int | None = None  # torch CPU threads; None: the fastest count, measured on the run's steps (gon.threads)
    sample_rate: int = 8000  # audio:PATH datasets: clips resampled to this rate (Hz)
    audio_seconds: float = 1.0  # audio:PATH datasets: clips cropped or padded with silence to this length
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        positive = [
            "batch_size",
            "lr",
            "val_size",
            "checkpoint_every",
            "picture_every",
            "log_every",
            "num_nodes",
            "max_steps",
            "max_epochs",
            "val_every",
            "image_size",
            "limit_train",
            "threads",
            "sample_rate",
            "audio_seconds",
        ]
        for key in positive:
            value = getattr(self, key)
            if value is not None and not value > 0:  # `not >` also rejects NaN
                raise invalid(key, "must be > 0", value)
        for key in ("lr", "audio_seconds"):
            if not math.isfinite(getattr(self, key)):
                raise invalid(key, "must be a finite number", getattr(self, key))
        if self.sample_rate > MAX_SAMPLE_RATE:
            raise invalid("sample_rate", f"must be at most {MAX_SAMPLE_RATE} Hz", self.sample_rate)
        if self.num_workers < 0:
            raise invalid("num_workers", "must be >= 0", self.num_workers)
        if not 0 <= self.seed <= MAX_SEED:
            raise invalid("seed", f"must be between 0 and {MAX_SEED}", self.seed)
        if self.resize not in ("resize", "pad"):
            raise invalid("resize", "must be 'resize' or 'pad'", self.resize)
        if self.accelerator not in ACCELERATORS:
            raise invalid("accelerator", f"must be one of {', '.join(ACCELERATORS)}", self.accelerator)
        if not _valid_devices(self.devices):
            raise invalid("devices", "must be a positive count, 'auto', -1 or device indices like '0,1'", self.devices)
        if self.max_steps is not None and self.max_epochs is not None:
            raise GonError("give either --max-steps or --max-epochs, not both")
        check_model_options(self.model, self.model_options)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> FitConfig:
        """Build from a dict, rejecting unknown keys, wrong types and out-of-range values with the key named."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        values = dict(values)
        for key, value in values.items():
            if not isinstance(key, str) or key not in known:
                raise GonError(f"{source}: unknown key {key!r}; known keys: {', '.join(known)}")
            values[key] = value = _coerce(value, hints[key])
            if not _matches(value, hints[key]):
                raise GonError(f"{source}: key {key!r} should be {_type_name(hints[key])}, got {value!r}")
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
        return dataclasses.asdict(self)


def invalid(key: str, what: str, value: Any) -> GonError:
    """An out-of-range value, named both as the YAML key and the CLI flag."""
    return GonError(f"option {key} (--{key.replace('_', '-')}) {what}, got {value!r}")


def check_model_options(model: str, options: Any) -> None:
    """Options must be constructor keywords of the chosen model, of the annotated types."""
    from gon.registry import MODELS  # imports torch: only once a config is being checked

    if model not in MODELS:
        raise GonError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    if not isinstance(options, dict):
        raise GonError(f"model_options should be a mapping of option names to values, got {options!r}")
    try:
        params = inspect.signature(MODELS[model], eval_str=True).parameters
    except (NameError, TypeError):  # annotations that cannot be evaluated here: check names only
        params = inspect.signature(MODELS[model]).parameters
    for key, value in options.items():
        if key not in params:
            raise GonError(f"model_options: model {model!r} has no option {key!r}; its options: {', '.join(params)}")
        hint = params[key].annotation
        if not isinstance(hint, str) and hint is not inspect.Parameter.empty:
            options[key] = value = _coerce(value, hint)
            if not _matches(value, hint):
                raise GonError(
                    f"model_options: option {key!r} of model {model!r} should be {_type_name(hint)}, got {value!r}"
                )


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(Path(path).read_text())  # safe_load: tags like !!python/object are refused
    except FileNotFoundError:
        raise GonError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise GonError(f"config file {path} is not readable YAML: {str(e).splitlines()[0]}") from None
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


def _coerce(value: Any, hint: Any) -> Any:
    """Numbers YAML reads as strings ("1e-4") become floats where a float is expected; nothing else changes."""
    if (
        isinstance(value, str)
        and _allows(hint, float)
        and not _allows(hint, str)
        and _FLOAT_TEXT.fullmatch(value.strip())
    ):
        return float(value)
    return value


def _allows(hint: Any, kind: type) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_allows(h, kind) for h in typing.get_args(hint))
    return hint is kind


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (tuple, list):  # YAML has no tuples: a list stands for either
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return (
            isinstance(value, (list, tuple)) and all(any(_matches(v, a) for a in args) for v in value)
            if args
            else isinstance(value, (list, tuple))
        )
    if origin is dict:
        return isinstance(value, dict)
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
