"""The auto-loader: ``gon.load`` rebuilds any saved model, run or checkpoint by looking its class up by name.

``gon.load(path)`` takes a saved-model directory (:mod:`gon.models.pretrained`), a run directory (its
``model/`` export; its last checkpoint when there is none or it has more steps) or a Lightning ``.ckpt``, read with
``torch.load(weights_only=True)``, which refuses to run pickled code, or ``hf://owner/name[@revision]``, a saved model
on the Hugging Face Hub (:mod:`gon.storage.hub`). It sits above the
registry: the saved class name (or a checkpoint's ``--model`` name) says which class to rebuild.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from gon.core.errors import GonError
from gon.core.validate import check_tree, read_json_capped
from gon.models.pretrained import CONFIG, construct, load_pretrained, read_config, weights_mismatch
from gon.models.registry import MODELS, TASK_MODELS, model_class
from gon.storage import hub
from gon.storage.checkpoints import read_checkpoint
from gon.storage.runs import last_checkpoint

#: the settings of a run that say which data a model was trained on: defaults for the inference commands
TRAINING_DATA_KEYS = ("dataset", "data_dir", "resize", "limit_train", "seed", "split_seed", "sample_rate")
TRAINING_DATA_KEYS += ("audio_seconds",)


def locate(source: str | Path) -> tuple[str, Path]:
    """("pretrained", DIR) or ("checkpoint", FILE) for a saved model, a run directory, a .ckpt or a Hub repository
    (``hf://owner/name[@revision]``, pulled into huggingface_hub's cache)."""
    if isinstance(source, str) and source.startswith(hub.SCHEME):
        return "pretrained", hub.download(source)
    path = Path(source)
    if not path.exists():
        raise GonError(f"model {source} does not exist")
    if path.is_dir():
        if (path / CONFIG).is_file():
            return "pretrained", path
        if (path / "model" / CONFIG).is_file() and not checkpoint_is_newer(path):
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


def checkpoint_is_newer(run: Path) -> bool:
    """Whether RUN/checkpoints/last.ckpt holds more steps than RUN/model (a --resume that was stopped before it
    finished); said on stderr, since the saved model's latent Gaussian is then refitted. The saved model's step is
    its config.json's, or for an older gon's, metrics.json's (written with it); unknown: the saved model."""
    if not last_checkpoint(run).is_file():
        return False
    saved = read_json_capped(run / "model" / CONFIG, "saved-model config")
    steps = saved.get("steps") if isinstance(saved, dict) else None
    if steps is None and (run / "metrics.json").is_file():
        metrics = read_json_capped(run / "metrics.json", "metrics")
        steps = metrics.get("steps") if isinstance(metrics, dict) else None
    trained = read_checkpoint(last_checkpoint(run), mmap=True).get("global_step")
    if not isinstance(steps, int) or not isinstance(trained, int) or trained <= steps:
        return False
    print(
        f"gon: {last_checkpoint(run)} (step {trained}) is newer than {run / 'model'} (step {steps}): using the "
        f"checkpoint; gon fit --resume --out {run} finishes the run and saves its model",
        file=sys.stderr,
    )
    return True


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
    """Rebuild a model from a saved-model directory, a run directory, a Lightning checkpoint or a Hub repository
    (``hf://owner/name[@revision]``).

    The model comes back in eval mode on ``device``, with ``latent_gaussian`` (when saved) and
    ``training_data`` (when known) set.
    """
    kind, path = locate(source)
    model = load_saved(path) if kind == "pretrained" else load_checkpoint(path)
    check_finite_weights(model, path)
    if model.training_data is None and (run := run_directory(kind, path)) is not None:
        model.training_data = training_data_of_run(run)
    return model.to(device).eval()


def check_finite_weights(model: torch.nn.Module, where: Path) -> None:
    """NaN or infinite weights draw garbage: refuse them where the model is loaded."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise GonError(f"{where}: weight {name} holds NaN or infinite values; the model cannot be used")
    gaussian = getattr(model, "latent_gaussian", None)
    if gaussian is not None and not all(bool(torch.isfinite(t).all()) for t in (gaussian.mean, gaussian.scale_tril)):
        raise GonError(f"{where}: the latent statistics hold NaN or infinite values")


def load_saved(directory: Path) -> torch.nn.Module:
    """A saved model of any registered class (the class named in its config.json)."""
    record = read_config(directory)
    return load_pretrained(registered_class(record.get("class"), directory / CONFIG), directory, record)


def registered_class(name: Any, where: Path) -> type:
    """The class a saved model or checkpoint at ``where`` names (a class or ``--model`` name)."""
    try:
        return model_class(name)
    except (KeyError, TypeError):
        known = ", ".join(c.__name__ for c in {**MODELS, **TASK_MODELS}.values())
        raise GonError(f"{where} names unknown model class {name!r}; known: {known}") from None


def load_checkpoint(path: Path) -> torch.nn.Module:
    """A model from a Lightning checkpoint of ``gon fit`` (hyperparameters ``model`` and ``model_options``)."""
    ckpt = read_checkpoint(path)  # torch.load(weights_only=True): never runs pickled code
    hparams = ckpt.get("hyper_parameters")
    if not isinstance(hparams, dict) or "model" not in hparams or not isinstance(ckpt.get("state_dict"), dict):
        raise GonError(f"{path} is not a gon checkpoint (no model hyperparameters or state_dict)")
    check_tree(hparams, f"checkpoint {path}")  # nesting capped, numbers finite
    model = construct(registered_class(hparams["model"], path), hparams.get("model_options", {}), path)
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        shapes = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else None for k, v in state.items()}
        raise GonError(
            f"{path}: weights do not fit {type(model).__name__}: {weights_mismatch(model, shapes, e)}"
        ) from None
    return model
