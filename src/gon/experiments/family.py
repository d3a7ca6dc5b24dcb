"""The gradient-origin family side by side (``gon reproduce gradient-family``): the paper's implicit GON, a learnt
origin, learnt (Meta-SGD) step sizes, functa's shift modulations, the functa recipe (3 steps), CAVIA and
gon-pytorch's configuration, at latent sizes 64 to 512, on one data pipeline and one network size.

Every row is an :class:`gon.models.ImplicitGON` trained for the same number of steps on the same images (equal
steps, not equal seconds: on a shared CPU a time budget buys a different number of steps on every run, so a seeded
run would no longer repeat; each row's seconds per step is reported beside its PSNR, so its cost is in the table).
Width and depth are the preset's for every row (gon-pytorch's and functa's own sizes are not used, so that only the
ingredients differ); recipes come from :data:`gon.models.registry.RECIPES`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from gon.data import load_dataset
from gon.experiments.common import Budget, Data, Row, run_rows
from gon.experiments.figures import Panel, plot_lines
from gon.experiments.tables import write_tables
from gon.metrics import _batches
from gon.models import per_image_sse
from gon.models.registry import RECIPES
from gon.sampling import eval_mode

LATENTS = (64, 128, 256, 512)
#: the network every row shares: the preset's; a recipe's own sizes are left out
SIZE_OPTIONS = ("hidden", "depth", "latent_dim")


def _recipe(name: str) -> dict:
    return {k: v for k, v in RECIPES[name].options.items() if k not in SIZE_OPTIONS}


def family_rows(latents: tuple[int, ...] = LATENTS) -> list[Row]:
    """Each ingredient at each latent size; columns ``ingredient`` and ``latent_dim``."""
    gon = _recipe("gon")
    ingredients = {
        "GON (paper)": gon,
        "+ learnt origin": {**gon, "learn_origin": True},
        "+ learnt step sizes": {**gon, "learn_origin": True, "learn_step_size": True},
        "shift modulations": {**gon, "latent_mode": "shift"},
        "functa (3 steps)": _recipe("functa"),
        "CAVIA": _recipe("cavia"),
        "gon-pytorch": _recipe("gon-pytorch"),
    }
    return [
        Row(f"{name}, k={k}", "implicit", {**options, "latent_dim": k}, {"ingredient": name, "latent_dim": k})
        for k in latents
        for name, options in ingredients.items()
    ]


def family_metrics(model, d: Data, budget: Budget) -> dict[str, float]:
    """Test reconstruction error on the whole test subset: SSE per image, PSNR of the mean MSE, and the mean of the
    per-image PSNRs (the figure functa and COIN++ report)."""
    images = d.test.images
    with eval_mode(model) as device:
        sse = torch.cat([per_image_sse(model.reconstruct(x), x).cpu() for (x,) in _batches([images], 256, device)])
    mse = sse / images[0].numel()
    mean_mse = mse.mean().item()
    return {
        "sse": sse.mean().item(),
        "mse": mean_mse,
        "psnr": 10 * math.log10(1 / mean_mse),
        "psnr_per_image": (10 * torch.log10(1 / mse.clamp_min(1e-12))).mean().item(),
    }


METRICS = {
    "parameters": ("parameters", 0),
    "psnr": ("PSNR (dB)", 2),
    "psnr_per_image": ("mean per-image PSNR (dB)", 2),
    "sse": ("test SSE / image", 2),
    "seconds_per_step": ("s / step", 3),
    "train_seconds": ("train s", 0),
}


def gradient_family(budget: Budget, out: Path) -> str:
    """Every ingredient x latent size (64 to 512, or ``--latent-dim``'s alone) on the budget's data at its native
    size (or ``--image-size``)."""
    kw = dict(data_dir=budget.data_dir, image_size=budget.image_size)
    data = Data(
        load_dataset(budget.dataset, "train", limit=budget.limit_train, **kw),
        load_dataset(budget.dataset, "test", limit=budget.test_size, **kw),
    )
    size = data.train.image_size
    latents = (budget.options["latent_dim"],) if "latent_dim" in budget.options else LATENTS  # --latent-dim: one
    name = f"{data.train.name} {size}x{size}, {len(data.train)} training / {len(data.test)} test images"
    budget = Budget(**{**budget.__dict__, "image_size": size})
    results: list[dict] = []
    for k in latents:  # one latent size at a time, the tables rewritten after each: a stopped run keeps its rows
        done, _ = run_rows(family_rows((k,)), budget, data, evaluate=family_metrics)
        for r in done:
            r["seconds_per_step"] = r["train_seconds"] / r["steps"]
        results += done
        table = _write(results, out, name, budget)
    return table


def _write(results: list[dict], out: Path, name: str, budget: Budget) -> str:
    """The table (CSV and markdown) and the PSNR-against-latent plot of the rows so far."""
    plot_lines(
        [
            Panel("test PSNR", results, "latent_dim", "psnr", "log"),
            Panel("seconds per training step", results, "latent_dim", "seconds_per_step", "log"),
        ],
        out / "gradient-family.png",
        f"The gradient-origin family, {name}, {results[0]['steps']} steps each",
        group="ingredient",
    )
    note = (
        f"{name}; every row {results[0]['steps']} steps of batch {budget.batch_size} (equal steps), the same "
        "network size; PSNR (dB) is 10 log10(1 / mean per-pixel MSE) over the test images."
    )
    return write_tables(results, out, "gradient-family", ["ingredient", "latent_dim"], METRICS, note)
