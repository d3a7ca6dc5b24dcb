"""gon's cache folder: ``$GON_CACHE``, else ``~/.cache/gon`` (downloaded datasets, the benchmark's peer library,
the texts of ``gon COMMAND --help``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$GON_CACHE/PARTS...``, else ``~/.cache/gon/PARTS...`` (not created)."""
    base = os.environ.get("GON_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "gon").joinpath(*parts)
