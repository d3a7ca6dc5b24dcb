"""`gon fit` end to end through the CLI entry point: run directory, resume, configs and bad input."""

import json

import pytest
import torch
import yaml

from gon.cli import build_parser, main
from gon.cli.fit import config_from_args
from tests.helpers import FASHION_MNIST

pytestmark = pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")

TINY_RUN = [
    "--limit-train",
    "128",
    "--batch-size",
    "32",
    "--val-size",
    "64",
    "--image-size",
    "16",
    "--latent-dim",
    "8",
    "--width",
    "4",
    "--checkpoint-every",
    "3",
    "--picture-every",
    "3",
]


def fit(*args):
    return main(["fit", *args])


def test_fit_writes_a_run_and_resume_continues_at_the_same_step(tmp_path):
    run = tmp_path / "run"
    assert fit("--max-steps", "6", "--out", str(run), *TINY_RUN) == 0
    for name in [
        "config.yaml",
        "metrics.csv",
        "metrics.json",
        "recon.png",
        "checkpoints/last.ckpt",
        "pictures/recon_step0000003.png",
        "pictures/recon_step0000006.png",
    ]:
        assert (run / name).is_file(), name
    assert json.loads((run / "metrics.json").read_text())["steps"] == 6
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model_options"] == {"channels": 1, "image_size": 16, "latent_dim": 8, "width": 4}

    adam = ["--weight-decay", "0.01", "--adam-eps", "1e-6"]  # applied from the resumed step on, as --lr is
    assert fit("--max-steps", "10", "--out", str(run), "--resume", *adam, *TINY_RUN) == 0
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 10
    (group,) = ckpt["optimizer_states"][0]["param_groups"]
    assert (group["weight_decay"], group["eps"]) == (0.01, 1e-6)
    assert (ckpt["hyper_parameters"]["weight_decay"], ckpt["hyper_parameters"]["adam_eps"]) == (0.01, 1e-6)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["weight_decay"], config["adam_eps"]) == (0.01, 1e-6)
    assert json.loads((run / "metrics.json").read_text())["steps"] == 10
    steps = [int(line.split(",")[0]) for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(steps) and max(steps) >= 9 and min(steps) < 6  # both sessions, in order


def test_log_every_thins_the_train_loss_rows(tmp_path):
    run = tmp_path / "run"
    assert fit("--max-steps", "10", "--out", str(run), "--log-every", "5", "--devices", "auto", *TINY_RUN) == 0
    header, *rows = (run / "metrics.csv").read_text().splitlines()
    loss = header.split(",").index("train/loss")
    steps = [int(r.split(",")[0]) for r in rows if r.split(",")[loss]]
    assert steps == [5, 10]  # the losses of steps 5 and 10
    assert yaml.safe_load((run / "config.yaml").read_text())["log_every"] == 5


def test_an_existing_run_is_never_overwritten_by_accident(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "precious.txt").write_text("keep me")
    assert fit("--max-steps", "2", "--out", str(run), *TINY_RUN) == 2
    assert "already exists" in capsys.readouterr().err
    assert (run / "precious.txt").read_text() == "keep me"
    assert fit("--max-steps", "2", "--out", str(run), "--overwrite", *TINY_RUN) == 2  # not a gon run: never removed
    assert "refusing to remove it" in capsys.readouterr().err
    assert (run / "precious.txt").read_text() == "keep me"


def test_resume_without_a_checkpoint_is_an_error(tmp_path, capsys):
    assert fit("--resume", "--out", str(tmp_path / "none"), *TINY_RUN) == 2
    assert "no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,culprit",
    [
        (["--model", "transformer"], "unknown model 'transformer'"),
        (["--dataset", "imagenet"], "imagenet"),
        (["--dataset", "folder:/definitely/not/here"], "/definitely/not/here"),
        (["--batch-size", "0"], "batch-size"),
        (["--lr", "-0.1"], "lr"),
        (["--max-steps", "-3"], "max-steps"),
        (["--image-size", "28"], "power of two"),
        (["--hidden", "64"], "hidden"),
        (["--batch-size", "abc"], "batch-size"),  # argparse's type check printed its 24-line usage
        (["--lr", "x"], "lr"),
        (["--devices", "0"], "devices"),
        (["--accelerator", "cpu", "--devices", "0,1"], "--devices 0,1"),  # Lightning's refusal, in one line
    ],
)
def test_bad_input_is_one_line_naming_the_culprit(tmp_path, capsys, args, culprit):
    code = fit("--out", str(tmp_path / "r"), "--max-steps", "1", "--limit-train", "64", *args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert culprit in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "argv,culprit",
    [
        (["fit", "--nope", "1"], "unrecognized arguments: --nope 1"),
        (["sample", "run", "-n", "abc"], "argument -n: invalid int value: 'abc'"),
        (["evaluate"], "required: MODEL"),
        (["bogus"], "invalid choice: 'bogus'"),
    ],
)
def test_argparse_errors_are_one_line_too(argv, culprit, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and culprit in err and len(err.splitlines()) == 1, err


def test_yaml_config_with_flags_overriding_it(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "max_steps": 50,
                "batch_size": 16,
                "limit_train": 64,
                "val_size": 32,
                "image_size": 16,
                "model_options": {"latent_dim": 4, "width": 2},
            }
        )
    )
    run = tmp_path / "run"
    assert fit("--config", str(cfg), "--max-steps", "2", "--out", str(run)) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["max_steps"] == 2 and saved["batch_size"] == 16 and saved["model_options"]["latent_dim"] == 4

    cfg.write_text(yaml.safe_dump({"batch_sise": 16}))
    assert fit("--config", str(cfg), "--out", str(tmp_path / "r2")) == 2
    assert "batch_sise" in capsys.readouterr().err


def test_fit_implicit_gon(tmp_path):
    run = tmp_path / "imp"
    args = [
        "--model",
        "implicit",
        "--max-steps",
        "3",
        "--out",
        str(run),
        "--limit-train",
        "64",
        "--batch-size",
        "16",
        "--val-size",
        "32",
        "--hidden",
        "16",
        "--depth",
        "2",
        "--latent-dim",
        "8",
    ]
    assert fit(*args) == 0
    assert json.loads((run / "metrics.json").read_text())["test_mse"] < 1


def test_repeating_a_run_from_its_config_yaml_starts_a_fresh_run(tmp_path, capsys):
    """config.yaml holds settings, not session switches (out, resume, overwrite): repeating a run neither replaces
    nor resumes it, and an older config.yaml that switches them on is refused."""
    old, new = tmp_path / "old", tmp_path / "new"
    assert fit("--max-steps", "2", "--out", str(old), "--overwrite", *TINY_RUN) == 0
    saved = yaml.safe_load((old / "config.yaml").read_text())
    assert not {"out", "resume", "overwrite"} & set(saved)
    repeat = config_from_args(
        build_parser().parse_args(["fit", "--config", str(old / "config.yaml"), "--out", str(new)])
    )
    assert (repeat.out, repeat.resume, repeat.overwrite) == (str(new), False, False)
    assert repeat.to_dict() == saved  # every setting repeated

    older = tmp_path / "older.yaml"  # what an older gon wrote for a session started with --overwrite
    older.write_text(yaml.safe_dump({**saved, "out": str(old), "overwrite": True, "resume": False}))
    capsys.readouterr()
    assert fit("--config", str(older), "--seed", "1") == 2
    err = capsys.readouterr().err.strip()
    assert "overwrite" in err and str(older) in err and len(err.splitlines()) == 1
    assert json.loads((old / "metrics.json").read_text())["steps"] == 2


def test_resuming_a_run_of_an_older_gon_keeps_the_split_of_its_seed(tmp_path):
    """Older gons split a folder by --seed and did not record split_seed: a --resume keeps that split."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": "gon", "seed": 3}))
    args = build_parser().parse_args(["fit", "--resume", "--out", str(tmp_path)])
    assert config_from_args(args).split_seed == 3
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": "gon", "seed": 3, "split_seed": 0}))
    assert config_from_args(args).split_seed == 0
