"""Several trained runs side by side on the same test images: one labelled picture of reconstructions and one of
samples, a markdown table of their test errors (all test images) against the mean image's, and one of how much
their samples vary against the data (and, for variational models, how far their posterior means fill N(0, I)).

    python benchmarks/model_sheet.py RUN [RUN ...] --out docs/vgon64 [--n 8] [--seed 0] [--temperature 1 0.7]

The runs must share one dataset (the first run's, e.g. a folder made by scripts/make_colour_folder.py). Writes
OUT-recon.png and OUT-samples.png. Variational models sample from their prior N(0, t^2 I), the others from the
Gaussian fitted to their training latents, at each temperature t.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml

import gon
from gon.data import load_dataset
from gon.report.images import labelled, make_grid, save_image
from gon.sampling import sample
from gon.storage.runs import split_seed_of


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="gon fit run directories on one dataset")
    p.add_argument("--out", type=Path, required=True, help="output stem: OUT-recon.png and OUT-samples.png")
    p.add_argument("--n", type=int, default=8, help="images per row (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the test images and the draws (default 0)")
    p.add_argument("--temperature", type=float, nargs="+", default=[1.0], help="sample temperatures (default 1)")
    p.add_argument("--draws", type=int, default=64, help="samples and training images per statistic (default 64)")
    args = p.parse_args(argv)
    config = yaml.safe_load((args.runs[0] / "config.yaml").read_text())
    kw = dict(image_size=config["image_size"], seed=split_seed_of(config))  # the held-out split the runs trained beside
    test = load_dataset(config["dataset"], "test", **kw)
    train = load_dataset(config["dataset"], "train", **kw)
    mean_mse = (test.images - train.images.mean(0)).pow(2).mean().item()
    shown = test.subset(args.n, args.seed).images
    names, models, rows = [], [], [shown]
    print(f"| run | model | steps | test MSE ({len(test)} test images) | ÷ mean image |\n|---|---|---:|---:|---:|")
    for run in args.runs:
        model = gon.load(run).eval()
        metrics = json.loads((run / "metrics.json").read_text())
        name = f"{run.name}: MSE {metrics['test_mse']:.4f}"
        names.append(name)
        models.append(model)
        with torch.no_grad():
            rows.append(model.reconstruct(shown).clamp(0, 1))
        print(
            f"| {run.name} | {type(model).__name__} | {metrics['steps']} | {metrics['test_mse']:.5f} |"
            f" {metrics['test_mse'] / mean_mse:.2f} |"
        )
    print(f"| mean training image | | | {mean_mse:.4f} | 1.00 |")
    cell = (shown.shape[-2] + 2, shown.shape[-1] + 2)
    title = f"{args.n} test images (random, stratified, seed {args.seed}) and their reconstructions; test MSE on all"
    recon = labelled(make_grid(torch.cat(rows), nrow=args.n), title, cell, rows=["test image", *names])
    save_image(recon, args.out.with_name(args.out.name + "-recon.png"))
    draws, labels = [], []
    for name, model in zip(names, models):
        for t in args.temperature:
            draws.append(sample(model, args.n, t, args.seed).clamp(0, 1))
            labels.append(f"{name.split(':')[0]}, t={t:g}")
    title = f"samples (seed {args.seed}): variational models from N(0, t^2 I), others from their fitted Gaussian"
    samples = labelled(make_grid(torch.cat(draws), nrow=args.n), title, cell, rows=labels)
    save_image(samples, args.out.with_name(args.out.name + "-samples.png"))
    print_sample_statistics(args, names, models, train.subset(args.draws * 8, args.seed).images)
    return 0


def pixel_spread(images: torch.Tensor) -> float:
    """The standard deviation of each pixel across the images, averaged: 0 when every image is the same."""
    return images.std(0).mean().item()


def print_sample_statistics(args, names: list[str], models: list, train: torch.Tensor) -> None:
    """How varied each model's samples are against the training images, and where a variational model's posterior
    means lie against its prior N(0, I): mean distance from the origin and the largest covariance eigenvalue."""
    print(f"\n| run | pixel spread of {args.draws} samples, " + ", ".join(f"t={t:g}" for t in args.temperature), end="")
    print(f" | posterior means of {len(train)} training images: distance of their mean from 0 | largest eigenvalue |")
    print("|---|---:|---:|---:|")
    for name, model in zip(names, models):
        spreads = [pixel_spread(sample(model, args.draws, t, args.seed)) for t in args.temperature]
        means = "| | |"
        if hasattr(model, "heads"):  # a variational model: encode gives its posterior means
            with torch.no_grad():
                mu = torch.cat([model.encode(x) for x in train.split(64)])
            largest = torch.linalg.eigvalsh(torch.cov(mu.T)).max().item()
            means = f"| {mu.mean(0).norm().item():.2f} | {largest:.2f} |"
        print(f"| {name.split(':')[0]} | " + ", ".join(f"{v:.3f}" for v in spreads) + f" {means}")
    print(f"| training images (N(0, I) for the means) | {pixel_spread(train):.3f} | 0 | 1 |")


if __name__ == "__main__":
    sys.exit(main())
