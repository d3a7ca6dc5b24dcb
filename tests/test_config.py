"""YAML configs: unknown keys, wrong types and out-of-range values are refused with the key named."""

import math

import pytest
import yaml

from gon.cli import main
from gon.core.errors import GonError
from gon.training.config import FitConfig


def load(tmp_path, values: dict) -> FitConfig:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(values))
    return FitConfig.from_yaml(path)


def refused(tmp_path, values: dict) -> str:
    with pytest.raises(GonError) as e:
        load(tmp_path, values)
    message = str(e.value)
    assert str(tmp_path / "c.yaml") in message and "\n" not in message
    return message


@pytest.mark.parametrize(
    "values,key",
    [
        ({"batch_sise": 16}, "batch_sise"),
        ({"model_options": {"latent_dims": 8}}, "latent_dims"),
        ({"model_options": {"hidden": 8}}, "hidden"),  # an implicit-GON option given to the conv GON
        ({"model": "implicit", "model_options": {"width": 8}}, "width"),
    ],
)
def test_unknown_keys_are_named(tmp_path, values, key):
    assert repr(key) in refused(tmp_path, values)


@pytest.mark.parametrize(
    "values,key",
    [
        ({"batch_size": "64"}, "batch_size"),
        ({"batch_size": 64.5}, "batch_size"),
        ({"max_steps": True}, "max_steps"),
        ({"lr": "fast"}, "lr"),
        ({"resume": "yes"}, "resume"),
        ({"dataset": ["mnist"]}, "dataset"),
        ({"model_options": [8]}, "model_options"),
        ({"model_options": {"latent_dim": "8"}}, "latent_dim"),
        ({"model_options": {"detach": 1}}, "detach"),
        ({"model": "implicit", "model_options": {"image_size": ["a", 2]}}, "image_size"),
    ],
)
def test_wrong_types_are_named(tmp_path, values, key):
    message = refused(tmp_path, values)
    assert key in message and "should be" in message


@pytest.mark.parametrize(
    "values,key",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1e-3}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"lr": math.inf}, "lr"),
        ({"max_steps": -5}, "max_steps"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"val_every": 0}, "val_every"),
        ({"val_size": 0}, "val_size"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"log_every": 0}, "log_every"),
        ({"limit_train": -1}, "limit_train"),
        ({"num_workers": -2}, "num_workers"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**40}, "seed"),
        ({"resize": "stretch"}, "resize"),
        ({"accelerator": "quantum"}, "accelerator"),
        ({"devices": 0}, "devices"),
        ({"devices": "many"}, "devices"),
    ],
)
def test_out_of_range_values_are_named(tmp_path, values, key):
    assert f"option {key} (--{key.replace('_', '-')})" in refused(tmp_path, values)


def test_unknown_model_is_named(tmp_path):
    assert "unknown model 'resnet'" in refused(tmp_path, {"model": "resnet"})


def test_valid_values_load_including_yaml_number_strings(tmp_path):
    config = load(
        tmp_path,
        {
            "lr": "1e-4",
            "devices": 2,
            "batch_size": 32,
            "model": "implicit",
            "max_steps": 3,
            "model_options": {"w0": 30, "image_size": [16, 16], "step_size": "2e-1"},
        },
    )
    assert config.lr == 1e-4 and isinstance(config.lr, float)  # PyYAML reads 1e-4 (no dot) as a string
    assert config.model_options == {"w0": 30, "image_size": [16, 16], "step_size": 0.2}
    assert load(tmp_path, {"devices": "0,1"}).devices == "0,1"
    assert load(tmp_path, {}) == FitConfig()


@pytest.mark.parametrize(
    "text,culprit",
    [
        ("batch_size: [1, 2", "not readable YAML"),
        ("- just\n- a list\n", "mapping"),
        ("lr: !!python/object/apply:os.system ['true']\n", "not readable YAML"),  # safe_load refuses code tags
    ],
)
def test_malformed_files_are_one_line_errors(tmp_path, text, culprit):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(GonError, match=culprit):
        FitConfig.from_yaml(path)


def test_cli_rejects_a_bad_config_before_training(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"batch_size": 16, "checkpoint_every": -1}))
    assert main(["fit", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "checkpoint_every" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()  # nothing was created
