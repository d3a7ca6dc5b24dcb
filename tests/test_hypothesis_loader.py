"""Property-based suite through the full loaders: generated saved-model config.json records and weights files
through ``gon.load``, generated YAML through ``gon fit --config``, generated values of the inference commands'
flags through ``gon sample|render|reconstruct`` on a saved model. Each case gives a valid result or a GonError
(exit 2 from the CLI), never another exception, in bounded time and memory (test_validation_properties'
``valid_or_gon_error``).

Cases per run: config.json 900, weights 500, YAML 500, inference flags 200 (2,100; with
test_validation_properties' 3,600: 5,700).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import gon
from gon.cli import build_parser, main
from gon.cli.fit import config_from_args
from gon.sampling import LatentGaussian
from gon.training.config import FitConfig
from tests.helpers import blob_folder, tiny_model
from tests.test_validation_properties import FAST, scalars, trees, valid_or_gon_error

MODELS = ("gon", "vgon", "implicit")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """A tiny saved model of each kind, with latent statistics, trained on a folder of blobs."""
    root = tmp_path_factory.mktemp("saved")
    data = blob_folder(root / "blobs", n=8, size=16)
    out = {}
    for name in MODELS:
        model = tiny_model(name)
        gaussian = LatentGaussian.fit(torch.randn(16, model.latent_dim)) if name != "vgon" else None
        out[name] = model.save_pretrained(root / name, latent_gaussian=gaussian, training_data={"dataset": data})
    for command in COMMAND_FLAGS:  # first uses import what each command needs: not counted in a case's time
        assert main([command, str(out["implicit"]), "-n", "2", "--out", str(root / "warm.png")]) == 0
    return out


def copy_of(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "case"
    shutil.rmtree(target, ignore_errors=True)
    return Path(shutil.copytree(source, target))


def record_of(directory: Path) -> dict:
    return json.loads((directory / "config.json").read_text())


def write_record(directory: Path, record) -> None:
    (directory / "config.json").write_text(json.dumps(record))


# -- config.json ---------------------------------------------------------------------------------
TOP_KEYS = ["format", "format_version", "class", "config", "training_data", "weights_sha256", "latents_sha256"]
OPTION_KEYS = ["latent_dim", "width", "hidden", "depth", "channels", "image_size", "w0", "step_size", "z0_std"]
#: values for a record: sizes either refused by the memory estimate (10**9 and up) or small, so that cases stay
#: fast; sizes in between are refused by the weights file's size before anything is built
#: (test_validation::test_a_config_asking_for_more_weights_than_its_file_holds_is_refused_before_building)
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2048, 2048)
    | st.sampled_from([10**9, 2**40, 10**30, -(10**9)])
    | st.floats()
    | st.text(max_size=30),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
)
edits = st.lists(
    st.tuples(
        st.sampled_from([(k,) for k in TOP_KEYS] + [("config", k) for k in OPTION_KEYS]),
        st.sampled_from(["set", "delete"]),
        values,
    ),
    min_size=1,
    max_size=3,
)


def edited(record: dict, changes) -> dict:
    for path, action, value in changes:
        parent = record
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if action == "delete":
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = value
    return record


@settings(max_examples=900, **FAST)
@given(name=st.sampled_from(MODELS), changes=edits | values.map(lambda whole: [((), "whole", whole)]))
def test_any_saved_model_config_through_the_full_loader(saved, tmp_path, name, changes):
    model = copy_of(saved[name], tmp_path)
    record = changes[0][2] if changes[0][1] == "whole" else edited(record_of(model), changes)
    write_record(model, record)
    valid_or_gon_error(lambda: gon.load(model), "full loaders")


# -- weights ---------------------------------------------------------------------------------------
tensor_edits = st.sampled_from(["keep", "keep", "drop", "reshape", "float16", "float64", "int8", "bool", "nan"])
DTYPES = {"float16": torch.float16, "float64": torch.float64, "int8": torch.int8, "bool": torch.bool}


def edited_tensor(tensor: torch.Tensor, how: str) -> torch.Tensor | None:
    if how == "drop":
        return None
    if how == "reshape":
        return torch.zeros(tensor.numel() + 1)
    if how in DTYPES:
        return tensor.to(DTYPES[how])
    if how == "nan":
        return torch.full_like(tensor, float("nan"))
    return tensor


@settings(max_examples=500, **FAST)
@given(
    name=st.sampled_from(MODELS),
    changes=st.lists(tensor_edits, min_size=1, max_size=12),
    extra=st.dictionaries(st.text(min_size=1, max_size=8), st.integers(0, 3), max_size=2),
    cut=st.none() | st.floats(0, 1),
    latents=st.booleans(),
)
def test_any_weights_file_through_the_full_loader(saved, tmp_path, name, changes, extra, cut, latents):
    """Wrong shapes and dtypes, missing and extra tensors, NaN values, truncated files: the SHA-256 in config.json
    is updated, so the weights reach the reader itself."""
    model = copy_of(saved[name], tmp_path)
    file = model / ("latents.safetensors" if latents and name != "vgon" else "model.safetensors")
    tensors = {}
    for i, (key, tensor) in enumerate(sorted(load_file(str(file)).items())):
        new = edited_tensor(tensor, changes[i % len(changes)])
        if new is not None:
            tensors[key] = new.contiguous()
    tensors.update({key: torch.zeros(size) for key, size in extra.items()})
    save_file(tensors, str(file))
    if cut is not None:
        data = file.read_bytes()
        file.write_bytes(data[: int(cut * len(data))])
    record = record_of(model)
    record["latents_sha256" if file.name.startswith("latents") else "weights_sha256"] = hashlib.sha256(
        file.read_bytes()
    ).hexdigest()
    write_record(model, record)
    valid_or_gon_error(lambda: gon.load(model), "full loaders")


# -- gon fit --config ------------------------------------------------------------------------------
fit_keys = st.sampled_from(sorted(FitConfig.__dataclass_fields__) + ["model_options", "unknown"])
yaml_texts = st.dictionaries(fit_keys, trees | scalars, max_size=5).map(yaml.safe_dump) | st.text(max_size=200)
PARSER = build_parser()


@settings(max_examples=500, **FAST)
@given(text=yaml_texts)
@example(text="model_options: 1.0\n")  # found by this test: was a TypeError
def test_any_yaml_through_the_fit_config_loader(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_bytes(text.encode("utf-8", "replace"))
    valid_or_gon_error(lambda: config_from_args(PARSER.parse_args(["fit", "--config", str(path)])), "full loaders")


# -- gon sample | render | reconstruct on a saved model ------------------------------------------------
COMMAND_FLAGS = {
    "sample": ["-n", "--seed", "--temperature"],
    "render": ["-n", "--resolution", "--pairs-per-row"],
    "reconstruct": ["-n", "--seed"],
}
#: hostile values, and small valid ones (a valid count of a million images would be honoured, slowly)
flag_values = st.sampled_from(
    ["nan", "inf", "-inf", "0", "-1", "1e400", "abc", "", "0.5", "1e9", "10000000000", "9223372036854775808"]
) | st.integers(-3, 12).map(str)


@settings(max_examples=200, **FAST)
@given(
    name=st.sampled_from(MODELS),
    command=st.sampled_from(sorted(COMMAND_FLAGS)),
    values=st.lists(st.tuples(st.integers(0, 2), flag_values), max_size=3),
)
@example(name="gon", command="sample", values=[(1, "99999999999999999999")])  # found by hand: was a ValueError
def test_any_inference_flag_values_exit_0_or_2(saved, tmp_path, name, command, values):
    flags = [part for i, value in values for part in (COMMAND_FLAGS[command][i % len(COMMAND_FLAGS[command])], value)]
    argv = [command, str(saved[name]), "--out", str(tmp_path / "out.png"), *flags]

    def run() -> None:
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: a value of the wrong type, exit 2 with its own message
            code = e.code
        assert code in (0, 2), argv

    valid_or_gon_error(run, "full loaders")


pytestmark = pytest.mark.filterwarnings("ignore")
