"""Table 2: the variational GON against a VAE with the same heads and decoder, by test ELBO in bits/dim."""

from __future__ import annotations

from pathlib import Path

import torch

from gon.experiments.common import Budget, Data, Row, load_data, run_rows
from gon.experiments.figures import image_rows
from gon.experiments.tables import write_tables
from gon.metrics import elbo_bits_per_dim, evaluating, reconstruction_metrics


def table2(budget: Budget, out: Path) -> str:
    """Negative ELBO (BCE + KL) in bits per dimension on the test split; samples of each model's first seed."""
    data = load_data(budget)
    samples: dict[str, torch.Tensor] = {}

    def evaluate(model, d: Data) -> dict[str, float]:
        images = d.test.images.to(budget.device)
        return {**elbo_bits_per_dim(model, images), "mse": reconstruction_metrics(model, images)["mse"]}

    def keep(row: Row, seed: int, model) -> None:
        if seed == 0:
            torch.manual_seed(0)
            with evaluating(model):
                samples[row.label] = model.sample(10)

    results, _ = run_rows([Row("VGON", "vgon"), Row("VAE", "vae")], budget, data, evaluate=evaluate, keep=keep)
    image_rows(list(samples.items()), out / "table2_samples.png", "Samples z ~ N(0, I), seed 0")
    metrics = {
        "parameters": ("parameters", 0),
        "elbo_bpd": ("ELBO (bits/dim)", 3),
        "bce_bpd": ("BCE part", 3),
        "kl_bpd": ("KL part", 3),
        "mse": ("recon. per-pixel MSE", 5),
        "train_seconds": ("train s", 1),
    }
    note = (
        "Negative ELBO = BCE on [0, 1] pixels + KL to N(0, I), one posterior sample per image, "
        f"divided by {data.test.images[0].numel()} dimensions and ln 2 (gon.metrics.elbo_bits_per_dim); "
        "lower is better."
    )
    return write_tables(results, out, "table2", ["row"], metrics, note)
