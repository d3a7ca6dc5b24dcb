"""Property-based suite over the validation layer: generated YAML, JSON, settings, CLI values and model
options each give a valid result or a GonError, never another exception, in bounded time.

3,600 cases per run (the counts below; test_hypothesis_loader adds 2,100 through the full loaders: 5,700); each
case validates, none trains.
"""

from __future__ import annotations

import json
import math
import resource
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gon.cli import build_parser
from gon.cli.fit import config_from_args
from gon.core.errors import GonError
from gon.core.validate import check_model_fits, read_json_capped, read_yaml_capped
from gon.models.registry import MODELS
from gon.training.config import FitConfig
from tests.helpers import GENERATED_CASES
from tests.helpers import TINY_MODELS as TINY

FAST = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SECONDS_PER_CASE = 10.0  # bounded time, generous for a busy shared 2-core machine (billion laughs took 46 s)
PEAK_MEMORY_PER_CASE = 1 << 30  # bounded memory: no case may raise the process's peak resident size by 1 GiB

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
trees = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4))


def peak_memory() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def valid_or_gon_error(call, suite: str = "validation"):
    GENERATED_CASES[suite] += 1
    started, peak = time.perf_counter(), peak_memory()
    try:
        call()
    except GonError as e:
        assert "\n" not in str(e).strip() or len(str(e)) < 4000
    assert time.perf_counter() - started < SECONDS_PER_CASE
    assert peak_memory() - peak < PEAK_MEMORY_PER_CASE


@settings(max_examples=800, **FAST)
@given(text=st.text(max_size=300) | trees.map(lambda t: yaml.safe_dump(t, default_flow_style=True)))
def test_any_yaml_text(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if text.isprintable() else path.write_bytes(
        text.encode("utf-8", "replace")
    )
    valid_or_gon_error(lambda: read_yaml_capped(path))


@settings(max_examples=600, **FAST)
@given(text=st.text(max_size=300) | trees.map(lambda t: json.dumps(t)))
def test_any_json_text(tmp_path, text):
    path = tmp_path / "c.json"
    path.write_bytes(text.encode("utf-8", "replace"))
    valid_or_gon_error(lambda: read_json_capped(path))


settings_keys = st.sampled_from(sorted(FitConfig.__dataclass_fields__))


@settings(max_examples=800, **FAST)
@given(values=st.dictionaries(settings_keys, scalars, max_size=6), model=st.sampled_from(sorted(MODELS)))
def test_any_settings_dict(values, model):
    values = {**values, "model": model, "model_options": {}}

    def build():
        config = FitConfig.from_dict(values)
        for key in ("lr", "audio_seconds"):
            assert math.isfinite(getattr(config, key))

    valid_or_gon_error(build)


PARSER = build_parser()
fit_flags = st.sampled_from(
    ["--batch-size", "--lr", "--max-steps", "--seed", "--latent-dim", "--width", "--w0", "--step-size", "--z0-std"]
    + ["--coord-fraction", "--image-size", "--val-every", "--checkpoint-every", "--threads", "--audio-seconds"]
)
cli_values = st.sampled_from(["nan", "inf", "-inf", "0", "-1", "1e400", "1e-400", "3", "0.5", "1e9", "abc", ""]) | (
    st.integers(min_value=-(10**12), max_value=10**12).map(str)
)


@settings(max_examples=600, **FAST)
@given(flags=st.lists(st.tuples(fit_flags, cli_values), max_size=3), model=st.sampled_from(["gon", "implicit"]))
def test_any_fit_flag_values(flags, model):
    argv = ["fit", "--model", model] + [part for flag, value in flags for part in (flag, value)]

    def parse():
        try:
            args = PARSER.parse_args(argv)
        except SystemExit as e:  # argparse: a type error, exit 2 with its own one-line message
            assert e.code == 2
            return
        config = config_from_args(args)
        for value in config.model_options.values():
            assert not (isinstance(value, float) and not math.isfinite(value))

    valid_or_gon_error(parse)


option_values = st.integers(min_value=-(10**10), max_value=10**10) | st.floats() | st.text(max_size=5) | st.none()


@settings(max_examples=800, **FAST)
@given(
    model=st.sampled_from(sorted(MODELS)),
    changes=st.dictionaries(st.sampled_from(["latent_dim", "width", "hidden", "depth", "channels"]), option_values),
)
def test_any_model_options_are_checked_without_allocating(model, changes):
    options = {**TINY[model], **{k: v for k, v in changes.items() if k in TINY[model] or k == "latent_dim"}}
    valid_or_gon_error(lambda: check_model_fits(MODELS[model], options, "config.json"))


pytestmark = pytest.mark.filterwarnings("ignore")
