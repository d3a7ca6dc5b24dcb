"""``gon reconstruct MODEL -n 64 --out recon.png``: N images of a split beside their reconstructions.

The images are drawn at random with --seed, stratified by class where the data has classes.

Rows alternate: a row of originals, then the same images reconstructed.
"""

from __future__ import annotations

import argparse

from gon.cli import COMMANDS
from gon.cli.infer import (
    add_data_arguments,
    add_model_argument,
    add_out_argument,
    load_images,
    load_model,
    output_path,
    positive,
    save_picture,
)


def add_parser(commands) -> None:
    p = commands.add_parser("reconstruct", help=COMMANDS["reconstruct"], description=__doc__)
    add_model_argument(p)
    add_data_arguments(p)
    p.add_argument("-n", type=int, default=64, help="number of images")
    add_out_argument(p, "recon.png")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gon.report.pictures import reconstruction_grid

    out = output_path(args.out)
    positive(args.n, "-n")
    model = load_model(args)
    data = load_images(model, args, limit=args.n)
    source = f"{len(data)} {args.split} images of {data.name} (seed {args.seed})"
    save_picture(reconstruction_grid(model, data.images, source=source), out)
    return 0
