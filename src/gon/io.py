"""Saved models: ``save_pretrained`` / ``from_pretrained`` / ``gon.load``, and reading checkpoints and runs.

A saved model is a directory with no pickle in it::

    config.json          format, class, constructor keywords, training data, SHA-256 of the files below
    model.safetensors    the weights
    latents.safetensors  the latent Gaussian fitted to training latents, for sampling (optional)

``gon.load(path)`` also takes a run directory (its ``model/`` export, else its last checkpoint) and
a Lightning ``.ckpt``, read with ``torch.load(weights_only=True)``, which refuses to run pickled code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from gon.errors import GonError
from gon.sampling import LatentGaussian

FORMAT, FORMAT_VERSION = "gon-pretrained", 1
CONFIG, WEIGHTS, LATENTS = "config.json", "model.safetensors", "latents.safetensors"
TRAINING_DATA_KEYS = ("dataset", "data_dir", "resize", "limit_train", "seed", "sample_rate", "audio_seconds")


class PretrainedMixin:
    """``save_pretrained`` and ``from_pretrained`` for every gon model (mixed into GradientOriginModel)."""

    #: fitted to training latents for sampling a non-variational model; set by ``gon.load``
    latent_gaussian: LatentGaussian | None = None
    #: the data the model was trained on (dataset name, data_dir, resize): defaults for the CLI
    training_data: dict[str, Any] | None = None

    def save_pretrained(
        self,
        directory: str | Path,
        latent_gaussian: LatentGaussian | None = None,
        training_data: dict[str, Any] | None = None,
    ) -> Path:
        """Write config.json + model.safetensors (+ latents.safetensors) into ``directory``."""
        return save_pretrained(self, directory, latent_gaussian, training_data)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu"):
        """Rebuild a saved model (or a run's, or a checkpoint's), checking it is a ``cls``."""
        model = load(directory, device)
        if not isinstance(model, cls):
            raise GonError(f"{directory} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _registered_name(cls: type) -> str:
    from gon.registry import MODELS, TASK_MODELS

    for name, registered in {**MODELS, **TASK_MODELS}.items():
        if registered is cls:
            return name
    raise GonError(f"{cls.__name__} is not in gon.registry.MODELS, so gon.load could not rebuild it; register it first")


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def save_pretrained(
    model: torch.nn.Module,
    directory: str | Path,
    latent_gaussian: LatentGaussian | None = None,
    training_data: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` as a directory that :func:`load` rebuilds exactly (see the module docstring).

    ``latent_gaussian`` and ``training_data`` default to the model's own attributes.
    """
    directory = Path(directory)
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise GonError(f"{type(model).__name__} has no constructor config to save; gon models record it when built")
    latent_gaussian = latent_gaussian or getattr(model, "latent_gaussian", None)
    training_data = training_data or getattr(model, "training_data", None)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": _registered_name(type(model)),
        "class": type(model).__name__,
        "config": config,
        "training_data": training_data,
    }
    try:
        json.dumps(record, default=_json_value)  # fail before touching the directory
    except TypeError as e:
        raise GonError(f"{type(model).__name__}'s config cannot be written as JSON: {e}") from None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG).unlink(missing_ok=True)  # written last: a half-written save is never loadable
        save_model(model, str(directory / WEIGHTS), metadata={"format": FORMAT})
        record["weights_sha256"] = sha256(directory / WEIGHTS)
        record["latents_sha256"] = None
        if latent_gaussian is not None:
            record["latents_sha256"] = sha256(latent_gaussian.save(directory / LATENTS))
        else:
            (directory / LATENTS).unlink(missing_ok=True)
        (directory / CONFIG).write_text(json.dumps(record, indent=2, default=_json_value) + "\n")
    except OSError as e:
        raise GonError(f"cannot write saved model to {directory}: {e.strerror or e}") from None
    return directory


# -- reading ------------------------------------------------------------------------------------
def locate(source: str | Path) -> tuple[str, Path]:
    """("pretrained", DIR) or ("checkpoint", FILE) for a saved model, a run directory or a .ckpt."""
    from gon.runs import last_checkpoint

    path = Path(source)
    if not path.exists():
        raise GonError(f"model {source} does not exist")
    if path.is_dir():
        if (path / CONFIG).is_file():
            return "pretrained", path
        if (path / "model" / CONFIG).is_file():
            return "pretrained", path / "model"
        if last_checkpoint(path).is_file():
            return "checkpoint", last_checkpoint(path)
        raise GonError(
            f"{path} is not a saved model (no {CONFIG}) nor a run directory (no model/{CONFIG} or "
            f"checkpoints/last.ckpt)"
        )
    if path.suffix == ".ckpt":
        return "checkpoint", path
    raise GonError(f"{path} is not a saved model: give a run directory, a saved-model directory or a .ckpt checkpoint")


def run_directory(kind: str, path: Path) -> Path | None:
    """The run a saved model or checkpoint came from (RUN/model, RUN/checkpoints/X.ckpt), if any."""
    run = path.parent if kind == "pretrained" else path.parent.parent
    return run if (run / "config.yaml").is_file() and (run / "checkpoints").is_dir() else None


def training_data_of_run(run: Path) -> dict[str, Any] | None:
    try:
        config = yaml.safe_load((run / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    return {k: config.get(k) for k in TRAINING_DATA_KEYS} if isinstance(config, dict) else None


def load(source: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a model from a saved-model directory, a run directory or a Lightning checkpoint.

    The model comes back in eval mode on ``device``, with ``latent_gaussian`` (when saved) and
    ``training_data`` (when known) set.
    """
    kind, path = locate(source)
    model = load_pretrained(path) if kind == "pretrained" else load_checkpoint(path)
    if model.training_data is None and (run := run_directory(kind, path)) is not None:
        model.training_data = training_data_of_run(run)
    return model.to(device).eval()


def _build(name: Any, options: Any, where: Path) -> torch.nn.Module:
    from gon.registry import MODELS, TASK_MODELS, model_class

    if not isinstance(name, str) or not isinstance(options, dict):
        raise GonError(f"{where} does not name a model class and its options")
    try:
        cls = model_class(name)
    except KeyError:
        raise GonError(
            f"{where} names unknown model class {name!r}; "
            f"known: {', '.join(c.__name__ for c in {**MODELS, **TASK_MODELS}.values())}"
        ) from None
    try:
        return cls(**options)
    except (TypeError, ValueError) as e:
        raise GonError(f"{where}: cannot build {cls.__name__}: {e}") from None


def load_pretrained(directory: Path) -> torch.nn.Module:
    """A model from config.json + model.safetensors (+ latents.safetensors), every file checked."""
    config_path = directory / CONFIG
    try:
        record = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GonError(f"{config_path} is not readable JSON: {e}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise GonError(f"{config_path} is not a gon saved-model config (format is not {FORMAT!r})")
    if record.get("format_version", 0) > FORMAT_VERSION:
        raise GonError(
            f"{config_path} has format version {record['format_version']}; this gon reads up to {FORMAT_VERSION}"
        )
    model = _build(record.get("class"), record.get("config"), config_path)
    weights = directory / WEIGHTS
    _check_file(weights, record.get("weights_sha256"), config_path)
    try:
        load_model(model, str(weights), strict=True)
    except (SafetensorError, RuntimeError) as e:
        raise GonError(
            f"{weights} does not fit the {type(model).__name__} of {config_path}: {str(e).splitlines()[0]}"
        ) from None
    if record.get("latents_sha256"):
        _check_file(directory / LATENTS, record["latents_sha256"], config_path)
        model.latent_gaussian = LatentGaussian.load(directory / LATENTS)
    model.training_data = record.get("training_data")
    return model


def _check_file(path: Path, expected: Any, config_path: Path) -> None:
    if not path.is_file():
        raise GonError(f"{path} is missing (listed in {config_path})")
    if sha256(path) != expected:
        raise GonError(f"{path} does not match its SHA-256 in {config_path}: the file was modified or is corrupt")


def load_checkpoint(path: Path) -> torch.nn.Module:
    """A model from a Lightning checkpoint of ``gon fit`` (hyperparameters ``model`` and ``model_options``)."""
    from gon.checkpointing import read_checkpoint  # torch.load(weights_only=True): never runs pickled code

    ckpt = read_checkpoint(path)
    hparams = ckpt.get("hyper_parameters")
    if not isinstance(hparams, dict) or "model" not in hparams or not isinstance(ckpt.get("state_dict"), dict):
        raise GonError(f"{path} is not a gon checkpoint (no model hyperparameters or state_dict)")
    model = _build(hparams["model"], hparams.get("model_options", {}), path)
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise GonError(f"{path}: weights do not fit {type(model).__name__}: {str(e).splitlines()[0]}") from None
    return model
