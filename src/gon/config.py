"""The settings of a training run: one typed, validated record, written to RUN/config.yaml."""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gon.errors import GonError


@dataclass
class FitConfig:
    """Everything ``gon fit`` needs. CLI flags and YAML keys have the same names (``-`` for ``_``)."""

    model: str = "gon"
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    image_size: int | None = None  # None: the dataset's size, grown to 32 for the conv models
    resize: str = "resize"  # how 28x28 data reaches 32x32: "resize" (bilinear, as the paper) or "pad"
    batch_size: int = 64
    lr: float = 1e-4
    max_steps: int | None = None
    max_epochs: int | None = None  # neither given: one epoch
    seed: int = 0
    out: str | None = None
    resume: bool = False
    overwrite: bool = False
    accelerator: str = "auto"
    devices: str = "auto"
    strategy: str = "auto"
    num_workers: int = 0
    val_every: int | None = None  # steps between test evaluations; None: once per epoch
    val_size: int = 10000  # test images used at intervals (the final evaluation uses all)
    checkpoint_every: int = 500  # steps
    picture_every: int = 500  # steps
    limit_train: int | None = None  # use only the first N training images (quick runs, tests)
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        positive = ["batch_size", "lr", "val_size", "checkpoint_every", "picture_every"]
        positive += [k for k in ("max_steps", "max_epochs", "val_every", "image_size", "limit_train") if getattr(self, k) is not None]
        for key in positive:
            if getattr(self, key) <= 0:
                raise GonError(f"option {key.replace('_', '-')} must be > 0, got {getattr(self, key)}")
        if self.num_workers < 0:
            raise GonError(f"option num-workers must be >= 0, got {self.num_workers}")
        if self.resize not in ("resize", "pad"):
            raise GonError(f"option resize must be 'resize' or 'pad', got {self.resize!r}")
        if self.max_steps is not None and self.max_epochs is not None:
            raise GonError("give either --max-steps or --max-epochs, not both")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "FitConfig":
        """Build from a dict, rejecting unknown keys and wrong types with the key named."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        for key, value in values.items():
            if key not in known:
                raise GonError(f"{source}: unknown key {key!r}; known keys: {', '.join(known)}")
            if not _matches(value, hints[key]):
                raise GonError(f"{source}: key {key!r} should be {_type_name(hints[key])}, got {value!r}")
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "FitConfig":
        return cls.from_dict(read_yaml(path), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise GonError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise GonError(f"config file {path} is not readable YAML: {str(e).splitlines()[0]}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise GonError(f"config file {path} must hold a mapping of keys to values")
    return values


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, (str, int)) and not isinstance(value, bool)  # devices: 2 or "auto"
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "")
