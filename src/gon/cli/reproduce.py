"""``gon reproduce EXPERIMENT``: train the rows of one of the paper's experiments over seeds and write
OUT/EXPERIMENT.csv (per seed), OUT/EXPERIMENT.md (mean ± std) and its figures.

Each experiment has a CPU-sized default budget (``gon reproduce --list`` shows them); every flag overrides it.
"""

from __future__ import annotations

import argparse
import shlex


def add_parser(commands) -> None:
    from gon.experiments import EXPERIMENTS

    p = commands.add_parser(
        "reproduce",
        help="run one of the paper's experiments (tables and figures)",
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
    p.add_argument("--list", action="store_true", help="list the experiments and their default budgets")
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        help="fashion-mnist | mnist | smallnorb | coil20 | cifar10 | celeba | lsun-bedroom | "
        "folder:PATH | lmdb:PATH (default fashion-mnist)",
    )
    p.add_argument("--data-dir", help="where to look for dataset files first")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="optimiser steps per run (per row and seed)")
    length.add_argument("--epochs", type=int, help="passes over the training images per run")
    p.add_argument("--seeds", type=int, help="number of seeds (0, 1, ...) per row")
    p.add_argument("--limit-train", type=int, help="train on the first N training images")
    p.add_argument("--test-size", type=int, help="evaluate on the first N test images")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument(
        "--threads", type=int, help="torch CPU threads (default: the fastest count, timed on each row's first steps)"
    )
    p.add_argument("--out", help="output folder (default results/EXPERIMENT)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def describe_experiments() -> str:
    from gon.experiments import EXPERIMENTS

    lines = []
    for name, e in EXPERIMENTS.items():
        budget = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in e.defaults.items())
        lines.append(f"{name:15s} {e.summary}\n{'':15s} default budget: {budget}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from gon.errors import GonError
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
        device=args.device,
        threads=args.threads,
        progress=not args.no_progress,
    )
    run_experiment(args.experiment, budget, command=command_line(args))
    return 0


def command_line(args: argparse.Namespace) -> str:
    """The command with every setting spelled out, for OUT/settings.json (defaults change; records should not)."""
    parts = ["gon", "reproduce", args.experiment]
    for key in (
        "dataset",
        "data_dir",
        "steps",
        "epochs",
        "seeds",
        "limit_train",
        "test_size",
        "batch_size",
        "lr",
        "device",
        "threads",
        "out",
    ):
        if getattr(args, key) is not None:
            parts += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    return shlex.join(parts)
