"""Table 2: the variational GON against a VAE with the same heads and decoder, by test ELBO in bits/dim."""

from __future__ import annotations

from pathlib import Path

import torch

from gon.experiments.common import Budget, Data, Row, curve_count, load_data, relative_to, run_rows
from gon.experiments.figures import image_rows, plot_learning_curves
from gon.experiments.tables import write_csv, write_tables
from gon.metrics import discretised_elbo_bits_per_dim, elbo_bits_per_dim, reconstruction_metrics
from gon.sampling import eval_mode

FIT_IMAGES = 2000  # training images that fit the discretised likelihood's one scale
TABLE2_ROWS = [Row("VGON", "vgon"), Row("VAE", "vae")]


def test_elbo(model, d: Data, budget: Budget) -> dict[str, float]:
    """The test ELBO in both units (Bernoulli as trained; 256 levels, the paper's scale) and the reconstruction MSE."""
    images = d.test.images.to(budget.device)
    levels = discretised_elbo_bits_per_dim(model, images, d.train.subset(FIT_IMAGES).images.to(budget.device))
    return {
        **elbo_bits_per_dim(model, images),
        "elbo256_bpd": levels["elbo256_bpd"],
        "nll256_bpd": levels["nll256_bpd"],
        "mse": reconstruction_metrics(model, images)["mse"],
    }


def table2(budget: Budget, out: Path) -> str:
    """Negative ELBO (BCE + KL) in bits per dimension on the test split; samples of each model's first seed."""
    data = load_data(budget)
    samples: dict[str, torch.Tensor] = {}

    def keep(row: Row, seed: int, model) -> None:
        if seed == 0:
            torch.manual_seed(0)
            with eval_mode(model):
                samples[row.label] = model.sample(10)

    curves = curve_count(budget, len(data.train))
    results, points = run_rows(TABLE2_ROWS, budget, data, curves=curves, evaluate=test_elbo, keep=keep)
    points = relative_to(points, "VGON")
    write_csv(points, out / "table2_curves.csv")
    plot_learning_curves(points, out / "table2_curves.png", f"Table 2 rows through training ({data.train.name})")
    image_rows(list(samples.items()), out / "table2_samples.png", "Samples z ~ N(0, I), seed 0")
    metrics = {
        "parameters": ("parameters", 0),
        "elbo256_bpd": ("ELBO, 256 levels (bits/dim)", 3),
        "nll256_bpd": ("its likelihood part", 3),
        "elbo_bpd": ("ELBO, Bernoulli (bits/dim)", 3),
        "bce_bpd": ("BCE part", 3),
        "kl_bpd": ("KL part (both)", 3),
        "mse": ("recon. per-pixel MSE", 5),
        "train_seconds": ("train s", 1),
    }
    note = (
        "Negative ELBO per dimension in bits (lower is better), one posterior sample per image, in two units. "
        "256 levels (the paper's scale): pixels rounded to k/255, a discretised logistic around the decoder's "
        f"output with one maximum-likelihood scale fitted on {FIT_IMAGES} training images, + KL to N(0, I) "
        "(gon.metrics.discretised_elbo_bits_per_dim). Bernoulli (the training loss): BCE on [0, 1] pixels + KL "
        f"(gon.metrics.elbo_bits_per_dim). Both divided by {data.test.images[0].numel()} dimensions and ln 2."
    )
    return write_tables(results, out, "table2", ["row"], metrics, note)
