"""The run directory: where a training run keeps everything, and how it is read back.

RUN/config.yaml          resolved settings
RUN/metrics.csv          every logged metric by step, all sessions of the run merged
RUN/logs/version_K/      Lightning's CSV log of session K (a --resume starts a new one)
RUN/checkpoints/         last.ckpt and the newest periodic checkpoint
RUN/pictures/            test reconstructions at intervals
RUN/recon.png, RUN/metrics.json   the final reconstructions and test figures
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from gon.errors import GonError


def default_run_dir(model: str, dataset: str) -> Path:
    return Path("runs") / f"{model}-{dataset.replace(':', '-').replace('/', '_')}"


def last_checkpoint(run: Path) -> Path:
    return run / "checkpoints" / "last.ckpt"


def prepare_run_dir(run: Path, resume: bool, overwrite: bool) -> Path:
    """Create (or check) the run directory so that nothing the user has is overwritten by accident."""
    if resume:
        if not last_checkpoint(run).is_file():
            raise GonError(f"--resume: no checkpoint to resume from at {last_checkpoint(run)}")
    elif run.exists() and (not run.is_dir() or any(run.iterdir())):
        if not overwrite:
            raise GonError(
                f"run directory {run} already exists; pass --resume to continue it or --overwrite to replace it"
            )
        shutil.rmtree(run) if run.is_dir() else run.unlink()
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GonError(f"cannot create run directory {run}: {e.strerror}") from None
    return run


def read_metrics(run: Path) -> list[dict[str, float]]:
    """All logged rows of a run, oldest session first.

    A session resumed from a checkpoint at step s replaces the rows of earlier sessions from
    step s on (a crashed session may have logged steps past its last checkpoint).
    """
    rows: list[dict[str, float]] = []
    versions = sorted((run / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    for path in versions:
        with path.open(newline="") as f:
            new = [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
        if new:
            first = min(r.get("step", 0) for r in new)
            rows = [r for r in rows if r.get("step", 0) < first] + new
    return rows


def write_metrics_csv(run: Path) -> Path:
    """RUN/metrics.csv: the merged rows of every session, one column per metric."""
    rows = read_metrics(run)
    keys = sorted({k for r in rows for k in r} - {"epoch", "step"})
    path = run / "metrics.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "epoch", *keys])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (int(v) if k in ("step", "epoch") else v) for k, v in r.items()})
    return path
