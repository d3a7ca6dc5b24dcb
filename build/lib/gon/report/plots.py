"""Plots of a run with matplotlib: the loss curves and the latent histogram (paper Fig. 13-14); the
normality statistics it shows are :func:`gon.sampling.latent_normality`.

Figures are built with the object-oriented API (``matplotlib.figure.Figure``), so no global
pyplot state or GUI backend is touched, and are saved as PNG.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from gon.sampling import latent_normality
from gon.storage.atomic import save_figure

DPI = 100


def smooth(values: list[float], weight: float) -> list[float]:
    """Exponential moving average with bias correction (TensorBoard's smoothing)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, 1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**i))
    return out


def _series(rows: list[dict[str, float]], key: str) -> tuple[list[float], list[float]]:
    points = [(r["step"], r[key]) for r in rows if key in r and "step" in r and math.isfinite(r[key])]
    return [p[0] for p in points], [p[1] for p in points]


def plot_loss_curves(
    rows: list[dict[str, float]], path: str | Path, title: str = "", validation_note: str = ""
) -> Path | None:
    """Train and test loss by step (one panel), test per-pixel MSE, and any other train terms.

    ``rows`` are a run's logged metrics (``gon.storage.runs.read_metrics``); ``validation_note`` says which
    images the test figures were measured on (e.g. "1,000 of 10,000 test images"). Returns None when
    nothing has been logged yet.
    """
    train_x, train_y = _series(rows, "train/loss")
    test_x, test_y = _series(rows, "test/loss")
    if not train_x and not test_x:
        return None
    mse_x, mse_y = _series(rows, "test/mse")
    terms = sorted({k for r in rows for k in r if k.startswith("train/") and k != "train/loss"})
    panels = 1 + bool(mse_x) + bool(terms)
    fig = Figure(figsize=(5.2 * panels, 3.8), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]

    ax = axes[0]
    if train_x:
        ax.plot(train_x, train_y, color="tab:blue", alpha=0.25, linewidth=0.8)
        ax.plot(train_x, smooth(train_y, 0.9 if len(train_y) > 20 else 0.0), color="tab:blue", label="train")
    if test_x:
        ax.plot(test_x, test_y, "o-", color="tab:orange", markersize=4, label="test" + _on(validation_note))
    ax.set(xlabel="step", ylabel="loss (per image)", title="training objective")
    if max(train_y + test_y) > 20 * max(min(train_y + test_y), 1e-12):
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    col = 1
    if mse_x:
        ax = axes[col]
        col += 1
        psnr = [10 * math.log10(1 / max(m, 1e-12)) for m in mse_y]  # dB for pixels in [0, 1]
        last = f"MSE {mse_y[-1]:.4g}, {psnr[-1]:.2f} dB at step {mse_x[-1]:g}"
        ax.set(xlabel="step", ylabel="PSNR (dB), higher is better", title="test reconstruction quality")
        if len(mse_x) > 1:
            ax.plot(mse_x, psnr, "o-", color="tab:green", markersize=4, label=f"last: {last}")
            ax.legend(title=validation_note or None, fontsize=8, title_fontsize=8)
        else:  # one evaluation: a value, not a lone dot on a meaningless axis
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{last}\n{validation_note}", ha="center", va="center", transform=ax.transAxes)
        ax.grid(alpha=0.3)
    if terms:
        ax = axes[col]
        for key in terms:
            x, y = _series(rows, key)
            ax.plot(x, smooth(y, 0.9 if len(y) > 20 else 0.0), label=key.removeprefix("train/"))
        ax.set(xlabel="step", title="train loss terms (smoothed)")
        ax.legend()
        ax.grid(alpha=0.3)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    return Path(path)


def _on(note: str) -> str:
    return f" ({note})" if note else ""


def plot_latent_histogram(latents: Tensor, path: str | Path, title: str = "latent values") -> dict[str, float]:
    """Histogram of every latent value with its fitted normal density (paper Fig. 13-14).

    Returns :func:`latent_normality` of the latents, which the plot's legend also shows.
    """
    stats = latent_normality(latents)
    x = latents.detach().double().cpu().flatten().numpy()
    fig = Figure(figsize=(5.5, 3.8), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.hist(
        x,
        bins=min(100, max(10, int(math.sqrt(len(x))))),
        density=True,
        color="tab:blue",
        alpha=0.6,
        label=f"{latents.shape[0]} latents x {latents.shape[1]} dims",
    )
    mu, sd = stats["mean"], max(stats["std"], 1e-12)
    grid = torch.linspace(float(x.min()), float(x.max()), 400, dtype=torch.float64)
    density = torch.exp(-0.5 * ((grid - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    ax.plot(
        grid.numpy(),
        density.numpy(),
        color="tab:red",
        label=f"normal fit N({mu:.3g}, {sd:.3g}²)\nKS D = {stats['ks']:.3f} (per dim {stats['ks_per_dim']:.3f})\n"
        f"skew {stats['skew']:.2f}, excess kurtosis {stats['excess_kurtosis']:.2f}",
    )
    ax.set(xlabel="latent value", ylabel="density", title=title)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return stats
