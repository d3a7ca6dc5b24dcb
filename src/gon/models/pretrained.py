"""The saved-model format: ``save_pretrained`` / ``from_pretrained`` of a known class, no pickle.

A saved model is a directory::

    config.json          format, class name, constructor keywords, training data, SHA-256 of the files below
    model.safetensors    the weights
    latents.safetensors  the latent Gaussian fitted to training latents, for sampling (optional)

Like diffusers' ``ModelMixin`` this is the mixin every gon model inherits: a class rebuilds
itself with ``cls(**config)`` and knows no names. Finding the class of an unknown directory, a
run or a checkpoint is the auto-loader's job (:func:`gon.models.loading.load`, above the registry).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model

from gon.core.errors import GonError
from gon.core.settings import check_options, options_of, required
from gon.core.validate import check_model_fits, read_json_capped, shown
from gon.sampling import LatentGaussian
from gon.storage.atomic import replace_directory, rust_readable, with_umask, write_text
from gon.storage.runs import (
    SAVED_MODEL_CONFIG,
    SAVED_MODEL_FORMAT,
    SAVED_MODEL_LATENTS,
    SAVED_MODEL_WEIGHTS,
    is_saved_model,
)

FORMAT, FORMAT_VERSION = SAVED_MODEL_FORMAT, 1
CONFIG, WEIGHTS, LATENTS = SAVED_MODEL_CONFIG, SAVED_MODEL_WEIGHTS, SAVED_MODEL_LATENTS


class PretrainedMixin:
    """``save_pretrained`` and ``from_pretrained`` for every gon model (mixed into GradientOriginModel)."""

    #: fitted to training latents for sampling a non-variational model; set when loaded
    latent_gaussian: LatentGaussian | None = None
    #: the data the model was trained on (dataset name, data_dir, resize): defaults for the CLI
    training_data: dict[str, Any] | None = None

    def save_pretrained(
        self,
        directory: str | Path,
        latent_gaussian: LatentGaussian | None = None,
        training_data: dict[str, Any] | None = None,
        steps: int | None = None,
    ) -> Path:
        """Write config.json + model.safetensors (+ latents.safetensors) into ``directory``."""
        return save_pretrained(self, directory, latent_gaussian, training_data, steps)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu"):
        """Rebuild a model saved by ``save_pretrained``, checking it is a ``cls``; in eval mode on ``device``.

        ``directory`` may name a Hugging Face Hub repository instead: ``"owner/name"`` (where no such local path
        exists) or ``"hf://owner/name@revision"``, pulled through huggingface_hub's cache (the ``hub`` extra)."""
        from gon.storage import hub

        if hub.is_hub_source(directory):
            directory = hub.download(directory)
        record = read_config(Path(directory))
        if record.get("class") != cls.__name__:
            raise GonError(f"{directory} holds a {record.get('class')}, not a {cls.__name__}")
        return load_pretrained(cls, Path(directory), record).to(device).eval()

    def push_to_hub(self, repo_id: str, run: str | Path | None = None, **options: Any) -> str:
        """Upload this model and a generated model card to the Hugging Face Hub repository ``repo_id``
        (``owner/name``); ``run``: the run directory whose metrics and command the card shows. Options:
        :func:`gon.storage.hub.push_to_hub`'s (revision, private, token, license, commit_message)."""
        from gon.storage import hub

        return hub.push_to_hub(self, repo_id, run, **options)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def save_pretrained(
    model: torch.nn.Module,
    directory: str | Path,
    latent_gaussian: LatentGaussian | None = None,
    training_data: dict[str, Any] | None = None,
    steps: int | None = None,
) -> Path:
    """Save ``model`` as a directory that ``type(model).from_pretrained`` rebuilds exactly.

    ``latent_gaussian`` and ``training_data`` default to the model's own attributes. ``steps``: the optimiser steps
    it was trained for, recorded so that a run's newer checkpoint can be told from its saved model.
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
        "class": type(model).__name__,
        "config": config,
        "training_data": training_data,
        "steps": steps,
    }
    try:
        json.dumps(record, default=_json_value)  # fail before touching the directory
    except TypeError as e:
        raise GonError(f"{type(model).__name__}'s config cannot be written as JSON: {e}") from None
    record["weights_sha256"] = record["latents_sha256"] = None

    def write(folder: Path) -> None:  # into a fresh folder that replaces ``directory`` once complete
        carry_over(directory, folder)
        save_model(model, str(folder / WEIGHTS), metadata={"format": FORMAT})
        with_umask(folder / WEIGHTS)  # safetensors creates its files 0600; gon's files get the user's umask
        record["weights_sha256"] = sha256(folder / WEIGHTS)
        if latent_gaussian is not None:
            record["latents_sha256"] = sha256(with_umask(latent_gaussian.save(folder / LATENTS)))
        write_text(folder / CONFIG, json.dumps(record, indent=2, default=_json_value) + "\n")

    if directory.exists() and (not directory.is_dir() or not is_saved_model(directory) and any(directory.iterdir())):
        raise GonError(f"{directory} is not empty and not a gon saved model: refusing to replace it")
    replace_directory(directory, write)  # a kill at any moment leaves the old model or the new one
    return directory


def carry_over(old: Path, new: Path) -> None:
    """Copy into ``new`` every file of the saved model ``old`` that is not the model's own (the user's notes, an
    older gon's evaluation JSON): replacing a saved model replaces the model, nothing else."""
    if not old.is_dir():
        return
    for entry in old.iterdir():
        if entry.name in (CONFIG, WEIGHTS, LATENTS):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, new / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, new / entry.name, follow_symlinks=False)


def read_config(directory: Path) -> dict[str, Any]:
    """The checked record of ``directory``/config.json (format and version known)."""
    config_path = directory / CONFIG
    record = read_json_capped(config_path, "saved-model config")  # size and depth capped, numbers finite
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise GonError(f"{config_path} is not a gon saved-model config (format is not {FORMAT!r})")
    version = record.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise GonError(f"{config_path}: format_version must be a whole number, got {shown(version)}")
    if not isinstance(record.get("training_data"), dict | None):
        raise GonError(f"{config_path}: training_data must be a mapping or null, got {shown(record['training_data'])}")
    if version > FORMAT_VERSION:
        raise GonError(
            f"{config_path} has format version {record['format_version']}; this gon reads up to {FORMAT_VERSION}"
        )
    return record


def construct(
    cls: type, options: Any, where: Path | str, training: bool = False, weights: Path | None = None
) -> torch.nn.Module:
    """``cls(**options)``, the options first checked against the class's schema (:func:`gon.core.settings.options_of`);
    a bad option is a GonError naming ``where`` it came from. ``training``: memory is checked for the weights,
    their gradients and Adam's two moments, not the weights alone. ``weights``: the file the model will be
    loaded from, which must be large enough for its parameters."""
    if not isinstance(options, dict):
        raise GonError(f"{where} does not give {cls.__name__}'s options as a mapping")

    def cannot_build(e: Exception) -> GonError:
        return GonError(f"{where}: cannot build {cls.__name__}: {e}".replace("__init__() ", ""))

    try:
        options = check_options(options_of(cls), options, owner=cls.__name__)
        missing = [name for name in required(cls) if name not in options]
        if missing:
            raise GonError(f"{cls.__name__} needs option {', '.join(missing)}")
    except GonError as e:
        raise cannot_build(e) from None
    check_model_fits(cls, options, str(where), training, weights)  # on the meta device first; its errors name where
    try:
        return cls(**options)
    except (GonError, TypeError, ValueError) as e:
        raise cannot_build(e) from None


def load_pretrained(cls: type, directory: Path, record: dict[str, Any]) -> torch.nn.Module:
    """A ``cls`` from its checked ``record`` (:func:`read_config`) + model.safetensors (+ latents.safetensors)."""
    config_path = directory / CONFIG
    weights = directory / WEIGHTS
    _check_file(weights, record.get("weights_sha256"), config_path)  # before building: a bad file costs nothing
    model = construct(cls, record.get("config"), config_path, weights=weights)
    try:
        with rust_readable(weights) as name:
            load_model(model, name, strict=True)
    except (SafetensorError, RuntimeError) as e:
        raise GonError(
            f"{weights} does not fit the {type(model).__name__} of {config_path}: "
            f"{weights_mismatch(model, safetensors_shapes(weights), e)}"
        ) from None
    if record.get("latents_sha256"):
        _check_file(directory / LATENTS, record["latents_sha256"], config_path)
        model.latent_gaussian = LatentGaussian.load(directory / LATENTS)
        dim = getattr(model, "latent_dim", model.latent_gaussian.dim)
        if model.latent_gaussian.dim != dim:
            raise GonError(
                f"{directory / LATENTS} holds {model.latent_gaussian.dim}-dimensional statistics; "
                f"the model's latents have {dim} dimensions"
            )
    model.training_data = record.get("training_data")
    return model


def weights_mismatch(model: torch.nn.Module, shapes: dict[str, tuple | None] | None, error: Exception) -> str:
    """Why weights of these ``shapes`` (name -> shape; None: not a tensor) do not fit ``model``: the first missing,
    unexpected or mis-shaped one and how many more, where torch's message starts with a bare header line."""
    if shapes is None:  # the header itself is unreadable: a damaged file, not missing weights
        reason = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        return f"its header is not readable, the file is damaged ({reason})"
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = [f"missing {k}" for k in expected if k not in shapes]
    problems += [f"unexpected {k}" for k in shapes if k not in expected]
    problems += [
        f"{k} is {'not a tensor' if shapes[k] is None else list(shapes[k])}, the model's is {list(expected[k])}"
        for k in expected
        if k in shapes and shapes[k] != expected[k]
    ]
    if problems:
        return problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return next((line for line in lines if not line.startswith("Error(s) in loading")), type(error).__name__)


def safetensors_shapes(path: Path) -> dict[str, tuple] | None:
    """The names and shapes of a safetensors file's tensors (read from its header), or None if it is unreadable."""
    try:
        with rust_readable(path) as name, safe_open(name, "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError):
        return None


def _check_file(path: Path, expected: Any, config_path: Path) -> None:
    if not path.is_file():
        raise GonError(f"{path} is missing (listed in {config_path})")
    if sha256(path) != expected:
        raise GonError(f"{path} does not match its SHA-256 in {config_path}: the file was modified or is corrupt")
