"""Resumable sweep units: every (row, seed) of a ``gon reproduce`` run lives in its own folder under OUT.

OUT/units/ROW-seedK/
    unit.json    what the unit is (row, model options, seed, data, budget): a resumed or merged unit must match
    state.pt     its checkpoint, written atomically every N steps, at a stop and at the end: the model, Adam,
                 the random generators, the step reached (the data order is replayed from the seed) and the
                 curve so far. Loaded with ``weights_only=True``: tensors, numbers and strings, no pickled code
    result.json  its final figures, written once it has trained all its steps (extended runs rewrite it)
    gon.lock     while a process trains it (:func:`gon.lock.run_lock`): two processes never share a unit

A unit killed at any moment resumes from its last checkpoint and ends bitwise where an uninterrupted run ends
(on a CPU with a fixed thread count), because everything a step depends on is in the checkpoint or replayed.
"""

from __future__ import annotations

import json
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gon.core.errors import GonError, Stopped
from gon.core.validate import read_json_capped
from gon.storage.atomic import atomic_write, write_text

UNITS = "units"
IDENTITY, STATE, RESULT = "unit.json", "state.pt", "result.json"
CHECKPOINT_EVERY = 500  # steps between a unit's checkpoints (also at every stop and at the end)
#: called once before a unit's first step: gon reproduce commits its output folder then (an --overwrite's old
#: results are removed, and a stop from then on keeps the units' checkpoints instead of removing the new folder)
before_training: list = []


def slug(label: str) -> str:
    """A row label as a folder name: ``"1 Step Detach"`` -> ``1-step-detach``."""
    return re.sub(r"[^a-z0-9.]+", "-", label.lower()).strip("-") or "row"


@dataclass
class UnitFolder:
    """The files of one unit; ``identity`` is what the unit is (compared on resume and merge)."""

    path: Path
    identity: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    def check_identity(self) -> None:
        """Write unit.json for a new unit; for an existing one, refuse a different unit in the same folder."""
        file = self.path / IDENTITY
        if not file.exists():
            write_text(file, json.dumps(self.identity, indent=2, sort_keys=True) + "\n")
            return
        stored = read_json_capped(file, "unit settings")
        difference = first_difference(stored, self.identity)
        if difference is not None:
            raise GonError(
                f"{file}: this unit was run with other settings ({difference}); resume with the settings it was "
                "started with, or give another --out"
            )

    # -- checkpoint ------------------------------------------------------------------------
    def save_state(self, state: dict[str, Any]) -> None:
        atomic_write(self.path / STATE, lambda f: torch.save({**state, "identity": self.identity}, f))

    def load_state(self) -> dict[str, Any] | None:
        """The unit's checkpoint, checked: every key there, of its type, and made for this unit (not copied from
        another folder); None when there is none."""
        path = self.path / STATE
        if not path.exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a damaged or foreign file: say which, never run its contents
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise GonError(
                f"{path}: not a readable unit checkpoint ({reason}); remove {self.path} to train that unit anew"
            ) from None
        kinds = {"step": int, "model": dict, "optimizer": dict, "rng": dict, "points": list, "seconds": float}
        wrong = [k for k, kind in kinds.items() if not isinstance(state, dict) or not isinstance(state.get(k), kind)]
        if wrong:
            raise GonError(
                f"{path}: not a unit checkpoint of gon reproduce (no valid {wrong[0]!r}); remove {self.path} to "
                "train that unit anew"
            )
        difference = first_difference(state.get("identity"), self.identity)
        if difference is not None:
            raise GonError(f"{path}: this checkpoint belongs to another unit ({difference}); remove it")
        return state

    # -- result ----------------------------------------------------------------------------
    def load_result(self) -> dict[str, Any] | None:
        path = self.path / RESULT
        if not path.exists():
            return None
        record = read_json_capped(path, "unit result")
        ok = isinstance(record, dict) and isinstance(record.get("result"), dict)
        if not ok or not isinstance(record.get("points"), list) or not isinstance(record["result"].get("steps"), int):
            raise GonError(f"{path}: not a unit result of gon reproduce; remove it to evaluate the unit again")
        return record

    def save_result(self, result: dict[str, Any], points: list[dict]) -> None:
        write_text(self.path / RESULT, json.dumps({"result": result, "points": points}, indent=2) + "\n")


def first_difference(stored: Any, wanted: Any, where: str = "") -> str | None:
    """The first setting where two identities differ, in words (``lr 0.0001, not 0.001``), or None."""
    if isinstance(stored, dict) and isinstance(wanted, dict):
        for key in sorted(set(stored) | set(wanted), key=str):
            name = f"{where}.{key}" if where else str(key)
            if key not in stored or key not in wanted:
                return f"{name} {'unset' if key not in stored else stored[key]!r} there, " + (
                    f"{wanted[key]!r} here" if key in wanted else "unset here"
                )
            found = first_difference(stored[key], wanted[key], name)
            if found is not None:
                return found
        return None
    if isinstance(stored, list) and isinstance(wanted, (list, tuple)):
        stored, wanted = stored, list(wanted)
    if stored != wanted:
        return f"{where} {stored!r} there, {wanted!r} here"
    return None


def rng_state(device: str) -> dict[str, Any]:
    """The random generators a training step on ``device`` draws from: the CPU's, and the training GPU's."""
    state = {"cpu": torch.get_rng_state()}
    if torch.device(device).type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(torch.device(device))
    return state


def set_rng_state(state: dict[str, Any], device: str) -> None:
    torch.set_rng_state(state["cpu"])
    if torch.device(device).type == "cuda":
        if "cuda" not in state:
            raise GonError("this unit was checkpointed on a CPU: resume it with --device cpu (its random draws differ)")
        torch.cuda.set_rng_state(state["cuda"], torch.device(device))
    elif "cuda" in state:
        raise GonError("this unit was checkpointed on a GPU: resume it with --device cuda (its random draws differ)")


def forked_rng(device: str):
    """A block whose random draws leave the training's generators (CPU and the training GPU's) where they were."""
    gpu = torch.device(device)
    return torch.random.fork_rng(devices=[gpu] if gpu.type == "cuda" else [])


# -- stops ----------------------------------------------------------------------------------
class StopRequest:
    """SIGINT / SIGTERM while units train: noted here, acted on between steps (a checkpoint, then a stop).

    Raising at the signal itself (gon's usual handler) could leave a step half-applied, so the loop asks
    :attr:`requested` after each step instead. A second signal stops at once, as gon does elsewhere.
    ``shared``: a multiprocessing Event that the processes of one sweep (the parent and its --jobs workers)
    set and read together, so that one stop reaches every unit, including those not started yet.
    """

    def __init__(self, shared: Any = None) -> None:
        self.signum: int | None = None
        self.shared = shared

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise Stopped(signum)
        self.signum = signum
        if self.shared is not None:
            self.shared.set()

    @property
    def requested(self) -> bool:
        return self.signum is not None or (self.shared is not None and self.shared.is_set())


@contextmanager
def deferred_stops(shared: Any = None) -> Iterator[StopRequest]:
    """For the ``with`` block, SIGINT and SIGTERM only set the returned request (in the main thread)."""
    request = StopRequest(shared)
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
