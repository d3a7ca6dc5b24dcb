"""Shared fixtures: a small real Fashion-MNIST subset, and a fixed seed for every test (helpers: tests/helpers.py)."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import FASHION_MNIST, GENERATED_CASES


@pytest.fixture(scope="session")
def fashion_subset():
    """512 real Fashion-MNIST training images at 32x32 (skips when the Debian package is absent)."""
    if not FASHION_MNIST.is_dir():
        pytest.skip("Fashion-MNIST not installed: apt-get install dataset-fashion-mnist")
    from gon.data import load_dataset

    return load_dataset("fashion-mnist", "train", image_size=32, limit=512)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_terminal_summary(terminalreporter):
    if GENERATED_CASES:
        counts = ", ".join(f"{name} {n:,}" for name, n in sorted(GENERATED_CASES.items()))
        terminalreporter.write_line(f"generated cases: {sum(GENERATED_CASES.values()):,} ({counts})")
