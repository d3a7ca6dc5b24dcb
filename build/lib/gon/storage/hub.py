"""The Hugging Face Hub (``pip install 'gon[hub]'``): push a saved model with its model card, pull one by repo id.

A Hub repository of gon holds exactly a saved-model directory (:mod:`gon.models.pretrained`: config.json with the
checksums, model.safetensors, latents.safetensors) and a generated README.md. Pulling downloads those four files
and nothing else (no pickle can arrive), then loads them by the local code, which checks every checksum: a hostile
repo is treated like a hostile folder.

Why not huggingface_hub's ``ModelHubMixin``: it must be a base class of the models, which would make the Hub a
dependency of every gon install, and it writes its own config.json (``__init__``'s arguments, no checksums, no class
name) and reads it back unchecked. gon keeps its format and uses the pieces under the mixin instead:
``snapshot_download`` (cache, revisions, ``HF_HUB_OFFLINE``), ``HfApi.upload_folder`` and ``ModelCard``.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from gon.core.errors import GonError
from gon.core.validate import read_json_capped
from gon.storage.runs import SAVED_MODEL_CONFIG as CONFIG
from gon.storage.runs import SAVED_MODEL_LATENTS as LATENTS
from gon.storage.runs import SAVED_MODEL_WEIGHTS as WEIGHTS

SCHEME = "hf://"
CARD = "README.md"
#: the only files pulled from a repository
FILES = [CONFIG, WEIGHTS, LATENTS, CARD]
#: the Hub's ids of the datasets gon reads by name (for the card's ``datasets:`` metadata)
HUB_DATASETS = {
    "mnist": "ylecun/mnist",
    "fashion-mnist": "zalando-datasets/fashion_mnist",
    "cifar10": "uoft-cs/cifar10",
}
#: metrics.json's figures of test quality (the card's ``metrics:`` metadata)
TEST_FIGURES = ("test_sse", "test_mse", "test_psnr", "test_elbo_bits_per_dim", "test_bits_per_dim", "test_accuracy")
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def _hub(source: str | None = None):
    """huggingface_hub, or a GonError saying how to install it (``source``: the model asked for, when a bare
    ``owner/name`` that may be a mistyped local folder)."""
    try:
        import huggingface_hub
    except ImportError:
        where = f"{source} is not a local folder; as a Hub model it" if source and not source.startswith(SCHEME) else ""
        raise GonError(f"{where or 'the Hugging Face Hub'} needs the hub extra: pip install 'gon[hub]'") from None
    return huggingface_hub


def parse(source: str) -> tuple[str, str | None]:
    """``hf://owner/name[@revision]`` (or ``owner/name[@revision]``) -> (repo id, revision or None)."""
    spec = source.removeprefix(SCHEME)
    repo_id, _, revision = spec.partition("@")
    if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id or "@" in source and not revision:
        raise GonError(f"{source} is not a Hub model: give hf://owner/name or hf://owner/name@revision")
    return repo_id, revision or None


def is_hub_source(source: Any) -> bool:
    """Whether ``source`` names a Hub repository: ``hf://...``, or ``owner/name`` where no such local path exists."""
    if not isinstance(source, str):
        return False
    if source.startswith(SCHEME):
        return True
    return not Path(source).exists() and bool(_REPO_ID.fullmatch(source.partition("@")[0]))


def download(source: str, cache_dir: str | Path | None = None) -> Path:
    """The local snapshot folder of ``hf://owner/name[@revision]``: from huggingface_hub's cache, downloaded into it
    when missing (offline with ``HF_HUB_OFFLINE=1``: the cache only). Only gon's files are fetched."""
    repo_id, revision = parse(source)
    hub = _hub(source)
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    shown = SCHEME + repo_id + (f"@{revision}" if revision else "")
    try:
        folder = hub.snapshot_download(
            repo_id, revision=revision, cache_dir=cache_dir, allow_patterns=FILES, library_name="gon"
        )
    except LocalEntryNotFoundError:
        how = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub cannot be reached"
        raise GonError(
            f"{shown} is not in the Hugging Face cache and {how}: download it once online "
            f"(python -c \"import gon; gon.load('{shown}')\" or hf download {repo_id})"
        ) from None
    except (HfHubHTTPError, HFValidationError) as e:
        raise GonError(f"{shown}: {str(e).splitlines()[0]}") from None
    folder = Path(folder)
    if not (folder / CONFIG).is_file():
        raise GonError(f"{shown} is not a gon model: its repository has no {CONFIG}")
    return folder


def _run_files(run: Path | None) -> tuple[dict, dict, dict]:
    """metrics.json, provenance.json and config.yaml of a run (empty where missing)."""
    import yaml

    if run is None:
        return {}, {}, {}
    metrics = read_json_capped(run / "metrics.json", "metrics") if (run / "metrics.json").is_file() else {}
    prov = read_json_capped(run / "provenance.json", "provenance") if (run / "provenance.json").is_file() else {}
    settings = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}
    return (metrics if isinstance(metrics, dict) else {}), (prov if isinstance(prov, dict) else {}), settings or {}


def model_card(
    model: torch.nn.Module, run: str | Path | None = None, license: str = "mit", repo_id: str = "OWNER/NAME"
):
    """A ``huggingface_hub.ModelCard`` for ``model``: YAML metadata (library gon, tags, license, dataset) and a body
    with the training data and split, ``run``'s metrics.json figures, its commands and gon's version."""
    import gon

    hub = _hub()
    run = Path(run) if run is not None else None
    metrics, provenance, settings = _run_files(run)
    data = {**(getattr(model, "training_data", None) or {}), **{k: v for k, v in settings.items() if v is not None}}
    dataset = str(data.get("dataset") or "unknown")
    name = type(model).__name__
    card_data = hub.ModelCardData(
        library_name="gon",
        license=license,
        tags=["gon", "gradient-origin-networks", "pytorch", "safetensors", name],
        datasets=[HUB_DATASETS[dataset]] if dataset in HUB_DATASETS else None,
        metrics=[k.removeprefix("test_") for k, v in metrics.items() if k in TEST_FIGURES and _is_number(v)] or None,
    )
    split = f"training split: {data['limit_train']:,} images" if data.get("limit_train") else "the whole training split"
    if data.get("limit_train"):
        split += f" (seeded random, stratified, seed {data.get('seed', 0)})"
    lines = [
        f"# {name} ({dataset})",
        "",
        f"A {name} of gon, the library of Gradient Origin Networks (Bond-Taylor & Willcocks, "
        "ICLR 2021): the decoder encodes an image by one gradient step at the origin of its latent space.",
        "",
        "```python",
        "import gon",
        f'model = gon.load("hf://{repo_id}")  # gon with its hub extra: pip install ".[hub]" in a clone of gon',
        "x_hat = model.reconstruct(x)  # x: float [B, C, H, W] in [0, 1]",
        "```",
        "",
        "## Training data",
        "",
        f"- dataset: `{dataset}`" + (f" (`{data['data_dir']}`)" if data.get("data_dir") else ""),
        f"- {split}; held-out split seed {data.get('split_seed', 0)}",
    ]
    if metrics.get("test_measured_on"):
        lines.append(f"- test figures measured on {metrics['test_measured_on']}")
    lines += ["", "## Model", "", f"- class `{name}`, {sum(p.numel() for p in model.parameters()):,} parameters"]
    lines += [f"- `{k}`: `{json.dumps(v)}`" for k, v in sorted((getattr(model, "config", None) or {}).items())]
    numbers = {k: v for k, v in metrics.items() if _is_number(v)}
    if numbers:
        lines += ["", "## Metrics (metrics.json)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.6g} |" for k, v in numbers.items()]
    sessions = [s for s in provenance.get("sessions", []) if isinstance(s, dict)]
    if sessions:
        lines += ["", "## Command", "", "```bash", *[str(s.get("command", "")) for s in sessions], "```"]
    versions = sessions[-1].get("versions", {}) if sessions else {}
    trained = f"trained with gon {versions['gon']}" if isinstance(versions, dict) and versions.get("gon") else ""
    lines += ["", f"gon {gon.__version__} wrote this card" + (f"; {trained}" if trained else "") + "."]
    return hub.ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def save_for_hub(
    model: torch.nn.Module,
    directory: str | Path,
    run: str | Path | None = None,
    license: str = "mit",
    repo_id: str = "OWNER/NAME",
) -> Path:
    """Write what a Hub repository of ``model`` holds into ``directory``: the saved model and its README.md card."""
    directory = Path(directory)
    model.save_pretrained(directory)
    model_card(model, run, license, repo_id).save(directory / CARD)
    return directory


def push_to_hub(
    model: torch.nn.Module,
    repo_id: str,
    run: str | Path | None = None,
    *,
    revision: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    license: str = "mit",
    commit_message: str | None = None,
) -> str:
    """Upload ``model`` (saved model + card; ``run``: the run directory whose figures the card shows) to
    ``repo_id`` on the Hub, creating the repository if needed; returns the commit's URL."""
    repo_id, _ = parse(repo_id)
    hub = _hub()
    api = hub.HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_for_hub(model, Path(tmp) / "model", run, license, repo_id)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            revision=revision,
            commit_message=commit_message or f"gon: upload {type(model).__name__}",
        )
    return str(getattr(info, "commit_url", info))
