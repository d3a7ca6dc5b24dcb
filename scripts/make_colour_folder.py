#!/usr/bin/env python3
"""A 64x64 RGB folder of class subfolders from real images on disk, for ``gon fit --dataset folder:DIR``: Fashion-MNIST
training images (the Debian package dataset-fashion-mnist) upscaled (bicubic) and colourised, a random garment
colour over a random two-colour vertical gradient with N(0, 0.02) noise, one subfolder per class.

    python scripts/make_colour_folder.py DIR --count 2000 --size 64 --seed 0

There are no photographs offline; this is the 64x64 RGB data the variational GON's 64x64 figures were measured on
(docs/results.md). Needs numpy and Pillow.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np
from PIL import Image

FASHION = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the folder to write (one subfolder per class)")
    p.add_argument("--count", type=int, default=2000, help="images to write (default 2000)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the colours and noise (default 0)")
    p.add_argument("--fashion", type=Path, default=FASHION, help=f"the Fashion-MNIST IDX files (default {FASHION})")
    args = p.parse_args(argv)
    images_file = args.fashion / "train-images-idx3-ubyte.gz"
    if not images_file.is_file():
        print(f"error: no {images_file} (apt-get install dataset-fashion-mnist, or --fashion DIR)", file=sys.stderr)
        return 2
    if not 0 < args.count <= 60000 or not 8 <= args.size <= 512:
        print("error: --count must be 1 to 60000 and --size 8 to 512", file=sys.stderr)
        return 2
    images = read_idx(images_file, 16).reshape(-1, 28, 28)[: args.count]
    labels = read_idx(args.fashion / "train-labels-idx1-ubyte.gz", 8)[: args.count]
    rng = np.random.default_rng(args.seed)
    rows = np.linspace(0, 1, args.size)[:, None, None]
    for i, (image, label) in enumerate(zip(images, labels)):
        shape = np.asarray(Image.fromarray(image).resize((args.size,) * 2, Image.BICUBIC), np.float32)[..., None] / 255
        top, bottom, garment = rng.uniform(0, 1, (3, 3))
        background = top * (1 - rows) + bottom * rows
        rgb = background * (1 - shape) + garment * shape * (0.6 + 0.4 * shape)
        rgb = np.clip(rgb + rng.normal(0, 0.02, rgb.shape), 0, 1)
        folder = args.out / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rgb * 255).astype(np.uint8)).save(folder / f"{i:05d}.png")
    print(
        f"wrote {len(images)} {args.size}x{args.size} RGB images in {len(set(labels.tolist()))} classes to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
