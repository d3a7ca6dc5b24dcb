"""Crash-safe checkpoint files: atomic writes, loads that never run pickled code, pre-flight checks.

A checkpoint is written with :func:`gon.storage.atomic.atomic_write` (Lightning writes through
:class:`gon.training.checkpoint_io.AtomicCheckpointIO`): a process killed at any moment leaves
the previous checkpoint or the new one, never a truncated file; a killed writer leaves at most a
``.NAME.*.tmp`` file, removed at the next start.

Checkpoints are read with ``torch.load(weights_only=True)``: tensors, numbers, strings and plain
containers only. A pickle that would build any other object (and so could run code) is refused.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from gon.core.errors import GonError
from gon.storage.atomic import TEMP_SUFFIX, atomic_write, rust_readable  # noqa: F401 (TEMP_SUFFIX: re-exported for its users)

MIN_FREE_MARGIN = 64 << 20  # bytes for pictures, logs, the report and the saved model


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` a checkpoint dict atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda f: torch.save(checkpoint, f))


def read_checkpoint(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint dict without unpickling arbitrary objects; any problem is a GonError naming ``path``.
    ``mmap``: tensors are read only when used (for a look at its step or hyperparameters)."""
    path = Path(path)
    if not path.is_file():
        raise GonError(f"checkpoint {path} does not exist")
    try:
        with rust_readable(path) as name:  # mmap opens a UTF-8 name: a non-UTF-8 one through its /proc fd link
            checkpoint = torch.load(name, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as e:  # a refused global, a truncated zip, random bytes: the file is not a checkpoint
        if mmap and not zipfile.is_zipfile(path):  # mmap refuses torch's older format before reading it: the
            return read_checkpoint(path, map_location)  # plain read says what it holds (and refuses its code)
        culprit = re.search(r"GLOBAL (\S+)", str(e)) if isinstance(e, pickle.UnpicklingError) else None
        if culprit:  # weights_only refused a global: the file wants to build arbitrary objects
            raise GonError(
                f"refusing to load checkpoint {path}: it would call {culprit.group(1)}, which could run code"
            ) from None
        raise GonError(f"checkpoint {path} is not readable: {why_unreadable(path, e)}") from None
    if not isinstance(checkpoint, dict):
        raise GonError(f"checkpoint {path} does not hold a dictionary of training state")
    return checkpoint


def why_unreadable(path: Path, error: Exception) -> str:
    """Say in words why torch.load failed: torch's own messages (miniz, errno 22) do not name the usual cause."""
    size = path.stat().st_size
    if size == 0:
        return "the file is empty"
    with open(path, "rb") as f:
        zip_start = f.read(4) == b"PK\x03\x04"
    if zip_start and not zipfile.is_zipfile(path):  # torch.save writes a zip whose directory is at the end
        return f"truncated ({size:,} bytes, the end is missing: an interrupted copy or a full disk?)"
    if not zip_start:
        return "not a torch.save file (gon's checkpoints are zip archives)"
    return next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)


def checkpoint_step(path: str | Path) -> int | None:
    """The optimiser step a checkpoint was taken at, or None when it cannot be read."""
    try:
        return int(read_checkpoint(path).get("global_step", 0))
    except (GonError, TypeError, ValueError):
        return None


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete temporary files a killed writer left in ``folder`` (never a finished checkpoint)."""
    stale = [p for p in folder.glob(f".*{TEMP_SUFFIX}") if p.is_file()] if folder.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def estimate_checkpoint_bytes(parameters: int) -> int:
    """Weights plus Adam's two moments in float32, plus Lightning's bookkeeping."""
    return 3 * 4 * parameters + (256 << 10)


def check_output_dir(run: Path, need_bytes: int) -> None:
    """Before training: ``run`` (and run/checkpoints) can be written and its disk has ``need_bytes`` free.

    Writes and removes a probe file rather than asking ``os.access``, which says yes to root even
    on a read-only or immutable directory.
    """
    for folder in (run, run / "checkpoints"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".gon-write-probe.", suffix=TEMP_SUFFIX)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise GonError(f"output directory {folder} is not writable: {e.strerror or e}") from None
    remove_stale_temp_files(run / "checkpoints")
    free = shutil.disk_usage(run).free
    if free < need_bytes:
        raise GonError(
            f"not enough free space for the run in {run}: {free / 2**20:.1f} MiB free, "
            f"about {need_bytes / 2**20:.1f} MiB needed (checkpoints, pictures, saved model)"
        )


def run_space_needed(parameters: int) -> int:
    """Free bytes a run needs: last.ckpt, the periodic checkpoint and a temporary copy, plus a margin."""
    return 3 * estimate_checkpoint_bytes(parameters) + MIN_FREE_MARGIN
