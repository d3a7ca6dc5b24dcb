"""Reconstruction experiments: Table 1, the step ablation (Fig. 2b), generalisation (Fig. 2c, 16),
activations (Fig. 3), the initialisation of z0 (Fig. 11) and capacity (Fig. 10).

Every row is a registry model trained on the same data and budget; the metric is the summed
squared error per test image (``sse``; Table 1's "summed squared error"), with per-pixel MSE
and PSNR beside it (:func:`gon.metrics.reconstruction_metrics`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from gon.experiments.common import Budget, Data, Row, curve_count, load_data, relative_to, run_rows
from gon.experiments.figures import Panel, image_rows, plot_curves, plot_learning_curves, plot_lines
from gon.experiments.tables import write_csv, write_tables
from gon.metrics import reconstruction_metrics
from gon.models.baselines import GLO_FIT_STEPS
from gon.sampling import eval_mode

SSE = {"sse": ("test SSE / image", 3)}
RECON = {
    "parameters": ("parameters", 0),
    **SSE,
    "mse": ("per-pixel MSE", 5),
    "psnr": ("PSNR (dB)", 2),
    "train_seconds": ("train s", 1),
}
TEN = {"steps": 10, "step_size": 0.1}  # the paper's multi-step rows: 10 steps of size 0.1 on the latent

TABLE1_ROWS = [
    Row("GON", "gon"),
    Row("AE", "ae"),
    Row("TiedAE", "tied-ae"),
    Row("1 Step Detach", "gon", {"detach": True}),
    Row("10 Step Detach", "gon", {**TEN, "detach": True}),
    Row("10 Step", "gon", TEN),
    Row("GLO", "glo"),
]


def _reconstructions(images: torch.Tensor, store: dict[str, torch.Tensor]):
    """A ``keep`` hook: the first seed's reconstructions of ``images``, by row label."""

    def keep(row: Row, seed: int, model) -> None:
        if seed == 0:
            with eval_mode(model) as device:
                store[row.label] = model.reconstruct(images.to(device)).cpu()

    return keep


def table1(budget: Budget, out: Path) -> str:
    """Table 1: single-step and multi-step encoders on the GON's decoder; test reconstruction error."""
    data = load_data(budget)
    fixed, recon = data.test.subset(10).images, {}
    curves = curve_count(budget, len(data.train))
    results, points = run_rows(TABLE1_ROWS, budget, data, curves=curves, keep=_reconstructions(fixed, recon))
    gon = {r["seed"]: r["sse"] for r in results if r["row"] == "GON"}
    for r in results:
        r["sse_vs_gon"] = r["sse"] / gon[r["seed"]] if r["seed"] in gon else None
    points = relative_to(points, "GON")
    write_csv(points, out / "table1_curves.csv")
    plot_learning_curves(points, out / "table1_curves.png", f"Table 1 rows through training ({data.train.name})")
    image_rows([("test images", fixed), *recon.items()], out / "table1_reconstructions.png", "Table 1 rows, seed 0")
    metrics = {
        "parameters": ("parameters", 0),
        **SSE,
        "sse_vs_gon": ("÷ GON", 2),
        "mse": ("per-pixel MSE", 5),
        "psnr": ("PSNR (dB)", 2),
        "train_seconds": ("train s", 1),
        "eval_seconds": ("eval s", 1),
    }
    latent = budget.options.get("latent_dim", 32)
    note = (
        f"Parameters exclude GLO's per-image codes ({len(data.train)} x {latent} values); GLO's test codes are "
        f"fitted with {GLO_FIT_STEPS} Adam steps (decoder frozen), hence its evaluation time."
    )
    return write_tables(results, out, "table1", ["row"], metrics, note)


def steps(budget: Budget, out: Path) -> str:
    """Fig. 2b: one gradient step against several jointly optimised steps (size 1/n), and detached."""
    rows = [
        Row("1 step", "gon"),
        Row("2 steps", "gon", {"steps": 2, "step_size": 0.5}),
        Row("5 steps", "gon", {"steps": 5, "step_size": 0.2}),
        Row("1 step, detached", "gon", {"detach": True}),
        Row("5 steps, detached", "gon", {"steps": 5, "step_size": 0.2, "detach": True}),
    ]
    results, points = run_rows(rows, budget, load_data(budget), curves=8)
    write_csv(points, out / "steps_curves.csv")
    plot_curves(points, out / "steps.png", "Latent steps from the origin (Fig. 2b)")
    return write_tables(results, out, "steps", ["row"], RECON)


def train_and_test_error(model, d: Data, budget: Budget) -> dict[str, float]:
    """Test error, training error on as many training images, and the gap."""
    test = reconstruction_metrics(model, d.test.images.to(budget.device))
    train = reconstruction_metrics(model, d.train.subset(budget.test_size).images.to(budget.device))
    return {**test, "train_sse": train["sse"], "gap": test["sse"] - train["sse"]}


def generalisation(budget: Budget, out: Path) -> str:
    """Fig. 2c / 16: training against test error through training, GON against AE."""
    data = load_data(budget)
    train_eval = data.train.subset(budget.test_size).images
    results, points = run_rows(
        [Row("GON", "gon"), Row("AE", "ae")], budget, data, curves=10, train_curve=True, evaluate=train_and_test_error
    )
    write_csv(points, out / "generalisation_curves.csv")
    plot_curves(
        points, out / "generalisation.png", f"Train vs test error, {len(data.train)} training images", train=True
    )
    metrics = {
        "parameters": ("parameters", 0),
        "train_sse": ("train SSE / image", 3),
        **SSE,
        "gap": ("test - train", 3),
    }
    return write_tables(
        results,
        out,
        "generalisation",
        ["row"],
        metrics,
        f"Train error on {len(train_eval)} training images (a seeded, stratified choice), "
        f"test error on {len(data.test)} test images.",
    )


ACTIVATIONS = ("elu", "relu", "silu", "tanh", "sine")
LATENTS = (8, 32, 128)


def activations(budget: Budget, out: Path) -> str:
    """Fig. 3: the decoder's activation (second derivative zero or not) for several latent sizes."""
    rows = [
        Row(f"{a}, k={k}", "gon", {"activation": a, "latent_dim": k}, {"activation": a, "latent_dim": k})
        for k in LATENTS
        for a in ACTIVATIONS
    ]
    results, _ = run_rows(rows, budget, load_data(budget))
    plot_lines(
        [Panel("test error by activation", results, "latent_dim", "sse", "log")],
        out / "activations.png",
        "Activations (Fig. 3)",
        group="activation",
    )
    return write_tables(results, out, "activations", ["activation", "latent_dim"], {**SSE, "psnr": ("PSNR (dB)", 2)})


SIGMAS = (0.01, 0.1, 1.0)
NEGATIVE, DESCENT = "z = -grad (a)", "z = z0 - grad (b)"


def origin(budget: Budget, out: Path) -> str:
    """Fig. 11: z0 ~ N(0, sigma^2) instead of the origin; the latent as the negative gradient (a) or one
    descent step from z0 (b). The two coincide at sigma = 0, which is trained once and shown in both."""
    rows = [Row("sigma=0", "gon", {}, {"parametrisation": NEGATIVE, "sigma": 0.0})]
    for keep_z0, name in ((False, NEGATIVE), (True, DESCENT)):
        rows += [
            Row(f"sigma={s}, {name}", "gon", {"z0_std": s, "keep_z0": keep_z0}, {"parametrisation": name, "sigma": s})
            for s in SIGMAS
        ]
    results, _ = run_rows(rows, budget, load_data(budget))
    results += [{**r, "parametrisation": DESCENT} for r in results if r["sigma"] == 0.0]
    plot_lines(
        [Panel("test error vs sigma of z0", results, "sigma", "sse", "symlog")],
        out / "origin.png",
        "Initialising z0 (Fig. 11)",
        group="parametrisation",
    )
    return write_tables(
        sorted(results, key=lambda r: (r["parametrisation"], r["sigma"])),
        out,
        "origin",
        ["parametrisation", "sigma"],
        SSE,
    )


WIDTHS, CAPACITY_LATENTS, SIZES = (4, 8, 16, 32), (4, 16, 32, 64), (8, 16, 32)
BASE = {"width": 16, "latent_dim": 32, "image_size": 32}


def capacity(budget: Budget, out: Path) -> str:
    """Fig. 10: GON against AE (same decoder) as width, depth and latent size change.

    Depth is the number of upsampling blocks, set by the training resolution (8, 16, 32 pixels:
    1, 2, 3 blocks), so compare per-pixel MSE of GON and AE at each depth, not across depths.
    """
    configs = {(w, 32, 32) for w in WIDTHS} | {(16, k, 32) for k in CAPACITY_LATENTS} | {(16, 32, s) for s in SIZES}
    rows = [
        Row(
            f"{name} w={w} k={k} {s}px",
            model,
            {"width": w, "latent_dim": k, "image_size": s},
            {"model": name, "width": w, "latent_dim": k, "image_size": s, "blocks": s.bit_length() - 3},
        )
        for w, k, s in sorted(configs, key=lambda c: (c[2], c[0], c[1]))
        for name, model in (("GON", "gon"), ("AE", "ae"))
    ]
    data = {s: load_data(budget, image_size=s) for s in SIZES}
    results, _ = run_rows(rows, budget, data)

    def sweep(vary: str) -> list[dict]:  # the runs where only ``vary`` departs from the paper's configuration
        return [r for r in results if all(r[k] == v for k, v in BASE.items() if k != vary)]

    panels = [
        Panel("width", sweep("width"), "width", "mse", "log"),
        Panel("depth (8, 16, 32 pixels)", sweep("image_size"), "blocks", "mse"),
        Panel("latent size", sweep("latent_dim"), "latent_dim", "mse", "log"),
    ]
    plot_lines(panels, out / "capacity.png", "GON vs AE on the same decoder (Fig. 10)", group="model")
    return write_tables(
        results,
        out,
        "capacity",
        ["model", "width", "latent_dim", "image_size"],
        {"parameters": ("parameters", 0), "mse": ("per-pixel MSE", 5), **SSE},
    )
