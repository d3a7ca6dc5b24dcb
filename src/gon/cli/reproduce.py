"""``gon reproduce EXPERIMENT``: train the rows of one of the paper's experiments over seeds and write
OUT/EXPERIMENT.csv (per seed), OUT/EXPERIMENT.md (mean ± std) and its figures.

Each experiment runs at the paper's configuration and budget by default (--preset paper; the source of each
setting is cited) or at the earlier CPU-sized one (--preset cpu); ``gon reproduce --list`` shows both, and
every flag overrides them. --jobs N trains N (row, seed) runs at once, each in its own process.
"""

from __future__ import annotations

import argparse
import shlex

from gon.cli import COMMANDS


def add_parser(commands) -> None:
    from gon.experiments import EXPERIMENTS

    p = commands.add_parser(
        "reproduce",
        help=COMMANDS["reproduce"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "experiment",
        nargs="?",
        choices=list(EXPERIMENTS),
        metavar="EXPERIMENT",
        help="one of: " + ", ".join(EXPERIMENTS),
    )
    p.add_argument("--list", action="store_true", help="list the experiments, their configurations and budgets")
    p.add_argument(
        "--preset",
        choices=["paper", "cpu"],
        default="paper",
        help="paper: the paper's configuration and budget (default); cpu: gon's default models on a subset, minutes",
    )
    p.add_argument(
        "--dataset",
        help="fashion-mnist | mnist | smallnorb | coil20 | cifar10 | celeba | lsun-bedroom | "
        "folder:PATH | lmdb:PATH (default: the experiment's, fashion-mnist unless the paper used another)",
    )
    p.add_argument("--data-dir", help="where to look for dataset files first")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="optimiser steps per run (per row and seed)")
    length.add_argument("--epochs", type=int, help="passes over the training images per run")
    p.add_argument("--seeds", type=int, help="number of seeds (0, 1, ...) per row")
    p.add_argument(
        "--limit-train",
        type=int,
        help="train on N training images: a seeded (seed 0) choice, stratified by class, the same for all seeds",
    )
    p.add_argument(
        "--test-size", type=int, help="evaluate on N test images: a seeded (seed 0) choice, stratified by class"
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: the preset's, 1e-4 paper / 1e-3 cpu)")
    p.add_argument("--image-size", type=int, help="train and test at SxS pixels (default 32)")
    p.add_argument("--latent-dim", type=int, help="latent size of every row (default: the preset's)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train N (row, seed) runs at once, one process each (1 thread each unless --threads); "
        "on a CPU use at most its cores (default 1)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument(
        "--threads", type=int, help="torch CPU threads (default: the fastest count, timed on each row's first steps)"
    )
    p.add_argument(
        "--cuda-graphs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="on a CUDA --device, replay each training step as a CUDA graph (default on; eager where capture fails)",
    )
    p.add_argument(
        "--ensemble",
        choices=["on", "off"],
        help="train the seeds of each row together as one stacked step (torch.func; equal to separate runs up to "
        "float rounding; each unit keeps its own folder). Default: on for a CUDA --device, off on a CPU (where "
        "stacking is slower than separate steps: docs/performance.md)",
    )
    p.add_argument("--out", help="output folder (default results/EXPERIMENT); one that holds files needs --overwrite")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of an earlier gon reproduce in --out (kept until this run has finished)",
    )
    sweep = p.add_argument_group(
        "resumable sweeps",
        "every (row, seed) is a unit in OUT/units/ with its own checkpoints, so a sweep survives stops and spans "
        "machines: --resume continues it (and extends it with a larger --steps / --epochs), --shard K/N runs one "
        "slice of it (a job array into one shared --out), --merge writes its tables",
    )
    sweep.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in --out: unfinished units from their last checkpoint, finished ones kept",
    )
    sweep.add_argument(
        "--shard",
        metavar="K/N",
        help="train only the K-th of N disjoint slices of the (row, seed) units, e.g. $SLURM_ARRAY_TASK_ID/8; "
        "the last to finish writes the tables",
    )
    sweep.add_argument(
        "--merge", action="store_true", help="train nothing: write the tables from the finished units in --out"
    )
    sweep.add_argument("--rows", help="only these rows, by label, comma-separated (e.g. GON,AE)")
    sweep.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        metavar="N",
        help="steps between a unit's checkpoints (default 500; also at every stop and at the end)",
    )
    sweep.add_argument(
        "--curve-images",
        type=int,
        metavar="N",
        help="test images behind each learning-curve point (0: all; default: the preset's, else 512)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def describe_experiments() -> str:
    from gon.experiments import EXPERIMENTS, describe
    from gon.models.registry import RECIPES

    lines = []
    for name, e in EXPERIMENTS.items():
        lines.append(f"{name:15s} {e.summary}")
        lines += [f"{'':15s} {preset}: {describe(name, preset)}" for preset in e.presets]
    lines.append("\nrecipes (gon fit --recipe NAME; the gradient-family experiment's rows):")
    lines += [f"{name:15s} {r.describe()}" for name, r in RECIPES.items()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from gon.training.cpu_memory import tune_for_training

    tune_for_training()  # training: a step's activations stay mapped between steps (gon.training.cpu_memory)
    from gon.core.errors import GonError
    from gon.experiments import Budget, run_experiment

    if args.list:
        print(describe_experiments())
        return 0
    if args.experiment is None:
        raise GonError("name an EXPERIMENT to run (gon reproduce --list shows them)")
    budget = Budget(
        dataset=args.dataset,
        data_dir=args.data_dir,
        out=args.out,
        seeds=args.seeds,
        steps=args.steps,
        epochs=args.epochs,
        limit_train=args.limit_train,
        test_size=args.test_size,
        batch_size=args.batch_size,
        lr=args.lr,
        image_size=args.image_size,
        preset=args.preset,
        options={} if args.latent_dim is None else {"latent_dim": args.latent_dim},
        device=args.device,
        threads=args.threads,
        jobs=args.jobs,
        cuda_graphs=args.cuda_graphs,
        ensemble=None if args.ensemble is None else args.ensemble == "on",
        progress=not args.no_progress,
        resume=args.resume,
        shard=parse_shard(args.shard),
        merge=args.merge,
        rows=tuple(r.strip() for r in args.rows.split(",") if r.strip()) if args.rows else None,
        checkpoint_every=args.checkpoint_every,
        curve_images=args.curve_images,
    )
    if args.overwrite and (args.resume or args.shard or args.merge):
        raise GonError("--overwrite replaces a sweep; --resume, --shard and --merge continue one: give one of them")
    run_experiment(args.experiment, budget, command=command_line(args), overwrite=args.overwrite)
    return 0


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``--shard K/N`` as (K, N), 1 <= K <= N."""
    from gon.core.errors import GonError

    if text is None:
        return None
    k, slash, n = text.partition("/")
    k, n = k.strip(), n.strip()
    digits = all(part.isascii() and part.isdigit() for part in (k, n))
    if not slash or not digits or not 1 <= int(k) <= int(n) <= 100000:
        raise GonError(f"--shard {text!r}: give K/N with 1 <= K <= N, e.g. 3/8")
    return int(k), int(n)


def command_line(args: argparse.Namespace) -> str:
    """The command with every setting spelled out, for OUT/settings.json (defaults change; records should not)."""
    parts = ["gon", "reproduce", args.experiment]
    for key in (
        "preset",
        "dataset",
        "data_dir",
        "steps",
        "epochs",
        "seeds",
        "limit_train",
        "test_size",
        "batch_size",
        "lr",
        "image_size",
        "latent_dim",
        "device",
        "threads",
        "jobs",
        "shard",
        "rows",
        "curve_images",
        "ensemble",
        "out",
    ):
        if getattr(args, key) is not None:
            parts += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    if not args.cuda_graphs:
        parts.append("--no-cuda-graphs")
    parts += [f"--{flag}" for flag in ("resume", "merge") if getattr(args, flag)]
    return shlex.join(parts)
