"""CPU memory for training: keep a step's large activations mapped from one step to the next.

A training step allocates and frees the same large tensors every time (an implicit GON: 13 to
51 MB each at batch 64). By default glibc gives each block over its mmap threshold a mapping of
its own and trims freed heap, so every step page-faults its activations back in, 4 KiB at a time,
zeroing each page: over 10,000 faults and 30-40 ms of a 190 ms Monte Carlo step, 250,000 faults
on a full-grid step. ``gon fit``, ``gon reproduce`` and ``gon bench`` call :func:`tune_for_training` first
(docs/performance.md, section 4):

- ``THP_MEM_ALLOC_ENABLE=1``: PyTorch puts tensors of 2 MB and more on transparent huge pages,
  so the blocks glibc still maps afresh (over 32 MiB) fault 2 MiB at a time;
- glibc serves blocks up to 32 MiB (the most ``mallopt`` allows) from its heap, and keeps up to
  1 GiB of freed heap for the next step instead of handing it back.

A setting the user made (the variable, glibc's ``MALLOC_*_`` variables or ``GLIBC_TUNABLES``) is
left alone. In your own Python code, call :func:`tune_for_training` before training.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 << 20  # glibc refuses a larger mmap threshold on 64-bit machines
KEEP_FREED = 1 << 30
GLIBC_VARIABLES = ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _glibc():
    """glibc through ctypes (None elsewhere: macOS, musl, Windows)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


LIBC = _glibc()


def tune_for_training() -> None:
    """Huge pages for large tensors, and glibc's heap kept between steps (see the module's docstring)."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # PyTorch reads it at its first large allocation
    if LIBC is not None and not any(name in os.environ for name in GLIBC_VARIABLES):
        LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
        LIBC.mallopt(M_TRIM_THRESHOLD, KEEP_FREED)
