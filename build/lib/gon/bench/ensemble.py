"""Stacked against separate training steps (:class:`gon.training.ensemble.EnsembleStep`) for every model, M = 1, 3, 5.

One round trains M members one step each: *separate* is M :class:`gon.training.graphs.GraphedStep` calls, one per member
(what ``gon reproduce --ensemble off`` runs), *stacked* one :class:`~gon.training.ensemble.EnsembleStep` over all M.
Every member has its own seed and batch. The cases of one model run interleaved (:func:`gon.bench.measure.time_cases`),
eager everywhere and, on a CUDA device, graphed too; the ratio is separate / stacked time (above 1: stacking pays).
Beside the wall-clock medians each row has the median CPU time of the calling thread (``time.thread_time``): on a
CPU at one thread that is the work itself, which other processes on the machine do not inflate as they do the
wall clock; on a GPU it is the host's share (launches) of the step.

The models are the Table 1 and Table 2 rows at their paper presets (the sweeps ``--ensemble`` is for), then the
other registered models at their defaults. A model that cannot stack (:func:`gon.training.ensemble.stack_refusal`) has
its row say why.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable

import torch

from gon.bench.measure import Case, time_cases
from gon.bench.throughput import GLO_CODES
from gon.models.registry import MODELS, DataShape, build
from gon.training.ensemble import EnsembleStep, MemberRandom, stack_refusal
from gon.training.graphs import GraphedStep, TrainingAdam
from gon.training.loop import loss_arguments

MEMBERS = (1, 3, 5)
TABLE1 = {"latent_dim": 256}  # Table 1's paper preset
TABLE2 = {"latent_dim": 48, "width": 32, "activation": "relu"}  # Table 2's paper preset
TEN = {"steps": 10, "step_size": 0.1}


def configurations() -> list[tuple[str, str, dict]]:
    """(label, registry name, options): the Table 1 and 2 rows at the paper presets, then the other models."""
    rows = [
        ("GON (Table 1)", "gon", TABLE1),
        ("AE (Table 1)", "ae", TABLE1),
        ("TiedAE (Table 1)", "tied-ae", TABLE1),
        ("1 Step Detach (Table 1)", "gon", {**TABLE1, "detach": True}),
        ("10 Step Detach (Table 1)", "gon", {**TABLE1, **TEN, "detach": True}),
        ("10 Step (Table 1)", "gon", {**TABLE1, **TEN}),
        ("GLO (Table 1)", "glo", TABLE1),
        ("VGON (Table 2)", "vgon", TABLE2),
        ("VAE (Table 2)", "vae", TABLE2),
    ]
    covered = {name for _, name, _ in rows}
    return rows + [(name, name, {}) for name in MODELS if name not in covered]


def _member(name: str, options: dict, seed: int, device: torch.device):
    torch.manual_seed(seed)
    size = 28 if MODELS[name].any_grid or MODELS[name].renders_any_size else 32
    model = build(name, DataShape(channels=1, image_size=size, images=GLO_CODES), **options).to(device).train()
    return model, size


def _batch(seed: int, batch: int, size: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(1000 + seed)
    x = torch.rand(batch, 1, size, size, generator=g)
    return {"x": x.to(device), "index": torch.randperm(GLO_CODES, generator=g)[:batch].to(device)}


def _separate(name, options, m, batch, device, graphs: bool):
    steps = []
    for seed in range(m):
        model, size = _member(name, options, seed, device)
        opt = TrainingAdam(model.parameters(), lr=1e-4, capturable=graphs)
        step = GraphedStep(model, opt, graphs, log=None)
        steps.append((step, model, _batch(seed, batch, size, device)))

    def round_() -> None:
        for step, model, b in steps:
            step(b["x"], **loss_arguments(model, b))

    return round_, steps[0][0], sum(p.numel() for p in steps[0][1].parameters())


def _stacked(name, options, m, batch, device, graphs: bool):
    models, opts, randoms, batches = [], [], [], []
    for seed in range(m):
        model, size = _member(name, options, seed, device)
        models.append(model)
        opts.append(TrainingAdam(model.parameters(), lr=1e-4))
        randoms.append(MemberRandom.current(device))
        batches.append(_batch(seed, batch, size, device))
    ensemble = EnsembleStep(models, opts, randoms, graphs=graphs, log=None)
    return (lambda: ensemble.step(batches)), ensemble.graphed_step


class ThreadClock:
    """``step`` timed in the calling thread's CPU time too: ``times`` after ``skip`` warm-up calls."""

    def __init__(self, step: Callable[[], object], skip: int):
        self.step, self.skip, self.times = step, skip, []

    def __call__(self) -> None:
        started = time.thread_time()
        self.step()
        self.times.append(time.thread_time() - started)

    def median_ms(self, repeats: int) -> float:
        return 1000 * statistics.median(self.times[self.skip : self.skip + repeats])


def run_ensemble(
    members: tuple[int, ...], batch: int, repeats: int, device: torch.device, log: Callable[[str], None] = print
) -> list[dict]:
    """One row per (model, M, eager or graphed): separate and stacked ms per round of M member steps, the ratio."""
    modes = [False, True] if device.type == "cuda" else [False]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for label, name, options in configurations():
            refusal = stack_refusal(_member(name, options, 0, torch.device("cpu"))[0])
            if refusal is not None:
                rows.append({"name": label, "note": f"does not stack: {refusal}"})
                continue
            for graphs in modes:
                mode = "graphed" if graphs else "eager"
                for m in members:
                    separate, sep_step, params = _separate(name, options, m, batch, device, graphs)
                    stacked, stacked_step = _stacked(name, options, m, batch, device, graphs)
                    group, warmup = f"{label} M={m} {mode}", 2 if not graphs else 5
                    clocks = [ThreadClock(separate, warmup), ThreadClock(stacked, warmup)]
                    cases = [
                        Case(group, "separate", batch * m, clocks[0]),
                        Case(group, "stacked", batch * m, clocks[1]),
                    ]
                    sep, stk = time_cases(cases, repeats, device, warmup=warmup, log=None)
                    sep_cpu, stk_cpu = (clock.median_ms(repeats) for clock in clocks)
                    fallback = [s.fallback_reason for s in (sep_step, stacked_step) if graphs and not s.graphed]
                    row = {
                        "name": label,
                        "members": m,
                        "mode": mode,
                        "batch": batch,
                        "params": params,
                        "separate_ms": sep["step_ms"],
                        "stacked_ms": stk["step_ms"],
                        "speedup": sep["step_ms"] / stk["step_ms"],
                        "separate_cpu_ms": sep_cpu,
                        "stacked_cpu_ms": stk_cpu,
                        "cpu_speedup": sep_cpu / stk_cpu,
                        "separate_peak_mb": sep["peak_mb"],
                        "stacked_peak_mb": stk["peak_mb"],
                        "repeats": sep["repeats"],
                        "note": "; ".join(f"capture failed, eager: {r}" for r in fallback),
                    }
                    rows.append(row)
                    log(
                        f"  {label} M={m} {mode}: separate {row['separate_ms']:.1f} ms, stacked "
                        f"{row['stacked_ms']:.1f} ms, {row['speedup']:.2f}x; thread CPU {sep_cpu:.1f} / "
                        f"{stk_cpu:.1f} ms, {row['cpu_speedup']:.2f}x {row['note']}"
                    )
    return rows
