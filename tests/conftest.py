"""Shared fixtures: tiny models of every registered class, and a small real Fashion-MNIST subset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

#: constructor keywords for a tiny instance of every model in gon.registry.MODELS, and its image size;
#: a new model must be added here (tests fail for any registered model without an entry)
TINY: dict[str, dict] = {
    "gon": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "vgon": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "implicit": {"latent_dim": 8, "hidden": 16, "depth": 2, "channels": 1, "image_size": 12},
    "ae": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "tied-ae": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "glo": {"num_images": 16, "latent_dim": 8, "width": 4, "channels": 1, "image_size": 16, "fit_steps": 5},
    "vae": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "conversion": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "conversion-ae": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
}


def tiny_model(name: str, **overrides):
    from gon.registry import MODELS

    if name not in TINY:
        raise AssertionError(f"model {name!r} is registered but tests/conftest.py TINY has no entry for it")
    return MODELS[name](**{**TINY[name], **overrides})


def image_size_of(name: str) -> int:
    return TINY[name]["image_size"]


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
