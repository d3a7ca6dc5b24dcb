"""Which images a subset holds: a seeded random choice, stratified by class where there are classes.

Every "N of these images" in gon (the validation subset, --limit-train, evaluate --limit, the images of
a picture) goes through :func:`choose`, so that a folder sorted class by class never yields N images of
its first class, and the same seed always gives the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def choose(total: int, k: int | None, seed: int = 0, labels: Tensor | None = None) -> Tensor:
    """Indices (int64 [min(k, total)]) of a seeded random choice of k of ``total`` items.

    With ``labels`` the choice is stratified: each class gets a share proportional to its size (and at
    least one image while k allows), and the classes take turns in the returned order, so that a row of a
    grid shows different classes. ``k`` None or >= total: every item, in order.
    """
    if k is None or k >= total:
        return torch.arange(total)
    generator = torch.Generator().manual_seed(seed)
    if labels is None:
        return torch.randperm(total, generator=generator)[:k]
    classes = labels.unique()
    members = [torch.nonzero(labels == c).flatten() for c in classes]
    members = [m[torch.randperm(len(m), generator=generator)] for m in members]
    quotas = _quotas([len(m) for m in members], k)
    picked = [m[:q] for m, q in zip(members, quotas)]
    order = sorted(((rank, c) for c, p in enumerate(picked) for rank in range(len(p))))  # round robin
    return torch.stack([picked[c][rank] for rank, c in order])


@dataclass(frozen=True)
class Choice:
    """k items of a split drawn with ``seed`` (k None: all of them, in order): what a dataset reader is asked
    for, applied to whatever it can count cheaply (file names, keys, labels) before it decodes anything."""

    k: int | None = None
    seed: int = 0

    def __call__(self, total: int, labels: Tensor | None = None) -> Tensor:
        return choose(total, self.k, self.seed, labels)


def _quotas(sizes: list[int], k: int) -> list[int]:
    """How many items each class gives to a choice of k: one each first (while k allows), the rest
    proportionally to the classes' remaining sizes (largest remainders)."""
    quotas = [0] * len(sizes)
    by_size = sorted(range(len(sizes)), key=lambda c: -sizes[c])
    for c in by_size[:k]:
        quotas[c] = 1
    left = k - sum(quotas)
    spare = [s - q for s, q in zip(sizes, quotas)]
    if left > 0:
        shares = [left * s / sum(spare) for s in spare]
        extra = [int(s) for s in shares]
        for c in sorted(range(len(sizes)), key=lambda c: extra[c] - shares[c])[: left - sum(extra)]:
            extra[c] += 1
        quotas = [q + e for q, e in zip(quotas, extra)]
    return quotas
