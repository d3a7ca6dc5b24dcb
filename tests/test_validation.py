"""The validation layer (gon.core.validate) at every boundary: capped YAML / JSON, finite numbers, memory estimates."""

from __future__ import annotations

import json
import time

import pytest
import torch

import gon
from gon.core.errors import GonError
from gon.core.validate import (
    MAX_ALIASES,
    check_memory,
    check_model_fits,
    finite,
    in_range,
    read_json_capped,
    read_yaml_capped,
    shown,
)
from tests.helpers import TINY_MODELS as TINY
from tests.helpers import tiny_model

BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
)


def test_billion_laughs_fails_in_milliseconds(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS)
    assert len(path.read_bytes()) < 500
    started = time.perf_counter()
    with pytest.raises(GonError, match=f"more than {MAX_ALIASES} aliases"):
        read_yaml_capped(path)
    assert time.perf_counter() - started < 1.0  # generous: measured in milliseconds


def test_deep_yaml_and_json_are_refused_without_recursion_errors(tmp_path):
    (tmp_path / "deep.yaml").write_text("[" * 5000 + "]" * 5000)
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(GonError, match="nested"):
        read_yaml_capped(tmp_path / "deep.yaml")
    with pytest.raises(GonError, match="nested"):
        read_json_capped(tmp_path / "deep.json")


def test_dev_zero_is_refused_by_the_size_cap():
    with pytest.raises(GonError, match="larger than"):
        read_yaml_capped("/dev/zero")


def test_non_finite_numbers_are_refused_in_yaml_and_json(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: .nan\n")
    (tmp_path / "c.json").write_text('{"config": {"step_size": NaN}}')
    with pytest.raises(GonError, match=r"option lr \(--lr\) must be a finite number"):
        read_yaml_capped(tmp_path / "c.yaml")
    with pytest.raises(GonError, match="NaN is not a finite number"):
        read_json_capped(tmp_path / "c.json")


def test_numbers_and_ranges():
    assert finite("1e-4", "--lr") == 1e-4
    for bad in (float("nan"), float("inf"), "abc", None):
        with pytest.raises(GonError, match="--temperature"):
            finite(bad, "--temperature")
    assert in_range(3, "-n", 1, 10) == 3
    with pytest.raises(GonError, match="-n must be between 1 and 10, got 11"):
        in_range(11, "-n", 1, 10)


def test_long_values_are_cut_short_in_messages():
    assert len(shown("x" * 100_000)) < 120


def test_a_model_too_large_for_memory_is_refused_before_allocation():
    with pytest.raises(GonError, match=r"needs about .* GiB of memory"):
        check_model_fits(gon.models.registry.MODELS["gon"], {**TINY["gon"], "latent_dim": 100_000_000}, "--latent-dim")
    with pytest.raises(GonError, match=r"config.json: option width \(--width\) must be >= 1, got -3"):
        check_model_fits(gon.models.registry.MODELS["gon"], {**TINY["gon"], "width": -3}, "config.json")
    with pytest.raises(GonError, match=r"option depth \(--depth\) must be <= 256"):  # before building 10**10 layers
        check_model_fits(gon.models.registry.MODELS["implicit"], {**TINY["implicit"], "depth": 10**10}, "config.json")
    with pytest.raises(GonError, match="more than"):
        check_memory(1 << 62, "-n 1000000000")


def test_a_model_to_train_needs_room_for_gradients_and_adam_too(monkeypatch):
    import gon.core.validate

    model = tiny_model("gon")
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    monkeypatch.setattr(gon.core.validate, "available_memory", lambda: 2 * weights)  # room for the weights, not 4x
    check_model_fits(gon.models.registry.MODELS["gon"], TINY["gon"], "config.json")
    with pytest.raises(GonError, match="needs about"):
        check_model_fits(gon.models.registry.MODELS["gon"], TINY["gon"], "--width", training=True)
    with pytest.raises(GonError, match="needs about"):
        gon.models.registry.build("gon", **TINY["gon"])


def saved(tmp_path, edit):
    model = tiny_model("gon")
    model.save_pretrained(tmp_path / "m")
    record = json.loads((tmp_path / "m" / "config.json").read_text())
    edit(record)
    (tmp_path / "m" / "config.json").write_text(json.dumps(record))
    return tmp_path / "m"


@pytest.mark.parametrize(
    "edit,culprit",
    [
        (lambda r: r["config"].update(width=10**9), "cannot build GON"),
        (lambda r: r["config"].update(width=-3), r"option width \(--width\) must be >= 1, got -3"),
        (lambda r: r.update(format_version="1"), "format_version must be a whole number"),
        (lambda r: r.update(training_data="abc"), "training_data must be a mapping"),
        (lambda r: r["config"].update(step_size=float("nan")), "NaN is not a finite number"),
    ],
)
def test_a_hostile_saved_model_config_is_one_gon_error(tmp_path, edit, culprit):
    with pytest.raises(GonError, match=culprit):
        gon.load(saved(tmp_path, edit))


def test_a_config_asking_for_more_weights_than_its_file_holds_is_refused_before_building(tmp_path):
    """An edited latent_dim asks for a 1.5 GB model; the tiny weights file cannot hold it, so nothing is allocated."""
    import subprocess
    import sys

    from gon.core.validate import model_bytes
    from gon.models.registry import MODELS

    options, latent_dim = dict(TINY["gon"]), 1024
    while model_bytes(MODELS["gon"], {**options, "latent_dim": latent_dim}, "test") < 1.5e9:
        latent_dim *= 2
    directory = saved(tmp_path, lambda r: r["config"].update(latent_dim=latent_dim))
    script = (
        "import sys, gon\n"
        "try:\n    gon.load(sys.argv[1])\nexcept gon.GonError as e:\n    print(e)\n"
        "print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')))"
    )  # VmHWM, the peak of this program's own memory (getrusage's ru_maxrss keeps the forking parent's peak)
    out = subprocess.run([sys.executable, "-c", script, str(directory)], capture_output=True, text=True, check=True)
    message, peak_kib = out.stdout.strip().splitlines()
    assert "do not belong together" in message or "needs about" in message, message  # "needs about": no room at all
    assert int(peak_kib) < 1_000_000, f"{int(peak_kib) // 1024} MiB peak: the model was built"


def test_nan_weights_are_refused_where_the_model_is_loaded(tmp_path):
    model = tiny_model("gon")
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    model.save_pretrained(tmp_path / "m")
    with pytest.raises(GonError, match="NaN or infinite"):
        gon.load(tmp_path / "m")


def test_messages_are_one_line_and_printable_with_non_utf8_file_names():
    from gon.cli import shorten

    line = shorten("cannot read /data/caf\udce9.yaml:\nsecond line " + "y" * 10_000)
    line.encode("utf-8")  # a surrogate from a non-UTF-8 name would make print() raise
    assert "\n" not in line and len(line) < 2100 and "caf\\xe9" in line  # the file name's own byte


def test_too_few_images_for_the_latent_statistics_still_leave_a_sampler(capsys):
    from gon.sampling import LatentGaussian

    one = LatentGaussian.fit(torch.ones(1, 4))
    assert torch.equal(one.covariance, torch.eye(4))
    assert "one training latent" in capsys.readouterr().err
    two = LatentGaussian.fit(torch.randn(2, 8))  # rank 1: jittered until it factorises
    assert torch.isfinite(two.sample(3)).all()


def test_latents_of_a_diverged_model_are_one_gon_error():
    from gon.sampling import LatentGaussian

    with pytest.raises(GonError, match="training diverged; a lower --lr may help"):
        LatentGaussian.fit(torch.full((8, 4), float("inf")))


def test_a_huge_image_size_is_refused_before_any_image_is_resized():
    """Found by the hostile pass: --image-size 99999999999999999999 overflowed inside Pillow's resize."""
    from gon.training.config import FitConfig

    with pytest.raises(GonError, match=r"image_size \(--image-size\) must be <= 8192"):
        FitConfig.from_dict({"image_size": 10**20})


@pytest.mark.parametrize("name", ["foo", "cuda:x", "cuda", "cuda:7", "mps"])
@pytest.mark.parametrize(
    "command",
    [
        ["reproduce", "table1", "--steps", "1", "--limit-train", "64", "--test-size", "8"],
        ["bench", "--quick", "--sections", "throughput"],
        ["sample", "no-such-run"],
    ],
    ids=["reproduce", "bench", "sample"],
)
def test_every_device_flag_is_checked_before_any_work(tmp_path, monkeypatch, capsys, command, name):
    from gon.cli import main

    if name == "cuda" and torch.cuda.is_available() or name == "mps" and torch.backends.mps.is_available():
        pytest.skip(f"--device {name} is a real device here")
    monkeypatch.chdir(tmp_path)  # gon reproduce would create results/table1 here had it started
    assert main([*command, "--device", name]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--device {name}" in err.replace("'", ""), err
    assert not list(tmp_path.iterdir())
