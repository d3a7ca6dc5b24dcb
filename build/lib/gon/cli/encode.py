"""``gon encode MODEL --out latents.npz``: the latents of a dataset's images, each traceable to its image.

The .npz holds ``latents`` (float32 [N, latent_dim]), ``index`` (int64 [N]: each image's position
in its split), for labelled data ``labels`` (int64 [N]) and ``classes`` (the class names, labels
index them), and for folders ``paths`` (each image's file, relative to the folder). Read it with
``numpy.load(path)``: every array is plain numbers or text, no pickle needed.
"""

from __future__ import annotations

import argparse

import numpy as np
from tqdm.auto import tqdm

from gon.cli import COMMANDS
from gon.cli.infer import add_data_arguments, add_model_argument, load_images, load_model, note, output_path, positive
from gon.storage.atomic import atomic_write


def add_parser(commands) -> None:
    p = commands.add_parser("encode", help=COMMANDS["encode"], description=__doc__)
    add_model_argument(p)
    add_data_arguments(p)
    p.add_argument("--out", required=True, help="the .npz file to write (its folder must exist)")
    p.add_argument("--limit", type=int, help="encode N images drawn at random with --seed, stratified by class")
    p.add_argument("--batch-size", type=int, default=256, help="images encoded at once")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gon.sampling import encode_images

    out = output_path(args.out, suffixes=(".npz",), kind="latents")
    positive(args.batch_size, "--batch-size")
    if args.limit is not None:
        positive(args.limit, "--limit")
    model = load_model(args)
    data = load_images(model, args, limit=args.limit)
    with tqdm(total=len(data), desc=f"encoding {data.name} {args.split}", unit="img", disable=None) as bar:
        latents = encode_images(model, data.images, args.batch_size, progress=bar.update)
    arrays = {
        "latents": latents.numpy().astype(np.float32),
        "index": data.index.numpy() if data.index is not None else np.arange(len(data), dtype=np.int64),
    }
    if data.labels is not None:
        arrays["labels"] = data.labels.numpy()
        arrays["classes"] = np.array(data.classes, dtype=str)
    if data.paths is not None:
        arrays["paths"] = np.array(data.paths, dtype=str)
    atomic_write(out, lambda f: np.savez(f, **arrays))
    note(f"wrote {out}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))
    return 0
