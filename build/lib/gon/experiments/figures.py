"""The experiments' figures with matplotlib: learning curves, metric-vs-setting lines, image strips, scatters.

Figures are ``matplotlib.figure.Figure`` objects saved straight to PNG: no pyplot, so the user's
backend and pyplot's global figure list are never touched.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gon.storage.atomic import save_figure


def _subplots(*args, **kwargs):
    """A new figure and its axes (as ``pyplot.subplots`` gives them), outside pyplot's state."""
    from matplotlib.figure import Figure  # slow to import: only when a figure is drawn

    fig = Figure(figsize=kwargs.pop("figsize", None))
    return fig, fig.subplots(*args, **kwargs)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return path


def _mean_band(points: list[dict[str, Any]], x: str, y: str) -> tuple[list, list[float], list[float]]:
    """Mean and std of ``y`` over seeds at each ``x``."""
    by_x: dict[Any, list[float]] = {}
    for p in points:
        if p.get(y) is not None:
            by_x.setdefault(p[x], []).append(float(p[y]))
    xs = sorted(by_x)
    means = [statistics.fmean(by_x[v]) for v in xs]
    stds = [statistics.stdev(by_x[v]) if len(by_x[v]) > 1 else 0.0 for v in xs]
    return xs, means, stds


def _line(ax, points, x, y, label, style="-", color=None) -> str:
    """Mean of ``y`` against ``x`` with a ± std band; returns the line's colour."""
    xs, means, stds = _mean_band(points, x, y)
    (line,) = ax.plot(xs, means, style, marker="o", markersize=3, label=label, color=color)
    ax.fill_between(
        xs,
        [m - s for m, s in zip(means, stds)],
        [m + s for m, s in zip(means, stds)],
        color=line.get_color(),
        alpha=0.2,
    )
    return line.get_color()


def plot_curves(
    points: list[dict[str, Any]],
    path: Path,
    title: str,
    train: bool = False,
    ylabel: str = "summed squared error per image",
) -> Path:
    """Test (and training) error against training step, one line per row, mean ± std band over seeds."""
    fig, ax = _subplots(figsize=(6.4, 4.2))
    for row in dict.fromkeys(p["row"] for p in points):
        mine = [p for p in points if p["row"] == row]
        color = _line(ax, mine, "step", "test_sse", f"{row} (test)" if train else row)
        if train:
            _line(ax, mine, "step", "train_sse", f"{row} (train)", "--", color)
    ax.set(xlabel="training step", ylabel=ylabel, title=title)
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


@dataclass
class Panel:
    """One panel of :func:`plot_lines`: ``y`` against ``x`` over ``results``."""

    title: str
    results: list[dict[str, Any]]
    x: str
    y: str
    xscale: str = "linear"  # or "log" (base 2), or "symlog" (0 beside values spanning decades)


LABELS = {
    "sse": "test SSE / image",
    "mse": "test per-pixel MSE",
    "latent_dim": "latent size",
    "sigma": "sigma of z0",
    "blocks": "upsampling blocks",
    "width": "width (filters of the last block)",
    "epoch": "epoch",
    "test_sse": "test SSE / image (512 test images, seeded and stratified)",
    "sse_vs_gon": "test SSE ÷ the (V)GON's (same seed)",
}


def plot_learning_curves(points: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Table rows through training: test error against epochs, and each row's error relative to the GON's."""
    panels = [Panel("test error", points, "epoch", "test_sse")]
    if any(p.get("sse_vs_gon") is not None for p in points):
        panels.append(
            Panel(
                "relative to the first row",
                [p for p in points if p.get("sse_vs_gon") is not None],
                "epoch",
                "sse_vs_gon",
            )
        )
    return plot_lines(panels, path, title)


def plot_lines(panels: Sequence[Panel], path: Path, title: str, group: str = "row") -> Path:
    """One line per ``group`` value in each panel, mean ± std over seeds."""
    fig, axes = _subplots(1, len(panels), figsize=(4.6 * len(panels), 4.0), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for name in dict.fromkeys(r[group] for r in panel.results):
            _line(ax, [r for r in panel.results if r[group] == name], panel.x, panel.y, str(name))
        ax.set(xlabel=LABELS.get(panel.x, panel.x), ylabel=LABELS.get(panel.y, panel.y), title=panel.title)
        if panel.xscale == "log":
            ax.set_xscale("log", base=2)
        elif panel.xscale == "symlog":
            ax.set_xscale("symlog", linthresh=0.01)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)


def image_rows(rows: Sequence[tuple[str, torch.Tensor]], path: Path, title: str = "") -> Path:
    """Labelled rows of images: each (label, images [N, C, H, W] in [0, 1]) becomes one row."""
    n = max(len(images) for _, images in rows)
    fig, axes = _subplots(len(rows), n, figsize=(0.9 * n + 1.6, 0.95 * len(rows) + 0.4), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                img = images[c].detach().float().cpu().clamp(0, 1)
                ax.imshow((img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)).numpy(), cmap="gray", vmin=0, vmax=1)
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def scatter_latents(z: torch.Tensor, labels: torch.Tensor, classes: list[str] | None, path: Path, title: str) -> Path:
    """2-D latents coloured by class (Fig. 12)."""
    from matplotlib import colormaps

    fig, ax = _subplots(figsize=(6, 5))
    z, labels = z.detach().cpu().numpy(), labels.cpu().numpy()
    cmap = colormaps["tab10"]
    for k in sorted(set(labels.tolist())):  # one colour per class
        pts = z[labels == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=4, color=cmap(k % 10), label=classes[k] if classes else str(k), alpha=0.7)
    ax.set(xlabel="z1", ylabel="z2", title=title)
    ax.legend(fontsize=7, markerscale=3, loc="best")
    return _save(fig, path)
