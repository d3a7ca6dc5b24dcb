"""``gon bench``: throughput, peak memory, data loading, gon fit's overhead and time-to-quality, as
markdown tables (stdout) and JSON (``--json``). ``--quick`` is a 1-2 minute smoke run; ``--quality``
runs the Monte Carlo sweep (implicit GON, test MSE at equal wall-clock) instead."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gon.cli import COMMANDS
from gon.core.errors import GonError
from gon.core.settings import check_flag
from gon.core.validate import torch_device
from gon.storage.atomic import write_text
from gon.training.config import MAX_SEED


def add_parser(commands) -> None:
    p = commands.add_parser("bench", help=COMMANDS["bench"], description=__doc__)
    p.add_argument("--quick", action="store_true", help="small budgets and few repeats (~1-2 minutes on 2 CPU cores)")
    p.add_argument(
        "--quality",
        action="store_true",
        help="run the Monte Carlo sweep: implicit GON test MSE at equal wall-clock per coordinate fraction",
    )
    p.add_argument(
        "--seconds", type=float, help="--quality: training seconds per configuration (default 300; quick 10)"
    )
    p.add_argument("--fractions", help="--quality: comma-separated coordinate fractions (default 1,0.5,0.25,0.1)")
    p.add_argument(
        "--samplings", help="--quality: comma-separated subset samplings for p < 1 (default same,independent)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="--quality: seed of the weights, batches and pixel subsets (default 0)"
    )
    p.add_argument("--no-naive", action="store_true", help="--quality: leave out the naive-pass reference run")
    p.add_argument(
        "--sections",
        help="comma-separated subset of throughput,data,overhead,time-to-quality,cuda-graphs,contention,ensemble "
        "(default all but contention and ensemble; cuda-graphs: eager vs graphed steps of every model at batch 64 "
        "and 512, skipped rows without CUDA; ensemble: stacked vs separate steps of M = 1, 3, 5 seeds of every "
        "model, eager, and graphed on CUDA)",
    )
    p.add_argument(
        "--contention",
        action="store_true",
        help="run the contention section: conv GON steps/s at 1 thread, one per core and the measured choice, "
        "with and without a busy neighbour process (~3 minutes on 2 cores; with --sections: added to them)",
    )
    p.add_argument("--members", help="ensemble section: comma-separated member counts M (default 1,3,5)")
    p.add_argument("--batch-size", type=int, help="images per step (default 64; quick 16)")
    p.add_argument("--repeats", type=int, help="timed steps per configuration, after one warm-up (default 5; quick 2)")
    p.add_argument("--test-images", type=int, help="test images for the quality figures (default 10000; quick 500)")
    p.add_argument("--conv-seconds", type=float, help="time-to-quality budget of the conv GON (default 60; quick 5)")
    p.add_argument(
        "--implicit-seconds", type=float, help="time-to-quality budget of the implicit GON (default 300; quick 10)"
    )
    p.add_argument(
        "--overhead-steps",
        type=int,
        help="timed steps of the gon fit vs bare loop comparison (default 40; quick 15; a GPU needs ~400)",
    )
    p.add_argument(
        "--no-peer",
        action="store_true",
        help="skip the gon-pytorch peer (install it with: bash benchmarks/install_peer.sh)",
    )
    p.add_argument("--device", default="auto", help="cpu | cuda | auto (default auto)")
    p.add_argument(
        "--threads", type=int, help="torch CPU threads (default: the fastest for a conv GON step, measured first)"
    )
    p.add_argument("--json", default="bench.json", help="where to write the JSON record (default bench.json)")
    p.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace):
    from gon.bench import SECTIONS, Settings

    check_flag("--seed", args.seed, type=int, low=0, high=MAX_SEED)
    overrides = {
        "device": args.device,
        "peer": not args.no_peer,
        "quality": args.quality,
        "seed": args.seed,
        "quality_naive": not args.no_naive,
    }
    for flag, key in (
        ("batch_size", "batch"),
        ("repeats", "repeats"),
        ("test_images", "test_images"),
        ("conv_seconds", "conv_seconds"),
        ("implicit_seconds", "implicit_seconds"),
        ("seconds", "quality_seconds"),
        ("overhead_steps", "overhead_steps"),
    ):
        value = getattr(args, flag)
        if value is not None:
            overrides[key] = check_flag("--" + flag.replace("_", "-"), value, type=float, low=0, low_open=True)
    if args.sections:
        sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
        unknown = [s for s in sections if s not in SECTIONS]
        if unknown or not sections:
            raise GonError(
                f"option --sections: unknown section {', '.join(unknown) or '(none)'}; "
                f"choose from {', '.join(SECTIONS)}"
            )
        overrides["sections"] = sections
    if args.contention:
        overrides["sections"] = (*overrides.get("sections", ()), "contention")
    if args.threads is not None:
        overrides["threads"] = check_flag("--threads", args.threads, type=int, low=1)
    if args.members:
        try:
            members = tuple(int(m) for m in args.members.split(","))
        except ValueError:
            raise GonError(f"option --members must be comma-separated whole numbers, got {args.members!r}") from None
        if not members or min(members) < 1:
            raise GonError(f"option --members: every count must be at least 1, got {args.members}")
        overrides["ensemble_members"] = members
    if args.fractions:
        try:
            fractions = tuple(float(f) for f in args.fractions.split(","))
        except ValueError:
            raise GonError(f"option --fractions must be comma-separated numbers, got {args.fractions!r}") from None
        if not all(0 < f <= 1 for f in fractions):
            raise GonError(f"option --fractions: every fraction must be in (0, 1], got {args.fractions}")
        overrides["fractions"] = fractions
    if args.samplings:
        from gon.bench.quality import SAMPLINGS

        samplings = tuple(s.strip() for s in args.samplings.split(",") if s.strip())
        if not samplings or any(s not in SAMPLINGS for s in samplings):
            raise GonError(f"option --samplings must list some of {', '.join(SAMPLINGS)}, got {args.samplings!r}")
        overrides["samplings"] = samplings
    torch_device(args.device)  # a bad name, or CUDA where there is none: one line before any work
    return Settings.quick(**overrides) if args.quick else Settings(**overrides)


def run(args: argparse.Namespace) -> int:
    from gon.training.cpu_memory import tune_for_training

    tune_for_training()  # training: a step's activations stay mapped between steps (gon.training.cpu_memory)

    from gon.bench import markdown, run_suite

    settings = settings_from_args(args)
    out = Path(args.json)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GonError(f"option --json: cannot create {out.parent}: {e.strerror}") from None
    record = run_suite(settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    write_text(out, json.dumps(record, indent=2) + "\n")
    print(markdown(record))
    print(f"\nJSON written to {out}", file=sys.stderr)
    return 0
