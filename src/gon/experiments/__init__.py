"""``gon reproduce``: one runner per experiment of the paper, each writing CSV + markdown tables and figures.

Each experiment has a default budget (training subset, steps or epochs, seeds, test images)
sized for a CPU; any of it can be overridden. ``run_experiment`` fills the defaults, runs,
and writes OUT/settings.json (the budget, the command and the wall-clock time) beside the tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gon.errors import GonError
from gon.experiments.common import Budget
from gon.experiments.convergence import convergence
from gon.experiments.reconstruction import activations, capacity, generalisation, origin, steps, table1
from gon.experiments.tasks import classifier, conversion
from gon.experiments.variational import table2


@dataclass(frozen=True)
class Experiment:
    run: Callable[[Budget, Path], str]
    summary: str
    defaults: dict[str, Any] = field(default_factory=dict)


EXPERIMENTS: dict[str, Experiment] = {
    "table1": Experiment(
        table1,
        "GON vs AE, TiedAE, detached / 10-step GONs and GLO: test reconstruction error",
        {"limit_train": 4096, "epochs": 8, "seeds": 3, "test_size": 2000},
    ),
    "table2": Experiment(
        table2,
        "variational GON vs VAE: test ELBO in bits/dim",
        {"limit_train": 4096, "epochs": 8, "seeds": 3, "test_size": 2000},
    ),
    "steps": Experiment(
        steps,
        "1 vs several jointly optimised latent steps, and detached (Fig. 2b)",
        {"limit_train": 4096, "steps": 200, "seeds": 1, "test_size": 1000},
    ),
    "generalisation": Experiment(
        generalisation,
        "train vs test error through training, GON vs AE (Fig. 2c, 16)",
        {"limit_train": 1024, "steps": 480, "seeds": 2, "test_size": 1000},
    ),
    "activations": Experiment(
        activations,
        "ELU, ReLU, SiLU, tanh, sine x latent sizes 8, 32, 128 (Fig. 3)",
        {"limit_train": 4096, "steps": 150, "seeds": 1, "test_size": 1000},
    ),
    "origin": Experiment(
        origin,
        "z0 ~ N(0, sigma^2): negative gradient vs a descent step from z0 (Fig. 11)",
        {"limit_train": 4096, "steps": 150, "seeds": 2, "test_size": 1000},
    ),
    "capacity": Experiment(
        capacity,
        "GON vs AE as width, depth and latent size change (Fig. 10)",
        {"limit_train": 4096, "steps": 150, "seeds": 1, "test_size": 1000},
    ),
    "convergence": Experiment(
        convergence,
        "reconstructions after 1, 2, 5 ... 60 s of training (Fig. 8)",
        {"limit_train": 8192, "seeds": 1, "test_size": 512},
    ),
    "classifier": Experiment(
        classifier,
        "classifier GON (Eq. 13): test accuracy, 2-D latent scatter (Fig. 12)",
        {"limit_train": 4096, "steps": 300, "seeds": 1, "test_size": 2000},
    ),
    "conversion": Experiment(
        conversion,
        "modality conversion: inpainting and 4x super-resolution vs an AE",
        {"limit_train": 4096, "steps": 300, "seeds": 1, "test_size": 1000},
    ),
}


def run_experiment(name: str, budget: Budget, command: str | None = None) -> Path:
    """Run experiment ``name`` at ``budget`` (its defaults filling the gaps); returns the output folder.

    ``command``: the command line that asked for it, recorded in OUT/settings.json.
    """
    if name not in EXPERIMENTS:
        raise GonError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    experiment = EXPERIMENTS[name]
    budget = budget.with_defaults(**experiment.defaults)
    out = Path(budget.out or Path("results") / name)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GonError(f"cannot create output folder {out}: {e.strerror}") from None
    threads = torch.get_num_threads()
    torch.set_num_threads(budget.threads or threads)
    started = time.perf_counter()
    try:
        table = experiment.run(budget, out)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    record = {
        "experiment": name,
        "command": command,
        "wall_clock_seconds": round(seconds, 1),
        "budget": {k: v for k, v in budget.__dict__.items() if k != "progress"},
    }
    (out / "settings.json").write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"\n{name}: {experiment.summary}\n\n{table}\nwall clock {seconds / 60:.1f} min; tables, figures and "
        f"settings.json in {out}"
    )
    return out


__all__ = ["EXPERIMENTS", "Budget", "Experiment", "run_experiment"]
