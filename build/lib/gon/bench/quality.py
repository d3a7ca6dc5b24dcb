"""Quality at equal wall-clock: train for a fixed number of seconds, then measure the test MSE.

Time-to-quality (the conv GON after 60 s, the implicit GON after 5 minutes) and the Monte Carlo
sweep (the implicit GON for p in {1, 0.5, 0.25, 0.1}, one or two pixel subsets per step, and the
naive pass as the reference) both use :func:`train_for_seconds`: a bare PyTorch loop over shuffled
Fashion-MNIST training batches (``gon fit`` runs the same step; see overhead.py for what Lightning
adds), then :func:`gon.metrics.reconstruction_metrics` on the test set, always on the full grid.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from gon.data import load_dataset
from gon.metrics import reconstruction_metrics
from gon.models import GradientOriginModel
from gon.models.registry import DataShape, build
from gon.training.loop import shuffled_batches, train_loop, training_step

FRACTIONS = (1.0, 0.5, 0.25, 0.1)
SAMPLINGS = ("same", "independent")


def train_for_seconds(
    model: GradientOriginModel,
    images: torch.Tensor,
    seconds: float,
    batch: int,
    lr: float,
    device: torch.device,
    seed: int = 0,
) -> dict:
    """Adam steps on shuffled batches of ``images`` until ``seconds`` of wall-clock have passed."""
    model.train()
    step = training_step(model, lr, device, cuda_graphs=False, log=None)  # eager: the figures measured so far
    batches = shuffled_batches(images, None, batch, torch.Generator().manual_seed(seed), device)
    steps, elapsed = train_loop(step, batches, seconds=seconds)
    return {"steps": steps, "train_seconds": elapsed, "images_per_s": steps * batch / elapsed}


def evaluate(model: GradientOriginModel, test: torch.Tensor, device: torch.device) -> dict:
    metrics = reconstruction_metrics(model.to(device), test)
    return {"test_mse": metrics["mse"], "test_psnr": metrics["psnr"], "test_images": len(test)}


def _run(
    name: str,
    model: GradientOriginModel,
    train: torch.Tensor,
    test: torch.Tensor,
    seconds: float,
    batch: int,
    lr: float,
    device: torch.device,
    log: Callable[[str], None],
    seed: int = 0,
    **extra,
) -> dict:
    log(f"  {name}: training for {seconds:g} s")
    row = {"name": name, "seconds_budget": seconds, "seed": seed, **extra}
    row.update(train_for_seconds(model.to(device), train, seconds, batch, lr, device, seed))
    row.update(evaluate(model, test, device))
    log(f"  {name}: {row['steps']} steps, test MSE {row['test_mse']:.5f}")
    return row


def _shape(images: torch.Tensor) -> DataShape:
    """What a model is built for: the channels and size of training images [N, C, H, W]."""
    return DataShape(channels=images.shape[1], image_size=images.shape[-1], images=len(images))


def _fashion(image_size: int | None, test_images: int) -> tuple[torch.Tensor, torch.Tensor]:
    train = load_dataset("fashion-mnist", "train", image_size=image_size).images
    test = load_dataset("fashion-mnist", "test", image_size=image_size, limit=test_images).images
    return train, test


def run_time_to_quality(
    conv_seconds: float,
    implicit_seconds: float,
    batch: int,
    lr: float,
    test_images: int,
    device: torch.device,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Test MSE of the conv GON (32x32) and the implicit GON (28x28, defaults) after a wall-clock budget each."""
    rows = []
    torch.manual_seed(0)
    train, test = _fashion(32, test_images)
    conv = build("gon", _shape(train))
    rows.append(_run("conv GON (gon, 32x32x1)", conv, train, test, conv_seconds, batch, lr, device, log))
    torch.manual_seed(0)
    train, test = _fashion(None, test_images)
    implicit = build("implicit", _shape(train))
    rows.append(
        _run("implicit GON (defaults, 28x28x1)", implicit, train, test, implicit_seconds, batch, lr, device, log)
    )
    return rows


def run_monte_carlo_sweep(
    seconds: float,
    batch: int,
    lr: float,
    test_images: int,
    device: torch.device,
    fractions=FRACTIONS,
    samplings=SAMPLINGS,
    naive: bool = True,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """The implicit GON at equal wall-clock for each coordinate fraction p and subset sampling (and the naive pass).

    ``seed`` sets the initial weights, the batches and the pixel subsets: repeat the sweep with
    several seeds to see how far one 300 s run's test MSE is from the next."""
    train, test = _fashion(None, test_images)
    configs = [("naive pass, p=1", {"origin_pass": "naive"})] if naive else []
    for p in fractions:
        for sampling in ("same",) if p >= 1 else samplings:
            label = f"shared origin, p={p:g}" + (
                "" if p >= 1 else f", {sampling} subset{'s' if sampling != 'same' else ''}"
            )
            configs.append((label, {"coord_fraction": p, "coord_sampling": sampling}))
    rows = []
    for label, options in configs:
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = build("implicit", _shape(train), **options)
        rows.append(_run(label, model, train, test, seconds, batch, lr, device, log, seed, options=options))
    return rows
