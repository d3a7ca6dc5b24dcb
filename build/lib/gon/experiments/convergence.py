"""Fig. 8: how fast a GON learns: reconstructions at fixed wall-clock times of training, beside an AE's.

Training time is measured around the optimiser steps only (the snapshots pause the clock), so
the times are those of the training itself on this machine; ``--steps`` or ``--epochs`` cap a run.
"""

from __future__ import annotations

from pathlib import Path

from gon.experiments.common import (
    CURVE_IMAGES,
    Budget,
    Row,
    load_data,
    make_model,
    network_parameters,
    progress_bar,
    train,
)
from gon.experiments.figures import image_rows
from gon.experiments.tables import write_tables
from gon.metrics import reconstruction_metrics
from gon.sampling import eval_mode

TIMES = (1, 2, 5, 10, 20, 30, 60)  # seconds of training at which to look
MAX_STEPS = 1_000_000  # the clock, not a step count, ends a run unless --steps is given


def convergence(budget: Budget, out: Path) -> str:
    """Snapshots of 8 test reconstructions and the test error after 1, 2, 5, ... 60 s of training."""
    data = load_data(budget)
    fixed = data.test.subset(8).images.to(budget.device)
    probe = data.test.subset(CURVE_IMAGES).images.to(budget.device)
    rows, results, strip = [Row("GON", "gon"), Row("AE", "ae")], [], [("test images", fixed)]
    seeds = budget.seed_list()
    with progress_bar(len(rows) * len(seeds) * TIMES[-1], budget, unit="s") as bar:
        for row in rows:
            for seed in seeds:
                bar.set_description(f"{row.label} (seed {seed})")
                model = make_model(row, data, seed, budget)
                pending, shown = list(TIMES), [0]  # whole seconds already shown on the bar

                def snapshot(step: int, seconds: float, label: str, row=row, seed=seed, model=model) -> None:
                    results.append(
                        {
                            "row": row.label,
                            "seed": seed,
                            "seconds": label,
                            "steps": step,
                            "parameters": network_parameters(model),
                            **reconstruction_metrics(model, probe),
                        }
                    )
                    if seed == 0:
                        with eval_mode(model):
                            strip.append((f"{row.label} {label}", model.reconstruct(fixed)))

                def on_step(step: int, seconds: float) -> bool:
                    bar.update(min(int(seconds), TIMES[-1]) - shown[0])
                    shown[0] = min(int(seconds), TIMES[-1])
                    while pending and seconds >= pending[0]:
                        snapshot(step, seconds, f"{pending.pop(0)} s")
                    return not pending

                cap = budget.train_steps(len(data.train)) if budget.steps or budget.epochs else MAX_STEPS
                seconds = train(model, data.train, budget, seed, cap, on_step)
                if pending:  # stopped by --steps / --epochs before the last time point
                    snapshot(cap, seconds, f"{seconds:.1f} s (end)")
    image_rows(strip, out / "convergence.png", "Test reconstructions after t seconds of training (seed 0)")
    return write_tables(
        results,
        out,
        "convergence",
        ["row", "seconds"],
        {"steps": ("steps", 0), "sse": ("test SSE / image", 3)},
        f"Test error on {len(probe)} test images (a seeded, stratified choice).",
    )
