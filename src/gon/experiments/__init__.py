"""``gon reproduce``: one runner per experiment of the paper, each writing CSV + markdown tables and figures.

Each experiment has two presets: ``paper`` (the default: the paper's configuration and budget,
each setting cited) and ``cpu`` (the earlier CPU-sized one: gon's default models on a subset, in
minutes). Any setting can be overridden. ``run_experiment`` fills the preset, runs, and writes
OUT/settings.json (the budget, the configuration, the command and the wall-clock time) beside the tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from gon.core.errors import GonError
from gon.core.validate import read_json_capped
from gon.experiments import units
from gon.experiments.common import Budget, TrainedShare, Unfinished
from gon.experiments.convergence import convergence
from gon.experiments.family import gradient_family
from gon.experiments.output import SETTINGS, open_results
from gon.experiments.qualitative import fig4, fig9a, fig9b, slerp, superres
from gon.experiments.reconstruction import activations, capacity, generalisation, origin, steps, table1
from gon.experiments.tasks import classifier, conversion
from gon.experiments.units import first_difference
from gon.experiments.variational import table2
from gon.storage.atomic import write_text
from gon.storage.lock import holder_of

SETTINGS_LOCK = ".settings.lock"  # held briefly: the sweep's settings.json and its tables, one process at a time


@dataclass(frozen=True)
class Preset:
    """One configuration of an experiment: the model options every row starts from, its budget, and why."""

    budget: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # where the configuration comes from (paper, original script, or a measurement)


@dataclass(frozen=True)
class Experiment:
    run: Callable[[Budget, Path], str]
    summary: str
    presets: dict[str, Preset]
    units: bool = True  # its rows train as resumable units (run_rows): --resume, --shard and --merge apply

    @property
    def defaults(self) -> dict[str, Any]:
        """The default (paper) preset's budget."""
        return self.presets["paper"].budget


WHOLE = {"limit_train": None, "test_size": None}  # every training and test image
# (the tables' paper presets also measure their learning curves on every test image: curve_images 0)
# the implicit GONs of the figures (gon's depth counts sine layers: the input layer and 3 hidden ones)
TINY_SIREN = {"hidden": 32, "depth": 4, "latent_dim": 32}  # Fig. 4a: 4,321 weights (the paper counts 4,385)
SIREN = {"hidden": 256, "depth": 4, "latent_dim": 32}  # Sec. 4: "approximately 4 hidden layers of 256 units"
ORIGINAL = "lr 1e-4, batch 64 (the original GON.py / Variational-GON.py)"


def _cpu(budget: dict[str, Any], lr: float = 1e-3, **options: Any) -> Preset:
    """The CPU-sized configuration gon reproduce used before the paper presets: gon's default models (a figure's
    own model where the figure is about it), lr 1e-3 (1e-4 for SIRENs: at 1e-3 a 4x256 SIREN's reconstructions
    turned to noise)."""
    models = "the figure's model" if options else "gon's default models (latent 32)"
    return Preset({**budget, "lr": lr}, options, f"sized for a 2-core CPU in minutes; {models}")


def _ablation(epochs: int, seeds: int = 3, **options: Any) -> Preset:
    return Preset(
        {**WHOLE, "epochs": epochs, "seeds": seeds, "lr": 1e-4},
        options,
        f"{ORIGINAL}, GON.py's network (latent 32, width 16); the paper gives no budget for its figures: "
        f"{epochs} epochs chosen",
    )


EXPERIMENTS: dict[str, Experiment] = {
    "table1": Experiment(
        table1,
        "GON vs AE, TiedAE, detached / 10-step GONs and GLO: test reconstruction error",
        {
            "paper": Preset(
                {**WHOLE, "epochs": 500, "seeds": 3, "lr": 1e-4, "curve_images": 0},
                {"latent_dim": 256},
                f"Table 1 caption (500 epochs, 3 runs); {ORIGINAL}; latent 256: the paper does not state it, "
                "256 reproduces its scale and ordering (docs/results.md)",
            ),
            "cpu": _cpu({"limit_train": 4096, "epochs": 8, "seeds": 3, "test_size": 2000}),
        },
    ),
    "table2": Experiment(
        table2,
        "variational GON vs VAE: test ELBO in bits/dim (Bernoulli and 256-level discretised)",
        {
            "paper": Preset(
                {**WHOLE, "epochs": 1000, "seeds": 3, "lr": 1e-4, "curve_images": 0},
                {"latent_dim": 48, "width": 32, "activation": "relu"},
                "Table 2 caption (1000 epochs; CelebA 150); Variational-GON.py: latent 48, width 32, ReLU, "
                "lr 1e-4, batch 64",
            ),
            "cpu": _cpu({"limit_train": 4096, "epochs": 8, "seeds": 3, "test_size": 2000}),
        },
    ),
    "steps": Experiment(
        steps,
        "1 vs several jointly optimised latent steps, and detached (Fig. 2b)",
        {"paper": _ablation(10), "cpu": _cpu({"limit_train": 4096, "steps": 200, "seeds": 1, "test_size": 1000})},
    ),
    "generalisation": Experiment(
        generalisation,
        "train vs test error through training, GON vs AE (Fig. 2c, 16)",
        {"paper": _ablation(25), "cpu": _cpu({"limit_train": 1024, "steps": 480, "seeds": 2, "test_size": 1000})},
    ),
    "activations": Experiment(
        activations,
        "ELU, ReLU, SiLU, tanh, sine x latent sizes 8, 32, 128 (Fig. 3)",
        {"paper": _ablation(10), "cpu": _cpu({"limit_train": 4096, "steps": 150, "seeds": 1, "test_size": 1000})},
    ),
    "origin": Experiment(
        origin,
        "z0 ~ N(0, sigma^2): negative gradient vs a descent step from z0 (Fig. 11)",
        {"paper": _ablation(10), "cpu": _cpu({"limit_train": 4096, "steps": 150, "seeds": 2, "test_size": 1000})},
    ),
    "capacity": Experiment(
        capacity,
        "GON vs AE as width, depth and latent size change (Fig. 10, CIFAR-10 in the paper)",
        {"paper": _ablation(10), "cpu": _cpu({"limit_train": 4096, "steps": 150, "seeds": 1, "test_size": 1000})},
    ),
    "convergence": Experiment(
        convergence,
        "reconstructions after 1, 2, 5 ... 60 s of training (Fig. 8)",
        {
            "paper": Preset({"limit_train": 8192, "seeds": 1, "test_size": 512, "lr": 1e-4}, {}, ORIGINAL),
            "cpu": _cpu({"limit_train": 8192, "seeds": 1, "test_size": 512}),
        },
        units=False,  # (it trains by wall-clock time, which no checkpoint can resume exactly)
    ),
    "classifier": Experiment(
        classifier,
        "classifier GON (Eq. 13): test accuracy, 2-D latent scatter (Fig. 12)",
        {"paper": _ablation(10, 1), "cpu": _cpu({"limit_train": 4096, "steps": 300, "seeds": 1, "test_size": 2000})},
    ),
    "conversion": Experiment(
        conversion,
        "modality conversion: inpainting and 4x super-resolution vs an AE",
        {"paper": _ablation(10, 1), "cpu": _cpu({"limit_train": 4096, "steps": 300, "seeds": 1, "test_size": 1000})},
    ),
    "fig4": Experiment(
        fig4,
        "a 4,321-weight implicit GON (SIREN 3x32, latent 32) on MNIST: reconstructions (Fig. 4a)",
        {
            "paper": Preset(
                {"dataset": "mnist", **WHOLE, "test_size": 1000, "epochs": 10, "seeds": 1, "lr": 1e-4},
                TINY_SIREN,
                "Sec. 4.2 (SIREN of 3 hidden layers x 32 units, latent 32, MNIST); lr 1e-4; no budget given: 10 epochs",
            ),
            "cpu": _cpu(
                {"dataset": "mnist", "limit_train": 8192, "steps": 2000, "seeds": 1, "test_size": 256},
                lr=1e-4,
                **TINY_SIREN,
            ),
        },
    ),
    "superres": Experiment(
        superres,
        "an implicit GON trained at 32x32 rendered at 256x256 beside bicubic upscaling (Fig. 5, 17)",
        {
            "paper": Preset(
                {**WHOLE, "test_size": 1000, "steps": 3000, "seeds": 1, "lr": 1e-4},
                SIREN,
                "Sec. 4.2 (SIREN of 4 hidden layers x 256, latent 32); Fig. 6 caption: 2-10 GPU minutes: 3000 steps",
            ),
            "cpu": _cpu({"limit_train": 4096, "steps": 300, "seeds": 1, "test_size": 256}, lr=1e-4, **SIREN),
        },
    ),
    "slerp": Experiment(
        slerp,
        "slerps between the latents of pairs of test images, implicit GON (Fig. 6)",
        {
            "paper": Preset(
                {**WHOLE, "test_size": 1000, "steps": 3000, "seeds": 1, "lr": 1e-4},
                SIREN,
                "Sec. 4.2 (SIREN of 4 hidden layers x 256, latent 32); Fig. 6 caption: 2-10 GPU minutes: 3000 steps",
            ),
            "cpu": _cpu({"limit_train": 4096, "steps": 300, "seeds": 1, "test_size": 256}, lr=1e-4, **SIREN),
        },
    ),
    "fig9a": Experiment(
        fig9a,
        "a convolutional GON at 128x128 (LSUN Bedroom): reconstructions (Fig. 9a)",
        {
            "paper": Preset(
                {
                    "dataset": "lsun-bedroom",
                    "limit_train": 100000,
                    "test_size": 300,
                    "epochs": 5,
                    "seeds": 1,
                    "lr": 1e-4,
                },
                {},
                "Sec. 4.2 (LSUN Bedroom at 128x128, the conv GON scaled up by blocks); no budget given: 5 epochs "
                "of 100k pictures (the whole 3M do not fit in memory)",
            ),
            "cpu": _cpu({"dataset": "lsun-bedroom", "limit_train": 2048, "steps": 200, "seeds": 1, "test_size": 64}),
        },
    ),
    "fig9b": Experiment(
        fig9b,
        "a convolutional variational GON at 64x64 (CelebA): samples (Fig. 9b)",
        {
            "paper": Preset(
                {"dataset": "celeba", "limit_train": None, "test_size": 1000, "epochs": 150, "seeds": 1, "lr": 1e-4},
                {"latent_dim": 48, "width": 32, "activation": "relu"},
                "Sec. 4.2 (CelebA at 64x64); Table 2 caption: CelebA 150 epochs; Variational-GON.py's network",
            ),
            "cpu": _cpu({"dataset": "celeba", "limit_train": 2048, "steps": 200, "seeds": 1, "test_size": 64}),
        },
    ),
    "gradient-family": Experiment(
        gradient_family,
        "the implicit GON beside a learnt origin, Meta-SGD step sizes, shift modulations, functa, CAVIA and "
        "gon-pytorch, at latents 64-512 (test PSNR, parameters, s / step)",
        {
            "paper": Preset(
                {**WHOLE, "steps": 3000, "seeds": 1, "lr": 1e-4},
                {"hidden": 256, "depth": 4},
                "Sec. 4.2's SIREN (4 x 256), lr 1e-4, batch 64 and 3000 steps as the superres / slerp presets; "
                "recipes from gon fit --recipe (gon reproduce --list); the data's own size",
            ),
            "cpu": Preset(
                {**WHOLE, "steps": 200, "seeds": 1, "lr": 1e-3},
                {"hidden": 32, "depth": 4},
                "sized for a busy 2-core CPU: Fig. 4a's tiny SIREN (4 sine layers x 32), lr 1e-3, 200 steps; "
                "all test images",
            ),
        },
    ),
}


def describe(name: str, preset: str, batch_size: int = 64) -> str:
    """One preset of one experiment in words: its model options, budget (at ``batch_size``) and source."""
    p = EXPERIMENTS[name].presets[preset]
    options = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in p.options.items()) or "gon's defaults"
    shown = {k: "all" if v is None or (k == "curve_images" and v == 0) else v for k, v in p.budget.items()}
    budget = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in shown.items())
    return f"model {options}; {budget}; batch {batch_size}. Source: {p.source}"


def run_experiment(name: str, budget: Budget, command: str | None = None, overwrite: bool = False) -> Path:
    """Run experiment ``name`` at ``budget`` (its defaults filling the gaps); returns the output folder.

    ``command``: the command line that asked for it, recorded in OUT/settings.json. ``overwrite``: replace the
    results of an earlier run in OUT (:mod:`gon.experiments.output`). ``budget.resume``, ``shard`` and ``merge``
    join the sweep in OUT instead (:func:`join_sweep`): many processes, one after another or at once, each
    training the units no other holds.
    """
    if name not in EXPERIMENTS:
        raise GonError(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    experiment = EXPERIMENTS[name]
    if budget.preset not in experiment.presets:
        raise GonError(f"unknown preset {budget.preset!r}; choose from {', '.join(experiment.presets)}")
    joining = budget.resume or budget.shard is not None or budget.merge
    if joining and not experiment.units:
        raise GonError(f"{name} trains no resumable units: run it without --resume, --shard or --merge")
    preset = experiment.presets[budget.preset]
    budget = budget.with_defaults(**{"dataset": "fashion-mnist", **preset.budget}, options=preset.options)
    out = Path(budget.out or Path("results") / name)
    budget = replace(budget, out=str(out))
    record = {
        "experiment": name,
        "command": command,
        "wall_clock_seconds": None,  # (written at the start too: it marks OUT as gon reproduce's)
        "budget": {k: v for k, v in budget.__dict__.items() if k != "progress"},
        "sweep": budget.identity(),
        "configuration": describe(name, budget.preset, budget.batch_size),
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(budget.threads or threads)
    started = time.perf_counter()
    try:
        if joining:
            table = join_sweep(name, experiment, budget, out, record)
            if table is None:
                return out
        else:
            with open_results(out, overwrite) as replacement:
                session = new_session(record, budget)
                write_text(out / SETTINGS, json.dumps({**record, "sessions": []}, indent=2) + "\n")
                units.before_training.append(replacement.commit)  # from the first step on, OUT and its units stay
                try:
                    table = experiment.run(budget, out)
                finally:
                    units.before_training.remove(replacement.commit)
                    end_session(out, session)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    print(
        f"\n{name}: {experiment.summary}\n\n{table}\nwall clock {seconds / 60:.1f} min; tables, figures and "
        f"settings.json in {out}"
    )
    return out


def new_session(record: dict, budget: Budget) -> dict:
    return {"command": record["command"], "shard": budget.shard, "merge": budget.merge, "started": time.time()}


def end_session(out: Path, session: dict, budget: dict | None = None) -> None:
    """Add ``session`` (with its wall-clock seconds) to OUT/settings.json, under the sweep's lock; ``budget``: the
    budget the tables were just written at. ``wall_clock_seconds``: the sessions' seconds added up (for shards that
    ran at once, more than the time from the first start to the last end, ``span_seconds``)."""
    from filelock import FileLock

    session["seconds"] = round(time.time() - session["started"], 1)
    with FileLock(out / SETTINGS_LOCK, timeout=120):
        stored = read_json_capped(out / SETTINGS, "settings")
        sessions = stored.setdefault("sessions", [])
        sessions.append(session)
        stored["wall_clock_seconds"] = round(sum(s.get("seconds") or 0 for s in sessions), 1)
        stored["span_seconds"] = round(max(s["started"] + s["seconds"] for s in sessions) - sessions[0]["started"], 1)
        if budget is not None:
            stored["budget"] = budget  # the length the tables are at (--resume --epochs extends it)
        write_text(out / SETTINGS, json.dumps(stored, indent=2) + "\n")


def join_sweep(name: str, experiment: Experiment, budget: Budget, out: Path, record: dict) -> str | None:
    """Resume, shard or merge the sweep in ``out``; the tables' markdown once every unit is finished, else None.

    The sweep's settings.json is written by the first process and checked by every later one under a short lock
    (OUT/.settings.lock), so that shards started at once agree; each unit has its own lock while it trains. The
    tables are written under the same lock, from every finished unit (:func:`run_rows`'s "tables" phase), by
    whichever process finds the last unit finished. Each session is recorded in settings.json's ``sessions``.
    """
    from filelock import FileLock, Timeout

    if out.exists() and not out.is_dir():
        raise GonError(f"output folder {out} is a file; give a folder with --out")
    if (budget.resume or budget.merge) and not (out / SETTINGS).exists():
        flag = "--merge" if budget.merge else "--resume"
        raise GonError(f"{flag}: {out} holds no sweep of gon reproduce (no {SETTINGS}); start one without {flag}")
    holder = holder_of(out)
    if holder is not None:
        raise GonError(f"{out} is in use by gon {holder}, a run that does not share its units; wait for it to finish")
    lock = FileLock(out / SETTINGS_LOCK, timeout=120)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with lock:
            _check_or_start_sweep(name, out, record)
    except Timeout:
        raise GonError(f"{out}/{SETTINGS_LOCK} stayed locked for 2 minutes; is another gon reproduce stuck?") from None
    except OSError as e:
        raise GonError(f"cannot write the sweep's folder {out}: {e.strerror or e}") from None
    session, table, written = new_session(record, budget), None, False
    try:
        if not budget.merge:
            try:
                experiment.run(replace(budget, phase="train"), out)
            except TrainedShare:
                pass
        with lock:
            try:
                table = experiment.run(replace(budget, phase="tables"), out)
                written = True
            except Unfinished as left:
                print(
                    f"gon reproduce: this process's units are done; {left}. The tables are written when the last "
                    f"unit finishes, or by: gon reproduce {name} --merge --out {out}"
                )
    finally:
        end_session(out, session, record["budget"] if written else None)
    return table


def _check_or_start_sweep(name: str, out: Path, record: dict) -> None:
    """Write the sweep's settings.json, or refuse one of another experiment or other settings."""
    if not (out / SETTINGS).exists():
        if any(p.name != SETTINGS_LOCK for p in out.iterdir()):
            raise GonError(f"output folder {out} holds files but no sweep of gon reproduce; give another --out")
        write_text(out / SETTINGS, json.dumps({**record, "sessions": []}, indent=2) + "\n")
        return
    stored = read_json_capped(out / SETTINGS, "settings")
    if not isinstance(stored, dict) or stored.get("experiment") != name:
        found = stored.get("experiment") if isinstance(stored, dict) else None
        raise GonError(f"{out} holds a sweep of {found!r}, not {name!r}; give another --out")
    if "sweep" not in stored:
        raise GonError(f"{out} was written by a gon reproduce without resumable units; it cannot be resumed")
    difference = first_difference(stored["sweep"], record["sweep"])
    if difference is not None:
        raise GonError(
            f"{out} was run with other settings ({difference}); resume with the same settings or give another --out"
        )


__all__ = ["EXPERIMENTS", "Budget", "Experiment", "Preset", "describe", "run_experiment"]
