"""The paper's qualitative figures as experiments: each trains its model on any dataset and writes its figure.

fig4      a tiny implicit GON (SIREN, 3 hidden layers of 32 units, latent 32: 4,321 weights; the paper
          counts 4,385) on MNIST: test images and their reconstructions (Fig. 4a)
superres  an implicit GON trained at 32x32 (--image-size), rendered 8x larger beside bicubic upscaling (Fig. 5, 17)
slerp     spherical interpolations between the latents of pairs of test images, implicit GON (Fig. 6)
fig9a     a convolutional GON at 128x128 (LSUN Bedroom in the paper): test images and reconstructions
fig9b     a convolutional variational GON at 64x64 (CelebA in the paper): samples z ~ N(0, I)

Each also writes NAME.csv / NAME.md: parameters, steps, epochs, test error (fig9b: also its test ELBO) and
training seconds, and a note naming the data the figure was drawn from.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gon.experiments.common import Budget, Data, Evaluate, Row, load_data, run_rows, test_reconstruction
from gon.experiments.tables import write_tables
from gon.experiments.variational import test_elbo
from gon.report.pictures import interpolation_grid, reconstruction_grid, render_grid, sample_grid, save_grid

SUPERRES_FACTOR = 8  # the paper's 32 -> 256
METRICS = {
    "parameters": ("parameters", 0),
    "steps": ("steps", 0),
    "epochs": ("epochs", 2),
    "sse": ("test SSE / image", 3),
    "psnr": ("test PSNR (dB)", 2),
    "train_seconds": ("train s", 1),
}
ELBO = {"elbo256_bpd": ("test ELBO, 256 levels (bits/dim)", 3), "elbo_bpd": ("test ELBO, Bernoulli (bits/dim)", 3)}


def test_metrics(model, d: Data, budget: Budget) -> dict[str, float]:
    """fig9b's final metrics: the reconstruction error (PSNR included) and the test ELBO in both units."""
    return {**test_reconstruction(model, d, budget), **test_elbo(model, d, budget)}


def _one_model(
    name: str,
    row: Row,
    budget: Budget,
    out: Path,
    draw,
    size: int = 32,
    evaluate: Evaluate = test_reconstruction,
    metrics: dict[str, tuple[str, int]] | None = None,
) -> str:
    """Train ``row`` at ``size`` (--image-size wins) and let ``draw(model, data)`` return the figure of its first
    seed, saved as NAME.png; returns the table of NAME.md."""
    size = budget.image_size or size
    data = load_data(budget, size)
    row = Row(row.label, row.model, {**row.options, "image_size": size})  # --jobs workers load this size too

    def keep(row: Row, seed: int, model) -> None:
        if seed == 0:
            torch.manual_seed(0)
            save_grid(draw(model, data), out / f"{name}.png")

    results, _ = run_rows([row], budget, data, evaluate=evaluate, keep=keep)
    note = (
        f"Data: {data.train.name}, {len(data.train)} training and {len(data.test)} test images at {size}x{size}; "
        f"batch {budget.batch_size}, Adam lr {budget.lr:g}. Figure (seed 0): {out / f'{name}.png'}."
    )
    return write_tables(results, out, name, ["row"], {**METRICS, **(metrics or {})}, note)


def _reconstructions(n: int):
    """A ``draw`` for :func:`_one_model`: a seeded, stratified choice of n test images above their reconstructions."""

    def draw(model, d: Data):
        images = d.test.subset(n).images
        return reconstruction_grid(model, images, source=f"{len(images)} test images of {d.test.name}")

    return draw


def fig4(budget: Budget, out: Path) -> str:
    """Fig. 4a: an implicit GON of a few thousand weights represents MNIST (the preset sets its size), at 28x28."""
    return _one_model("fig4", Row("implicit GON", "implicit"), budget, out, _reconstructions(32), 28)


def superres(budget: Budget, out: Path) -> str:
    """Fig. 5 / 17: trained at 32x32, rendered 8x larger, 256x256 (left: bicubic upscaling of the input)."""

    def draw(model, d: Data):
        return render_grid(model, d.test.subset(8).images, SUPERRES_FACTOR * d.test.image_size)

    return _one_model("superres", Row("implicit GON", "implicit"), budget, out, draw)


def slerp(budget: Budget, out: Path) -> str:
    """Fig. 6: rows from one test image to another through slerps of their latents."""

    def draw(model, d: Data):
        images = d.test.subset(8).images  # a seeded, stratified choice: pairs of different classes
        return interpolation_grid(model, images[0::2], images[1::2])

    return _one_model("slerp", Row("implicit GON", "implicit"), budget, out, draw)


def fig9a(budget: Budget, out: Path) -> str:
    """Fig. 9a: a convolutional GON at 128x128, test images above their reconstructions."""
    return _one_model("fig9a", Row("conv GON", "gon"), budget, out, _reconstructions(16), 128)


def fig9b(budget: Budget, out: Path) -> str:
    """Fig. 9b: samples of a convolutional variational GON at 64x64, with its test ELBO."""

    def draw(model, d: Data):
        return sample_grid(model, 64)

    return _one_model("fig9b", Row("variational GON", "vgon"), budget, out, draw, 64, test_metrics, ELBO)
