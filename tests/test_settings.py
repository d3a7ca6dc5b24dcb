"""The settings layer: every option comes from one place (a constructor's signature + OPTION_INFO, a FitConfig
field + FIT_INFO), and gon fit's flags, YAML keys and saved-config checks are built from it."""

import json

import pytest

from gon.cli import main
from gon.config import FIT_INFO, FitConfig, fit_options
from gon.errors import GonError
from gon.loading import load
from gon.registry import MODELS, schema
from gon.settings import Option, check, options_of
from tests.helpers import tiny_model


def test_a_models_options_are_its_constructors():
    options = options_of(MODELS["implicit"])
    assert list(options)[:3] == ["latent_dim", "hidden", "depth"]
    assert options["coord_fraction"].default == 0.25 and options["coord_fraction"].high == 1
    assert options["origin_pass"].choices == ("shared", "naive")
    assert options["latent_dim"].help == "latent size"  # from GradientOriginModel.OPTION_INFO, by inheritance
    assert schema("conversion")["source"].choices == ("mask", "downsample")


@pytest.mark.parametrize(
    "value,message",
    [
        (0, "option coord_fraction (--coord-fraction) must be > 0, got 0"),
        (1.5, "must be <= 1, got 1.5"),
        (float("nan"), "must be a finite number"),
        ("half", "should be float, got 'half'"),
        (True, "should be float"),
    ],
)
def test_one_check_names_the_option_its_flag_and_the_value(value, message):
    with pytest.raises(GonError, match=message.replace("(", r"\(").replace(")", r"\)")):
        schema("implicit")["coord_fraction"].check(value)


def test_yaml_number_strings_become_floats_and_choices_are_checked():
    assert Option("lr", float).check("1e-4") == 1e-4
    with pytest.raises(GonError, match="must be one of layer, batch, none, got 'group'"):
        schema("gon")["norm"].check("group")
    assert check("repeats", 3, low=1) == 3
    with pytest.raises(GonError, match=r"option repeats \(--repeats\) must be >= 1, got 0"):
        check("repeats", 0, low=1)


def test_every_fit_field_and_model_option_is_a_flag_with_its_real_default(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in fit_options().values():
        assert f"{option.flag} " in text, option.name
    for name, cls in MODELS.items():
        for option in options_of(cls).values():
            if option.name not in ("channels", "image_size", "num_images"):
                assert f"{option.flag} " in text, (name, option.name)
    assert set(FIT_INFO) <= set(fit_options())  # no help for a setting that does not exist
    assert "default 0.25 [implicit]" in text  # the constructor's default, not a retyped one
    assert f"default {FitConfig.batch_size}" in text


def test_saved_configs_are_checked_by_the_same_schema(tmp_path):
    tiny_model("implicit").save_pretrained(tmp_path)
    record = json.loads((tmp_path / "config.json").read_text())
    record["config"]["coord_fraction"] = 7
    (tmp_path / "config.json").write_text(json.dumps(record))
    with pytest.raises(GonError, match=r"config.json: cannot build ImplicitGON: option coord_fraction .* <= 1"):
        load(tmp_path)


def test_a_model_flag_reaches_the_model_and_a_foreign_one_is_refused(tmp_path, capsys):
    assert main(["fit", "--model", "gon", "--hidden", "8", "--out", str(tmp_path / "r")]) == 2
    assert "model 'gon' has no option 'hidden'" in capsys.readouterr().err
    assert main(["fit", "--model", "glo", "--fit-steps", "0", "--out", str(tmp_path / "r")]) == 2
    assert "option fit_steps (--fit-steps) must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
