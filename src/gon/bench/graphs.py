"""Eager against CUDA-graphed training steps (:class:`gon.training.graphs.GraphedStep`), for every model and the
implicit GON's passes, at batch 64 and 512.

Each model is built twice from the same seed: one trains with the eager step users had before graphs
(Adam, ``loss.backward()``), the other replays its step as one CUDA graph. Both run interleaved on a
fixed batch (:func:`gon.bench.measure.time_cases`); the ratio is the graphed step's speed-up. A model
whose capture fails keeps its eager figure and says why. On a machine without CUDA the section
returns one "skipped: no CUDA device" row per model and batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from gon.bench.measure import Case, optimiser_step, time_cases
from gon.bench.throughput import GLO_CODES, IMPLICIT_PASSES
from gon.models import ImplicitGON
from gon.models.registry import MODELS
from gon.training.graphs import GraphedStep, TrainingAdam


def configurations() -> list[tuple[str, str, dict]]:
    """(label, registry name, options): every registered model, then the implicit GON by pass."""
    rows = [(name, name, {}) for name in MODELS]
    return rows + [(f"implicit: {label}", "implicit", options) for label, options in IMPLICIT_PASSES]


def _model(name: str, options: dict, device: torch.device):
    cls = MODELS[name]
    size = 28 if cls is ImplicitGON else 32
    extra = {"num_images": GLO_CODES} if "index" in getattr(cls, "batch_fields", ()) else {}
    torch.manual_seed(0)
    return cls(channels=1, image_size=size, **extra, **options).to(device), size


def _graphed_step(model, x: torch.Tensor) -> GraphedStep:
    """The model's step on x as a graph (a failed capture is in the row's note, not logged)."""
    return GraphedStep(model.train(), TrainingAdam(model.parameters(), lr=1e-4, capturable=True), True, log=None)


def run_graphs(
    batches: tuple[int, ...], repeats: int, device: torch.device, log: Callable[[str], None] = print
) -> list[dict]:
    """One row per (model, batch): eager and graphed ms/step, the speed-up, and any fallback reason."""
    if device.type != "cuda":
        return [
            {"name": label, "batch": b, "note": "skipped: no CUDA device"}
            for b in batches
            for label, *_ in configurations()
        ]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for batch in batches:
            log(f"== batch {batch}")
            pairs = []
            for label, name, options in configurations():
                eager_model, size = _model(name, options, device)
                graphed_model, _ = _model(name, options, device)
                x = torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(0)).to(device)
                step = _graphed_step(graphed_model, x)
                eager = Case(f"batch {batch}", f"{label} eager", batch, optimiser_step(eager_model, x))
                graphed = Case(f"batch {batch}", f"{label} graphed", batch, lambda step=step, x=x: step(x))
                pairs.append((eager, graphed, label, step))
            # warm-up rounds: the graphed step's first call warms up (3 steps) and captures
            timed = time_cases([c for pair in pairs for c in pair[:2]], repeats, device, warmup=5, log=log)
            for i, (_, _, label, step) in enumerate(pairs):
                eager, graphed = timed[2 * i], timed[2 * i + 1]
                rows.append(
                    {
                        "name": label,
                        "batch": batch,
                        "eager_step_ms": eager["step_ms"],
                        "graphed_step_ms": graphed["step_ms"],
                        "speedup": eager["step_ms"] / graphed["step_ms"],
                        "graphed": step.graphed,
                        "eager_peak_mb": eager["peak_mb"],
                        "graphed_peak_mb": graphed["peak_mb"],
                        "repeats": eager["repeats"],
                        "note": "" if step.graphed else f"capture failed, eager: {step.fallback_reason}",
                    }
                )
                log(f"  {label} batch {batch}: {rows[-1]['speedup']:.2f}x {rows[-1]['note']}")
    return rows
