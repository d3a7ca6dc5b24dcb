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
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gon.core.errors import GonError, printable
from gon.storage.atomic import temp_sibling, write_text
from gon.storage.lock import LOCK_NAME, holder_of, run_lock


def default_run_dir(model: str, dataset: str) -> Path:
    return Path("runs") / f"{model}-{file_safe(dataset)}"


def file_safe(name: str) -> str:
    """A dataset name as part of a file name: ``folder:/data/photos`` -> ``folder-_data_photos``."""
    return name.replace(":", "-").replace("/", "_").replace("\\", "_")


def last_checkpoint(run: Path) -> Path:
    return run / "checkpoints" / "last.ckpt"


#: how a saved model's config.json says it is one (gon.models.pretrained writes it)
SAVED_MODEL_CONFIG, SAVED_MODEL_FORMAT = "config.json", "gon-pretrained"
#: the other files of a saved model: its weights and (when a run saved them) its latent statistics
SAVED_MODEL_WEIGHTS, SAVED_MODEL_LATENTS = "model.safetensors", "latents.safetensors"


def split_seed_of(settings: dict) -> int:
    """The seed a run's held-out split of folder:, lmdb:, audio: or volume: data was drawn with: its settings'
    split_seed, or for a run of an older gon, which split by --seed, its seed."""
    seed = settings.get("split_seed")
    return (settings.get("seed") or 0) if seed is None else seed


def is_saved_model(directory: Path) -> bool:
    """Whether ``directory`` holds a gon saved model (its config.json says gon's format)."""
    try:
        with (Path(directory) / SAVED_MODEL_CONFIG).open("rb") as f:
            return json.loads(f.read(1 << 20)).get("format") == SAVED_MODEL_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def is_gon_run(directory: Path) -> bool:
    """Whether ``directory`` is a run gon wrote: config.yaml beside checkpoints/, logs/ or metrics."""
    markers = ("checkpoints", "logs", "metrics.csv", "metrics.json")
    return (directory / "config.yaml").is_file() and any((directory / m).exists() for m in markers)


def _in_use(directory: Path) -> bool:
    return directory.is_dir() and any(directory.iterdir())


def check_run_dir(run: Path, resume: bool, overwrite: bool) -> None:
    """Refuse, before anything is touched, a run directory this session may not write."""
    if resume:
        if not last_checkpoint(run).is_file():
            raise GonError(f"--resume: no checkpoint to resume from at {last_checkpoint(run)}")
    elif run.exists() and (not run.is_dir() or _in_use(run)):
        if not overwrite:
            raise GonError(
                f"run directory {run} already exists; pass --resume to continue it or --overwrite to replace it"
            )
        if not run.is_dir() or not (is_gon_run(run) or is_saved_model(run)):
            raise GonError(
                f"--overwrite: {run} is not a gon run (config.yaml with checkpoints/ or metrics) nor a saved model; "
                "refusing to remove it"
            )
    if (holder := holder_of(run)) is not None:
        raise GonError(f"{run} is in use by gon {holder}; wait for it to finish or stop it first")


class Replacement:
    """This session's claim on a new run until its first step is done: an old run that ``--overwrite`` moved aside
    is removed then (``commit``); a failure or a signal before that (``restore``) removes what the session wrote
    and puts the old run back, so the directory is as it was (empty if it was, absent if it was)."""

    def __init__(self, aside: Path | None, fresh: bool = False):
        self.aside, self.fresh, self.existed = aside, fresh, False

    def commit(self) -> None:
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
        self.aside, self.fresh = None, False

    def restore(self, run: Path) -> None:
        if self.fresh:
            shutil.rmtree(run, ignore_errors=True)
            if self.existed:
                run.mkdir(exist_ok=True)  # (a directory gon cannot remove, e.g. read-only, stays)
        if self.aside is not None and self.aside.is_dir():
            os.rename(self.aside, run)
        self.aside, self.fresh = None, False


@contextmanager
def open_run(run: Path, resume: bool, overwrite: bool) -> Iterator[Replacement]:
    """Check, create and lock the run directory for this session (see :func:`check_run_dir` and :func:`claim`)."""
    check_run_dir(run, resume, overwrite)
    with claim(run, keep=resume) as replacement:
        yield replacement


@contextmanager
def claim(directory: Path, keep: bool) -> Iterator[Replacement]:
    """Create and lock a checked output ``directory`` for this session.

    Unless ``keep``, what it holds (an old run that ``--overwrite`` replaces) is moved aside
    (``.NAME.XXXX.replaced``), not deleted: the caller may commit the replacement early (once training has
    started), else it is committed when the block ends; any failure before that restores it.
    """
    replacement = Replacement(None)
    try:
        if not keep and _in_use(directory):
            with run_lock(directory, "replace"):
                replacement.aside = temp_sibling(directory, ".replaced")
                os.rename(directory, replacement.aside)
            (replacement.aside / LOCK_NAME).unlink(missing_ok=True)
        replacement.existed = directory.is_dir()  # an empty directory the user made stays
        directory.mkdir(parents=True, exist_ok=True)
        replacement.fresh = not keep  # from here on, a failure removes what this session wrote
    except OSError as e:
        replacement.restore(directory)
        raise GonError(f"cannot create output directory {directory}: {e.strerror or e}") from None
    try:
        with run_lock(directory):
            yield replacement
    except BaseException:
        replacement.restore(directory)
        raise
    replacement.commit()


def read_metrics(run: Path) -> list[dict[str, float]]:
    """All logged rows of a run, oldest session first; ``step`` N: measured at (after) the N-th optimiser step.

    A session resumed from a checkpoint at step s replaces the rows of earlier sessions from
    step s on (a crashed session may have logged steps past its last checkpoint).
    """
    rows: list[dict[str, float]] = []
    versions = sorted((run / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    for path in versions:
        new = read_metric_rows(path)
        for r in new:  # Lightning logs the N-th optimiser step (and what follows it) as step N - 1
            if "step" in r:
                r["step"] += 1
        if new:
            first = min(r.get("step", 0) for r in new)
            rows = [r for r in rows if r.get("step", 0) < first] + new
    return rows


def damaged(path: Path, where: str, why: str) -> None:
    """Say, on one line, which part of a run file gon could not use and carries on without."""
    print(f"gon: {printable(str(path))}{where}: {why}; carrying on without it", file=sys.stderr)


def read_metric_rows(path: Path) -> list[dict[str, float]]:
    """The rows of a metrics CSV (a session's log or RUN/metrics.csv), numbers by column: a row that is not numbers
    (a hand edit, a crash mid-line) is left out and named by its line; an unreadable file gives no rows."""
    rows = []
    try:
        with path.open(newline="", errors="replace") as f:
            reader = csv.DictReader(f)
            for row in reader:
                try:
                    if None in row or None in row.values():  # more or fewer fields than the header
                        raise ValueError("its number of fields differs from the header's")
                    rows.append({k: float(v) for k, v in row.items() if v != ""})
                except ValueError as e:
                    damaged(
                        path, f":{reader.line_num}", str(e).replace("could not convert string to float", "not a number")
                    )
    except (OSError, csv.Error) as e:
        damaged(path, "", getattr(e, "strerror", None) or str(e))
    return rows


def read_run_record(path: Path, what: str) -> dict:
    """A run's JSON or YAML record (metrics.json, provenance.json, config.yaml ...) for a command that only reports:
    {} when it is missing, or damaged (said on one line)."""
    from gon.core.validate import read_json_capped, read_yaml_capped

    if not path.is_file():
        return {}
    try:
        value = (read_yaml_capped if path.suffix in (".yaml", ".yml") else read_json_capped)(path, what)
    except GonError as e:
        damaged(path, "", str(e).removeprefix(f"{what} {path}").lstrip(": ") or "unreadable")
        return {}
    if not isinstance(value, dict):
        damaged(path, "", f"holds {type(value).__name__}, not a mapping")
        return {}
    return value


def write_metrics_csv(run: Path) -> Path:
    """RUN/metrics.csv: the merged rows of every session, one column per metric."""
    rows = read_metrics(run)
    keys = sorted({k for r in rows for k in r} - {"epoch", "step"})
    path = run / "metrics.csv"
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=["step", "epoch", *keys])
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (int(v) if k in ("step", "epoch") else v) for k, v in r.items()})
    return write_text(path, text.getvalue())
