"""What the tests share: tiny models of every registered class, the real Fashion-MNIST location, and helpers for
end-to-end `gon fit` runs as real processes (faults, determinism, DDP). Fixtures are in conftest.py."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

#: cases the property-based suites ran in this session, by suite (conftest prints the total at the end)
GENERATED_CASES: Counter[str] = Counter()

#: constructor keywords for a tiny instance of every model in gon.models.registry.MODELS, and its image size;
#: a new model must be added here (tests fail for any registered model without an entry)
TINY_MODELS: dict[str, dict] = {
    "gon": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "vgon": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "implicit": {"latent_dim": 8, "hidden": 16, "depth": 2, "channels": 1, "image_size": 12},
    "ae": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "tied-ae": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "glo": {"num_images": 16, "latent_dim": 8, "width": 4, "channels": 1, "image_size": 16, "fit_steps": 5},
    "vae": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "mlp-ae": {"latent_dim": 8, "hidden": 16, "channels": 1, "image_size": 12},
    "conversion": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
    "conversion-ae": {"latent_dim": 8, "width": 4, "channels": 1, "image_size": 16},
}


def tiny_model(name: str, **overrides):
    from gon.models.registry import build

    if name not in TINY_MODELS:
        raise AssertionError(f"model {name!r} is registered but tests/helpers.py TINY_MODELS has no entry for it")
    return build(name, **{**TINY_MODELS[name], **overrides})


def image_size_of(name: str) -> int:
    return TINY_MODELS[name]["image_size"]


#: the console script of the environment running the tests (DDP re-launches it, so it must be a file)
GON = Path(sys.executable).with_name("gon")

#: a model and run small enough for a step to take milliseconds on a busy 2-core machine
TINY = [
    "--image-size",
    "16",
    "--latent-dim",
    "8",
    "--width",
    "4",
    "--batch-size",
    "8",
    "--val-size",
    "16",
    "--picture-every",
    "1000000",
]


def blob_folder(root: Path, n: int = 96, size: int = 16, seed: int = 0) -> str:
    """``n`` grayscale PNGs of one or two Gaussian blobs each; returns the ``--dataset`` value."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        image = np.zeros((size, size))
        for _ in range(rng.integers(1, 3)):
            cy, cx, r = rng.uniform(3, size - 3), rng.uniform(3, size - 3), rng.uniform(1.5, 4)
            image += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        Image.fromarray((255 * image.clip(0, 1)).astype(np.uint8)).save(root / f"{i:03d}.png")
    return f"folder:{root}"


def gon_fit(*args: str, **popen) -> subprocess.Popen:
    """Start `gon fit ARGS` as a process (stdout and stderr captured together)."""
    if not GON.is_file():
        raise AssertionError(f"{GON} not found: install gon into the environment running the tests")
    return subprocess.Popen(
        [str(GON), "fit", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def run_gon_fit(*args: str, timeout: float = 300, **popen) -> tuple[int, str]:
    """Run `gon fit ARGS` to the end; returns (exit code, output)."""
    proc = gon_fit(*args, **popen)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"gon fit {' '.join(args)} ran past {timeout} s:\n{out[-3000:]}") from None
    return proc.returncode, out
