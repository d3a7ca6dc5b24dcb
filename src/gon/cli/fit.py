"""``gon fit``: train a model; flags override the YAML ``--config``, which overrides the defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

from gon.config import FitConfig, read_yaml
from gon.registry import MODELS

# CLI flag -> model constructor keyword; a flag the chosen model does not take is an error
MODEL_FLAGS = {
    "latent_dim": int,
    "width": int,
    "norm": str,
    "activation": str,
    "hidden": int,
    "depth": int,
    "w0": float,
    "steps": int,
    "step_size": float,
    "z0_std": float,
    "origin_pass": str,
    "coord_fraction": float,
    "coord_sampling": str,
}


def add_parser(commands) -> None:
    p = commands.add_parser(
        "fit",
        help="train a GON",
        description=__doc__,
        argument_default=argparse.SUPPRESS,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", help=f"{' | '.join(MODELS)} (default gon)")
    p.add_argument(
        "--dataset",
        help="fashion-mnist | mnist | smallnorb | coil20 | cifar10 | celeba | lsun-bedroom | "
        "folder:PATH | lmdb:PATH | audio:PATH (WAV files) | volume:PATH (.npy grids) (default fashion-mnist)",
    )
    p.add_argument("--data-dir", help="where to look for dataset files first")
    p.add_argument(
        "--image-size", type=int, help="training size (default: the data's; 32 for conv models on 28x28 data)"
    )
    p.add_argument("--resize", choices=["resize", "pad"], help="how 28x28 data grows to 32x32 (default resize)")
    p.add_argument("--batch-size", type=int, help="images per step (default 64)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-4)")
    p.add_argument("--max-steps", type=int, help="stop after N optimiser steps")
    p.add_argument("--max-epochs", type=int, help="stop after E epochs (default 1 when no --max-steps)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--out", help="run directory (default runs/MODEL-DATASET)")
    p.add_argument("--config", help="YAML file of settings; flags given here override it")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--accelerator", help="cpu | gpu | auto (default auto)")
    p.add_argument("--devices", help="number of devices or 'auto' (default auto)")
    p.add_argument("--strategy", help="Lightning strategy, e.g. ddp (default auto)")
    p.add_argument("--num-nodes", type=int, help="machines in a multi-node DDP run (default 1)")
    p.add_argument("--num-workers", type=int, help="data loader worker processes (default 0)")
    p.add_argument("--val-every", type=int, help="steps between test evaluations (default: each epoch)")
    p.add_argument("--val-size", type=int, help="test images used at intervals (default 10000)")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 500)")
    p.add_argument("--picture-every", type=int, help="steps between reconstruction grids (default 500)")
    p.add_argument(
        "--log-every",
        type=int,
        help="steps between logged train losses and progress-bar refreshes (default: 1 on a CPU, 50 on a GPU, "
        "where reading the loss every step costs ~10%% of a step; with CUDA graphs the logged loss is the mean "
        "since the last row)",
    )
    p.add_argument("--limit-train", type=int, help="train on the first N images only")
    p.add_argument(
        "--cuda-graphs",
        action=argparse.BooleanOptionalAction,
        help="on one CUDA device, replay each training step as a CUDA graph (default on; off under DDP and on "
        "CPUs; falls back to eager with a one-line notice where capture fails)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: the fastest count, timed on the first steps and again when step times "
        "jump; pin it for bit-identical reruns)",
    )
    p.add_argument("--sample-rate", type=int, help="audio:PATH: resample clips to this rate in Hz (default 8000)")
    p.add_argument(
        "--audio-seconds", type=float, help="audio:PATH: crop or pad (silence) clips to this length (default 1)"
    )
    g = p.add_argument_group("model options (each applies to the models that have it)")
    g.add_argument("--latent-dim", type=int, help="latent size (default 32)")
    g.add_argument("--width", type=int, help="conv decoder width ngf (default 16)")
    g.add_argument(
        "--norm", choices=["layer", "batch", "none"], help="conv normalisation (default layer; batch = the paper's)"
    )
    g.add_argument(
        "--activation", choices=["elu", "relu", "silu", "tanh", "sine"], help="conv activation (default elu)"
    )
    g.add_argument("--hidden", type=int, help="SIREN units per layer (default 256)")
    g.add_argument("--depth", type=int, help="SIREN sine layers (default 4)")
    g.add_argument("--w0", type=float, help="SIREN frequency (default 30)")
    g.add_argument("--steps", type=int, help="gradient steps from the origin (default 1)")
    g.add_argument("--step-size", type=float, help="size of each latent step (default 1)")
    g.add_argument("--detach", action="store_true", help="cut second-order terms (ablation)")
    g.add_argument("--z0-std", type=float, help="start from z0 ~ N(0, std^2) instead of the origin")
    g.add_argument("--negative-gradient", action="store_true", help="z = -grad instead of z0 - grad (Fig. 11a)")
    g.add_argument(
        "--origin-pass",
        choices=["shared", "naive"],
        help="implicit GON: exact shared-origin pass (default) or the naive double backward (reference)",
    )
    g.add_argument(
        "--coord-fraction",
        type=float,
        help="implicit GON: train on a random fraction p of the pixels each step "
        "(Monte Carlo, default 0.25; 1 = every pixel)",
    )
    g.add_argument(
        "--coord-sampling",
        choices=["same", "independent"],
        help="implicit GON: one pixel subset for inner and outer integrals, or two (default same)",
    )
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> FitConfig:
    given = {k: v for k, v in vars(args).items() if k not in ("run", "command", "config")}
    values = saved_run_config(given) if given.get("resume") else {}  # `gon fit --resume --out RUN` is enough
    if getattr(args, "config", None):
        from_file = read_yaml(args.config)
        from_file["model_options"] = {**(values.get("model_options") or {}), **(from_file.get("model_options") or {})}
        values.update(from_file)
    if "max_steps" in given or "max_epochs" in given:  # a budget given now replaces the saved one
        for key in ("max_steps", "max_epochs"):
            values.pop(key, None)
    options = dict(values.get("model_options") or {})
    for key in list(given):
        if key in MODEL_FLAGS or key == "detach":
            options[key] = given.pop(key)
    if given.pop("negative_gradient", False):
        options["keep_z0"] = False
    values.update(given)
    values["model_options"] = options
    return FitConfig.from_dict(values, source=getattr(args, "config", None) or "command line")


def saved_run_config(given: dict) -> dict:
    """The settings a run was started with (RUN/config.yaml), the base for ``--resume``; {} if absent."""
    from gon.runs import default_run_dir

    run = (
        Path(given["out"])
        if given.get("out")
        else default_run_dir(given.get("model", FitConfig.model), given.get("dataset", FitConfig.dataset))
    )
    if not (run / "config.yaml").is_file():
        return {}
    values = read_yaml(run / "config.yaml")
    return {k: v for k, v in values.items() if k not in ("resume", "overwrite")}


def run(args: argparse.Namespace) -> int:
    from gon.training import fit  # imports Lightning: only when training

    fit(config_from_args(args))
    return 0
