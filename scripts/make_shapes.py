#!/usr/bin/env python3
"""A procedural 3-D shape set for ``gon fit --dataset volume:DIR``: spheres, boxes, tori and capsules at random
sizes, positions and rotations, as occupancy grids (bool .npy, or signed distances with --sdf).

    python scripts/make_shapes.py DIR --count 400 --size 32 --test-fraction 0.1 --seed 0

writes DIR/train/<shape>_<i>.npy and DIR/test/<shape>_<i>.npy. Grids sample the cube [-1, 1]^3 at cell centres,
the coordinates an implicit GON uses, so a shape rendered at 2x is the same shape. Needs numpy only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SHAPES = ("sphere", "box", "torus", "capsule")


def signed_distance(shape: str, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Signed distance (negative inside) of a random ``shape`` centred at the origin, at points p [..., 3]."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    if shape == "sphere":
        return np.linalg.norm(p, axis=-1) - rng.uniform(0.3, 0.6)
    if shape == "box":
        q = np.abs(p) - rng.uniform(0.2, 0.5, size=3)
        return np.linalg.norm(np.maximum(q, 0), axis=-1) + np.minimum(q.max(-1), 0)
    if shape == "torus":
        ring, tube = rng.uniform(0.35, 0.55), rng.uniform(0.1, 0.2)
        return np.hypot(np.hypot(x, y) - ring, z) - tube
    if shape == "capsule":
        half, radius = rng.uniform(0.15, 0.4), rng.uniform(0.15, 0.3)
        return np.linalg.norm(p - np.stack([0 * x, 0 * y, np.clip(z, -half, half)], -1), axis=-1) - radius
    raise ValueError(shape)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix (QR of a Gaussian matrix, signs fixed, det +1)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def make_shape(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Signed distances [size]^3 of a random ``shape``, rotated and moved (by up to 0.25) inside the cube."""
    axis = (np.arange(size) + 0.5) / size * 2 - 1
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)  # [S, S, S, 3]: (z, y, x) like the model
    local = (grid - rng.uniform(-0.25, 0.25, size=3)) @ random_rotation(rng)  # world -> shape coordinates
    return signed_distance(shape, local, rng).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="folder to write (DIR/train, DIR/test); must not hold a shape set already")
    p.add_argument("--count", type=int, default=400, help="shapes in all, the four kinds in turn (default 400)")
    p.add_argument("--size", type=int, default=32, help="grid side: size^3 cells (default 32)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="share held out in DIR/test (default 0.1)")
    p.add_argument("--sdf", action="store_true", help="store signed distances (float32) instead of occupancy")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = p.parse_args(argv)
    if args.count < 2 or not 2 <= args.size <= 256 or not 0 < args.test_fraction < 1 or args.seed < 0:
        p.error("need --count >= 2, --size in [2, 256], --test-fraction in (0, 1) and --seed >= 0")
    out = Path(args.out)
    if (out / "train").exists() or (out / "test").exists():
        p.error(f"{out} already holds train/ or test/; choose an empty folder")
    rng = np.random.default_rng(args.seed)
    n_test = max(1, round(args.count * args.test_fraction))
    test = set(rng.choice(args.count, size=n_test, replace=False).tolist())
    for split in ("train", "test"):
        (out / split).mkdir(parents=True)
    for i in range(args.count):
        shape = SHAPES[i % len(SHAPES)]
        sdf = make_shape(shape, args.size, rng)
        np.save(out / ("test" if i in test else "train") / f"{shape}_{i:05d}.npy", sdf if args.sdf else sdf <= 0)
    print(f"wrote {args.count - n_test} training and {n_test} test shapes ({args.size}^3) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
