#!/usr/bin/env python3
"""CPU seconds per training step of each gradient-family ingredient, interleaved, on a shared CPU.

``gon reproduce gradient-family`` reports wall seconds per step, which on a CPU shared with other jobs measure the
load as much as the model. This times the same rows (``gon.experiments.family.family_rows``) on one thread with
``time.process_time`` (CPU time of this process: waiting for the CPU is not counted), round-robin so that a change
of load hits every row alike, and prints the median of the rounds as a markdown table.

    nice -n 19 python benchmarks/family_step_times.py --latent 128 --size 28 --channels 1 --steps 10 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gon.experiments.family import family_rows
from gon.models.registry import build
from gon.training.loop import training_step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--latent", type=int, default=128)
    p.add_argument("--size", type=int, default=28, help="image side (28: Fashion-MNIST, 64: the colour folder)")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="steps per row and round")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.rand(args.batch_size, args.channels, args.size, args.size)
    steps = {}
    for row in family_rows((args.latent,)):
        options = {"hidden": args.hidden, "depth": args.depth, "channels": args.channels, "image_size": args.size}
        model = build(row.model, **options, **row.options)
        steps[row.columns["ingredient"]] = training_step(model, 1e-4, "cpu", log=None)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():  # warm-up
        step({"x": x})
    for _ in range(args.rounds):
        for name, step in steps.items():
            started = time.process_time()
            for _ in range(args.steps):
                step({"x": x})
            times[name].append((time.process_time() - started) / args.steps)
    base = statistics.median(times["GON (paper)"])
    print(f"| ingredient | CPU s / step ({args.size}x{args.size}x{args.channels}, latent {args.latent}) | ÷ GON |")
    print("|---|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.4f} | {statistics.median(values) / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
