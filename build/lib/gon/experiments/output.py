"""``gon reproduce``'s output folder, by ``gon fit``'s rules: earlier results are never replaced by accident.

A folder that holds files is refused unless ``--overwrite`` is given, and then only when gon reproduce wrote
it (its settings.json says so). The old results are moved aside while the new ones are made, put back when the
run fails or is stopped, and removed once it has finished. ``OUT/gon.lock`` keeps a second run out meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gon.core.errors import GonError
from gon.core.validate import read_json_capped
from gon.storage.atomic import stale_siblings
from gon.storage.runs import Replacement, claim

SETTINGS = "settings.json"


def is_results_folder(directory: Path) -> bool:
    """Whether ``directory`` is an output folder of gon reproduce: its settings.json names an experiment."""
    try:
        record = read_json_capped(directory / SETTINGS, "settings")
    except GonError:
        return False
    return isinstance(record, dict) and "experiment" in record


def check_results_dir(out: Path, overwrite: bool) -> None:
    """Refuse, before anything is touched, an output folder this run may not write."""
    if out.exists() and not out.is_dir():
        raise GonError(f"output folder {out} is a file; give a folder with --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise GonError(
                f"output folder {out} already holds results; pass --overwrite to replace them or give another --out"
            )
        if not is_results_folder(out):
            raise GonError(
                f"--overwrite: {out} is not an output folder of gon reproduce (no {SETTINGS} naming an experiment); "
                "refusing to remove it"
            )


@contextmanager
def open_results(out: Path, overwrite: bool) -> Iterator[Replacement]:
    """The checked, locked output folder for the ``with`` block; earlier results (``overwrite``) are removed when it
    ends and put back if it raises."""
    check_results_dir(out, overwrite)
    with claim(out, keep=False) as replacement:
        if replacement.aside is not None:  # said, so that a run killed outright (SIGKILL) leaves them findable
            print(f"gon reproduce: the earlier results of {out} are kept in {replacement.aside} until this run ends")
        for aside in stale_siblings(out, ".replaced"):  # (the lock is ours: no run is using them)
            if aside != replacement.aside:
                print(
                    f"gon reproduce: note: {aside} holds earlier results that a killed run had set aside "
                    "(keep or remove them)"
                )
        yield replacement
