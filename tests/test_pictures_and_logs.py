"""What a user sees: labelled picture grids, `gon --version` and help texts, training options, and a run's
records and logs (TensorBoard, quiet progress in log files, time and steps that add up across resumes)."""

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from gon.cli import EXAMPLES, build_parser, main
from gon.core.errors import GonError
from gon.report.images import labelled, make_grid
from gon.report.pictures import interpolation_grid, reconstruction_grid
from gon.training.config import FitConfig
from tests.helpers import TINY, run_gon_fit, tiny_model


def dark(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Number of dark pixels (text) in ``box`` (left, top, right, bottom)."""
    return int((np.asarray(image.convert("L").crop(box)) < 128).sum())


def test_labelled_grid_has_a_title_strip_row_labels_and_the_images_unchanged():
    images = torch.rand(4, 3, 8, 8)
    grid = make_grid(images, nrow=2)  # 2 x 2 cells of 10 pixels with padding
    out = labelled(grid, "what the rows are", (10, 10), rows=["original", "reconstructed"], columns=["a", "b"])
    scale = 4  # a 22-pixel grid is enlarged 4x, its text drawn at that size
    top, left = out.height - grid.height * scale, out.width - grid.width * scale
    assert top > 30 and left > 50  # title + column line, and the row labels' margin
    assert dark(out, (0, 0, out.width, 20)) > 20  # the title
    assert dark(out, (0, top, left, out.height)) > 20  # the row labels
    body = np.asarray(out.crop((left, top, out.width, out.height)))
    assert np.array_equal(body, np.asarray(grid.convert("RGB").resize(out.crop((left, top, *out.size)).size, 0)))


def test_model_grids_are_labelled():
    model = tiny_model("gon")
    x = torch.rand(4, 1, 16, 16)
    recon = reconstruction_grid(model, x, nrow=4, source="4 test images")
    assert dark(recon, (0, 0, recon.width, 20)) > 20 and recon.height > 2 * 18 * 4
    slerp = interpolation_grid(model, x[:2], x[2:], steps=3)
    assert dark(slerp, (0, 20, slerp.width, 40)) > 20  # the column labels: image a, t=0 ... image b


def test_version_and_plain_help_with_an_example_per_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert re.match(r"gon \S+ \(torch \S+, Lightning \S+, Python \S+\)", capsys.readouterr().out)
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps subparsers here
    for name, sub in commands.items():
        text = sub.format_help()
        assert "`" not in text and ":class:" not in text, name
        assert "example:\n  gon " + name in text, name
    for name, example in EXAMPLES.items():
        assert f"example:\n  {example}" in commands[name].format_help()
        parser.parse_args(shlex.split(example)[1:])  # each example is a valid command line


@pytest.mark.parametrize(
    "values, culprit",
    [
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"adam_eps": 0.0}, "adam_eps"),
        ({"adam_eps": float("nan")}, "adam_eps"),
        ({"logger": ["csv", "wandb"]}, "logger"),
    ],
)
def test_training_options_are_validated(values, culprit):
    with pytest.raises(GonError, match=culprit):
        FitConfig.from_dict(values)


def test_logger_list_always_keeps_csv_first():
    assert FitConfig.from_dict({"logger": ["tensorboard"]}).logger == ["csv", "tensorboard"]
    assert FitConfig.from_dict({"logger": "tensorboard,csv"}).logger == ["csv", "tensorboard"]


def test_weight_decay_and_adam_eps_reach_the_optimiser():
    from gon.training.module import GonModule

    module = GonModule("gon", {"latent_dim": 8, "width": 4, "image_size": 16}, 1e-3, weight_decay=0.01, adam_eps=1e-6)
    group = module.configure_optimizers().param_groups[0]
    assert (group["lr"], group["weight_decay"], group["eps"]) == (1e-3, 0.01, 1e-6)


def class_folder(root: Path) -> str:
    """Three classes of 16x16 RGB squares on a background: a folder laid out like ImageFolder's."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(["circle", "square", "stripe"]):
        (root / name).mkdir(parents=True)
        for i in range(16):
            image = np.full((16, 16, 3), rng.integers(0, 255, 3), np.uint8)
            image[4:12, 4 + c : 8 + c] = rng.integers(0, 255, 3)
            Image.fromarray(image).save(root / name / f"{i}.png")
    return f"folder:{root}"


def test_fit_records_logs_and_resume_add_up(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, data = tmp_path / "run", class_folder(tmp_path / "shapes")
    args = [*TINY, "--dataset", data, "--out", str(run), "--val-every", "2", "--logger", "csv,tensorboard"]
    code, out = run_gon_fit(*args, "--max-steps", "3", "--weight-decay", "0.001")
    assert code == 0, out
    assert "gon fit: step 1/3" in out and "gon fit: step 3/3" in out  # lines, not a redrawn bar
    assert "\r" not in out and "Tip:" not in out and "v_num" not in out
    first = json.loads((run / "metrics.json").read_text())
    assert first["test_measured_on"] == "all 6 test images"  # 2 of each class held out
    assert first["interval_evaluations_measured_on"] == "all 6 test images"

    code, out = run_gon_fit(*args, "--max-steps", "5", "--resume")
    assert code == 0, out
    final = json.loads((run / "metrics.json").read_text())
    assert final["steps"] == 5 and final["train_seconds"] > first["train_seconds"]  # both sessions counted
    header, *rows = (run / "metrics.csv").read_text().splitlines()
    mse = header.split(",").index("test/mse")
    assert [int(r.split(",")[0]) for r in rows if r.split(",")[mse]] == [2, 4]  # evaluated after steps 2 and 4
    assert [s["command"].split()[:2] for s in json.loads((run / "provenance.json").read_text())["sessions"]] == [
        ["gon", "fit"]
    ] * 2
    options = json.loads((run / "model_options.json").read_text())
    assert options["activation"] == "elu" and options["norm"] == "layer"  # defaults written out too
    assert yaml.safe_load((run / "config.yaml").read_text())["weight_decay"] == 0.001

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert {"train/loss", "test/mse"} <= set(events.Tags()["scalars"])
    assert {"recon", "samples", "interpolation"} <= set(events.Tags()["images"])

    report = (run / "report.html").read_text()
    assert "torch" in report and "lightning" in report.lower() and "gon fit" in report and "activation" in report
