"""The settings layer: every option comes from one place (a constructor's signature + OPTION_INFO, a FitConfig
field + FIT_INFO), and gon fit's flags, YAML keys and saved-config checks are built from it."""

import json
import os
import subprocess
import sys

import pytest

from gon.cli import build_parser, command_help, main
from gon.core.errors import GonError
from gon.core.settings import Option, check, options_of
from gon.models.loading import load
from gon.models.registry import MODELS, TASK_MODELS, schema
from gon.training.config import FIT_INFO, FitConfig, fit_options
from tests.helpers import tiny_model


def test_a_models_options_are_its_constructors():
    options = options_of(MODELS["implicit"])
    assert list(options)[:3] == ["latent_dim", "hidden", "depth"]
    assert options["coord_fraction"].default == 0.25 and options["coord_fraction"].high == 1
    assert options["origin_pass"].choices == ("shared", "naive")
    assert options["latent_dim"].help == "latent size"  # from GradientOriginModel.OPTION_INFO, by inheritance
    assert schema("conversion")["source"].choices == ("mask", "downsample")


DECODER = dict(latent_dim=32, width=16, channels=1, image_size=32, activation="elu", norm="layer")
ORIGIN = dict(steps=1, step_size=1.0, detach=False, z0_std=0.0, keep_z0=True)
ORIGIN |= dict(learn_origin=False, learn_step_size=False, step_size_low=None)  # issue 22: learnt origin, Meta-SGD
LOSS = dict(loss="sse")  # issue 22: the conv and implicit GONs' BCE
#: every registered model's options and defaults, as they were before the conv models shared one base (ConvModel)
SCHEMAS = {
    "gon": DECODER | LOSS | ORIGIN,
    "vgon": DECODER | ORIGIN,
    "implicit": dict(latent_dim=32, hidden=256, depth=4, channels=1, image_size=28, w0=30.0)
    | dict(origin_pass="shared", coord_fraction=0.25, coord_sampling="same", coord_scale=1.0)
    | dict(latent_mode="concat", block="siren", encoding="none", encoding_size=10, encoding_scale=1.0)
    | LOSS
    | ORIGIN,
    "ae": DECODER,
    "tied-ae": DECODER,
    "glo": dict(num_images=None, code_scale=100.0, fit_steps=100, fit_lr=0.3) | DECODER,
    "vae": DECODER,
    "mlp-ae": dict(latent_dim=32, hidden=64, channels=1, image_size=28),
    "conversion": dict(source="mask") | DECODER | LOSS | ORIGIN,
    "conversion-ae": dict(source="mask") | DECODER,
    "classifier": dict(num_classes=10, recon_weight=1.0) | DECODER | LOSS | ORIGIN,
}


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_model_keeps_its_options_and_defaults(name):
    """Options written once (a base's options inherited through ``**options``) leave each model's schema as it was:
    the same names, defaults, bounds and keyword arguments."""
    cls = {**MODELS, **TASK_MODELS}[name]
    options = options_of(cls)
    assert {k: o.default for k, o in options.items()} == SCHEMAS[name]
    assert options["latent_dim"].low == 1 and list(options)[0] == ("num_images" if name == "glo" else "latent_dim")
    if "steps" in options:
        assert (options["steps"].low, options["steps"].high, options["step_size"].low_open) == (1, 1000, True)
    if "norm" in options:
        assert options["norm"].choices == ("layer", "batch", "none") and options["image_size"].low == 8
    extra = {"num_images": 5} if name == "glo" else {}
    model = cls(**{k: v for k, v in SCHEMAS[name].items() if v is not None} | extra | {"latent_dim": 4})
    assert model.config == {**SCHEMAS[name], **extra, "latent_dim": 4}  # what config.json records
    with pytest.raises(TypeError):  # a keyword the model does not take (an autoencoder has no origin options)
        cls(**extra, **({"no_such_option": 1} if "steps" in options else {"steps": 2}))


def test_a_bad_option_is_a_value_error_and_a_gon_error():
    with pytest.raises(ValueError, match=r"option width \(--width\) must be >= 1, got 0") as caught:
        MODELS["vae"](width=0)
    assert isinstance(caught.value, GonError)
    with pytest.raises(ValueError, match="option steps"):
        MODELS["gon"](steps=0)


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


def test_command_help_is_built_once_then_printed_without_importing_torch(tmp_path, monkeypatch, capsys):
    """gon fit --help takes every model's options from its constructor (torch); the text is kept in gon's cache."""
    monkeypatch.setenv("GON_CACHE", str(tmp_path))
    with pytest.raises(SystemExit):
        build_parser(["fit"]).parse_args(["fit", "--help"])
    assert command_help("fit") == capsys.readouterr().out
    assert [p.read_text() for p in (tmp_path / "help").glob("fit-*.txt")] == [command_help("fit")]
    code = (
        "import sys\nfrom gon.cli import main\ntry:\n    main(['fit', '--help'])\nexcept SystemExit:\n"
        "    print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    env = {**os.environ, "GON_CACHE": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout == command_help("fit") + "[]\n", done.stderr


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
