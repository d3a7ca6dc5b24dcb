"""The paper's qualitative figures as experiments: each trains its model on any dataset and writes its figure.

fig4      a tiny implicit GON (SIREN, 3 hidden layers of 32 units, latent 32: 4,321 weights; the paper
          counts 4,385) on MNIST: test images and their reconstructions (Fig. 4a)
superres  an implicit GON trained at 32x32 (--image-size), rendered 8x larger beside bicubic upscaling (Fig. 5, 17)
slerp     spherical interpolations between the latents of pairs of test images, implicit GON (Fig. 6)
fig9a     a convolutional GON at 128x128 (LSUN Bedroom in the paper): test images and reconstructions
fig9b     a convolutional variational GON at 64x64 (CelebA in the paper): samples z ~ N(0, I)

Each also writes NAME.csv / NAME.md (parameters, test error, time) like the tables.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gon.experiments.common import Budget, Row, load_data, run_rows
from gon.experiments.tables import write_tables
from gon.report.pictures import interpolation_grid, reconstruction_grid, render_grid, sample_grid, save_grid

SUPERRES_FACTOR = 8  # the paper's 32 -> 256
METRICS = {"parameters": ("parameters", 0), "sse": ("test SSE / image", 3), "train_seconds": ("train s", 1)}


def _one_model(name: str, row: Row, budget: Budget, out: Path, draw, size: int | None = None) -> str:
    """Train ``row`` (first seed only draws) and let ``draw(model, data)`` return the figure to save as NAME.png."""
    data = load_data(budget, size)

    def keep(row: Row, seed: int, model) -> None:
        if seed == 0:
            torch.manual_seed(0)
            save_grid(draw(model, data), out / f"{name}.png")

    results, _ = run_rows([row], budget, data, keep=keep)
    return write_tables(results, out, name, ["row"], METRICS, f"Figure: {out / f'{name}.png'}.")


def fig4(budget: Budget, out: Path) -> str:
    """Fig. 4a: an implicit GON of a few thousand weights represents MNIST."""
    row = Row("implicit GON, SIREN 3x32, latent 32", "implicit", {"hidden": 32, "depth": 4, "latent_dim": 32})
    return _one_model("fig4", row, budget, out, lambda m, d: reconstruction_grid(m, d.test.subset(32).images), 28)


def superres(budget: Budget, out: Path) -> str:
    """Fig. 5 / 17: trained at 32x32, rendered 8x larger, 256x256 (left: bicubic upscaling of the input)."""
    row = Row("implicit GON", "implicit")

    def draw(model, d):
        return render_grid(model, d.test.subset(8).images, SUPERRES_FACTOR * d.test.image_size)

    return _one_model("superres", row, budget, out, draw)


def slerp(budget: Budget, out: Path) -> str:
    """Fig. 6: rows from one test image to another through slerps of their latents."""
    row = Row("implicit GON", "implicit")
    return _one_model(
        "slerp", row, budget, out, lambda m, d: interpolation_grid(m, d.test.images[0:8:2], d.test.images[1:8:2])
    )


def fig9a(budget: Budget, out: Path) -> str:
    """Fig. 9a: a convolutional GON at 128x128, test images above their reconstructions."""
    row = Row("conv GON 128x128", "gon", {"image_size": 128})
    return _one_model("fig9a", row, budget, out, lambda m, d: reconstruction_grid(m, d.test.subset(16).images), 128)


def fig9b(budget: Budget, out: Path) -> str:
    """Fig. 9b: samples of a convolutional variational GON at 64x64."""
    row = Row("variational GON 64x64", "vgon", {"image_size": 64})
    return _one_model("fig9b", row, budget, out, lambda m, d: sample_grid(m, 64), 64)
