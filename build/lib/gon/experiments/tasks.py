"""Sec. 3.5: the classifier GON (Eq. 13, Fig. 12) and modality conversion (inpainting, super-resolution)."""

from __future__ import annotations

from pathlib import Path

from gon.experiments.common import Budget, Data, Row, load_data, run_rows
from gon.experiments.figures import image_rows, scatter_latents
from gon.experiments.tables import write_tables
from gon.metrics import classification_accuracy, reconstruction_metrics
from gon.models import SOURCES, degrade
from gon.sampling import eval_mode

SOURCE_NAMES = {"mask": "the image with its centre masked", "downsample": "the 4x downsampled image"}


# per-image summed squared error is ~10-30 against a cross-entropy of ~1: weighted 1, the reconstruction
# swamps the classifier (11% accuracy with a 2-D latent after 300 steps, against 47% on CE alone)
JOINT_WEIGHT = 0.1


def test_accuracy(model, d: Data, budget: Budget) -> dict[str, float]:
    images = d.test.images.to(budget.device)
    return {
        "accuracy": classification_accuracy(model, images, d.test.labels.to(budget.device)),
        **reconstruction_metrics(model, images),
    }


def classifier(budget: Budget, out: Path) -> str:
    """Test accuracy of a linear softmax on the gradient latent, trained on cross-entropy alone or jointly
    with reconstruction; with a 2-D latent, the test latents are drawn coloured by class (Fig. 12)."""
    rows = [
        Row(f"{name}, k={k}", "classifier", {"latent_dim": k, "recon_weight": w}, {"loss": name, "latent_dim": k})
        for k in (2, 32)
        for name, w in (("CE only", 0.0), ("CE + reconstruction", JOINT_WEIGHT))
    ]
    data = load_data(budget)

    def keep(row: Row, seed: int, model) -> None:
        if seed == 0 and model.latent_dim == 2:
            with eval_mode(model) as device:
                z = model.encode(data.test.images.to(device))
            name = "joint" if row.options["recon_weight"] else "ce"
            scatter_latents(
                z,
                data.test.labels,
                data.test.classes,
                out / f"classifier_latents_{name}.png",
                f"Test latents of the 2-D classifier GON, {row.columns['loss']} (Fig. 12)",
            )

    results, _ = run_rows(rows, budget, data, evaluate=test_accuracy, keep=keep)
    return write_tables(
        results,
        out,
        "classifier",
        ["loss", "latent_dim"],
        {"accuracy": ("test accuracy", 4), "sse": ("test SSE / image", 3), "train_seconds": ("train s", 1)},
    )


def conversion(budget: Budget, out: Path) -> str:
    """Inner loss on the source (masked centre / 4x downsampled image), outer loss on the full image; against
    an autoencoder from the source on the same decoder, and against the source itself."""
    rows = [
        Row(f"{name}, {source}", model, {"source": source}, {"source": source, "model": name})
        for source in SOURCES
        for name, model in (("GON", "conversion"), ("AE", "conversion-ae"))
    ]
    data = load_data(budget)
    fixed = data.test.subset(10).images
    pictures: dict[str, list] = {s: [("target", fixed), ("source", degrade(fixed, s))] for s in SOURCES}

    def keep(row: Row, seed: int, model) -> None:
        if seed == 0:
            with eval_mode(model) as device:
                pictures[row.columns["source"]].append((row.columns["model"], model.reconstruct(fixed.to(device))))

    results, _ = run_rows(rows, budget, data, keep=keep)
    for source in SOURCES:  # the error of doing nothing: the source as the answer
        sse = (degrade(data.test.images, source) - data.test.images).pow(2).flatten(1).sum(1).mean().item()
        results += [
            {
                "row": f"source as is, {source}",
                "source": source,
                "model": "source as is",
                "seed": seed,
                "parameters": 0,
                "sse": sse,
            }
            for seed in budget.seed_list()
        ]
        image_rows(
            pictures[source], out / f"conversion_{source}.png", f"Conversion from {SOURCE_NAMES[source]} (seed 0)"
        )
    results.sort(key=lambda r: (SOURCES.index(r["source"]), r["model"]))
    return write_tables(
        results,
        out,
        "conversion",
        ["source", "model"],
        {
            "parameters": ("parameters", 0),
            "sse": ("test SSE / image (full target)", 3),
            "psnr": ("PSNR (dB)", 2),
            "train_seconds": ("train s", 1),
        },
    )
