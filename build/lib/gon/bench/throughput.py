"""Training throughput and peak memory: every registered model, the implicit GON's passes, the peer,
and data loading."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import torch

from gon.bench.measure import Case, optimiser_step, time_cases
from gon.bench.peer import import_peer, peer_step
from gon.core.errors import GonError
from gon.models.registry import MODELS, DataShape, build, image_size

#: the implicit GON configurations compared against each other: (name, ImplicitGON options)
IMPLICIT_PASSES = [
    ("naive (double backward)", {"origin_pass": "naive", "coord_fraction": 1.0}),
    ("shared origin", {"origin_pass": "shared", "coord_fraction": 1.0}),
    ("shared origin + Monte Carlo p=0.25", {"origin_pass": "shared", "coord_fraction": 0.25}),
]
#: codes of the GLO baseline in the models table: one per Fashion-MNIST training image
GLO_CODES = 60_000
#: (channels, size) of the implicit comparisons: Fashion-MNIST-like and CIFAR-10-like
IMPLICIT_SHAPES = [(1, 28), (3, 32)]


def _images(batch: int, channels: int, size: int, device: torch.device) -> torch.Tensor:
    """A fixed batch in [0, 1]: step time does not depend on pixel values."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(batch, channels, size, size, generator=generator).to(device)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_cases(batch: int, device: torch.device) -> tuple[list[Case], list[dict]]:
    """Every registered model at its paper configuration on 1-channel images (conv: 32x32, implicit: 28x28);
    and a row for each registered model that cannot be built that way. GLO holds a code per training
    image: a Fashion-MNIST-sized table of GLO_CODES (its parameter count includes them)."""
    cases, skipped = [], []
    for name, cls in MODELS.items():
        size = image_size(name, 28)  # conv models: 32x32, as the paper trains on 28x28 data
        torch.manual_seed(0)
        try:
            model = build(name, DataShape(channels=1, image_size=size, images=GLO_CODES)).to(device)
        except GonError as e:
            skipped.append({"group": "models", "name": name, "note": f"skipped: {e}"})
            continue
        x = _images(batch, 1, size, device)
        cases.append(
            Case("models", f"{name} ({cls.__name__}, {size}x{size}x1)", batch, optimiser_step(model, x), _params(model))
        )
    return cases, skipped


def implicit_cases(
    channels: int, size: int, batch: int, device: torch.device, peer: bool, log: Callable[[str], None]
) -> list[Case]:
    """The implicit GON (SIREN 4x256, latent 32) by each pass, and the peer at the same configuration."""
    group = f"implicit {size}x{size}x{channels}"
    x = _images(batch, channels, size, device)
    cases = []
    for name, options in IMPLICIT_PASSES:
        torch.manual_seed(0)
        model = build("implicit", DataShape(channels, size, batch), **options).to(device)
        cases.append(Case(group, name, batch, optimiser_step(model, x), _params(model)))
    if peer:
        try:
            import_peer()
            step, params = peer_step(channels, size, x)
            cases.append(Case(group, "peer: gon-pytorch 0.1.1", batch, step, params))
        except RuntimeError as e:
            log(f"peer skipped: {e}")
    return cases


def run_throughput(
    batch: int, repeats: int, device: torch.device, peer: bool = True, log: Callable[[str], None] = print
) -> list[dict]:
    """All throughput groups, each timed interleaved; rows carry ratios to their group's reference."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cases, skipped = model_cases(batch, device)
        log("== every model")
        rows += time_cases(cases, repeats, device, log=log)
        rows += skipped
        for channels, size in IMPLICIT_SHAPES:
            log(f"== implicit GON {size}x{size}x{channels}")
            group = time_cases(implicit_cases(channels, size, batch, device, peer, log), repeats, device, log=log)
            naive = group[0]
            peer_row = next((r for r in group if r["name"].startswith("peer")), None)
            for row in group:
                row["vs_naive"] = row["images_per_s"] / naive["images_per_s"]
                row["memory_vs_naive"] = (
                    (row["peak_mb"] / naive["peak_mb"]) if row["peak_mb"] and naive["peak_mb"] else None
                )
                if peer_row:
                    row["vs_peer"] = row["images_per_s"] / peer_row["images_per_s"]
            rows += group
    return rows


def run_data_loading(batch: int, batches: int, log: Callable[[str], None] = print) -> list[dict]:
    """Decoding Fashion-MNIST into memory, and iterating the training DataLoader exactly as ``gon fit`` builds it."""
    from gon.data import load_dataset
    from gon.training.config import FitConfig
    from gon.training.data import GonDataModule

    rows = []
    for size in (None, 32):
        started = time.perf_counter()
        data = load_dataset("fashion-mnist", "train", image_size=size)
        seconds = time.perf_counter() - started
        label = f"load_dataset fashion-mnist train ({'native 28x28' if size is None else 'resized to 32x32'})"
        rows.append({"name": label, "images": len(data), "seconds": seconds, "images_per_s": len(data) / seconds})
        log(f"  {label}: {seconds:.2f} s")
    module = GonDataModule(FitConfig(batch_size=batch), 32)
    module.setup()
    loader = iter(module.train_dataloader())
    next(loader)  # the first batch starts the iterator; not counted
    started, n = time.perf_counter(), 0
    for _ in range(batches):
        n += len(next(loader)[0])
    seconds = time.perf_counter() - started
    rows.append(
        {
            "name": f"gon fit's training DataLoader (batch {batch}, shuffled)",
            "images": n,
            "seconds": seconds,
            "images_per_s": n / seconds,
        }
    )
    log(f"  DataLoader: {n / seconds:.0f} images/s")
    return rows
