"""Train/test splits of a folder of files: a seeded, stable held-out subset, or ROOT/train and ROOT/test."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from gon.core.errors import GonError
from gon.data.subsets import Choice


def held_out(names: list[bytes], test_fraction: float, seed: int, keep: int | None = None) -> set[int]:
    """Indices of the held-out names: the ``test_fraction`` of them (at least one, never all) that rank lowest by a
    hash of (seed, name). A name's rank depends on nothing else, so adding or removing names moves few others
    between the splits, and their order does not matter. ``keep``: only the lowest ``keep`` of them."""
    rank = sorted(range(len(names)), key=lambda i: hashlib.sha256(f"{seed}\0".encode() + names[i]).digest())
    count = min(max(round(len(names) * test_fraction), 1), len(names) - 1)
    return set(rank[: count if keep is None else min(count, keep)])


def held_out_split(files: list[Path], root: Path, split: str, test_fraction: float, seed: int, spec: str) -> list[Path]:
    """The files of ``split``, held out by :func:`held_out` on their paths relative to ``root``."""
    # os.fsencode: a file name's own bytes (UTF-8 or not, surrogateescape), so any name on disk ranks
    test = held_out([os.fsencode(f.relative_to(root).as_posix()) for f in files], test_fraction, seed)
    chosen = [f for i, f in enumerate(files) if (i in test) == (split == "test")]
    if not chosen:
        raise GonError(f"dataset {spec}: only {len(files)} file(s), too few for a {split} split")
    return chosen


def folder_split(spec: str, prefix: str, suffix: str, split: str, test_fraction: float, seed: int) -> list[Path]:
    """The ``*suffix`` files of one split of the folder ``spec`` names (``PREFIX:PATH``): those under PATH/train
    or PATH/test when both exist (as the generators in scripts/ write them), else :func:`held_out_split`."""
    root = Path(spec[len(prefix) :]).expanduser()
    if not spec[len(prefix) :] or not root.is_dir():
        raise GonError(f"dataset {spec}: no such directory {root}")
    presplit = (root / "train").is_dir() and (root / "test").is_dir()
    base = root / split if presplit else root
    files = sorted((p for p in base.rglob(f"*{suffix}") if p.is_file()), key=lambda p: p.relative_to(base).as_posix())
    if not files:
        raise GonError(f"dataset {spec}: no {suffix} files under {base}")
    return files if presplit else held_out_split(files, root, split, test_fraction, seed, spec)


def chosen_files(
    spec: str, prefix: str, suffix: str, split: str, test_fraction: float, seed: int, choice: Choice
) -> tuple[list[Path], torch.Tensor, list[str]]:
    """``choice`` applied to :func:`folder_split`'s files: (the chosen files, their index in the split, their
    paths relative to the folder), so that only those are read."""
    files = folder_split(spec, prefix, suffix, split, test_fraction, seed)
    index = choice(len(files))
    chosen = [files[i] for i in index.tolist()]
    root = Path(spec[len(prefix) :]).expanduser()
    return chosen, index, [f.relative_to(root).as_posix() for f in chosen]
