"""``gon render MODEL --resolution 256 -n 16 --out sr.png``: super-resolution with an implicit GON.

Each test image is encoded at the model's training size (e.g. 28x28) and its latent rendered at
``--resolution`` (paper Fig. 5 and 17); each render sits right of a bicubic upscale of the input.
Audio models render at ``--resolution`` samples per clip (default 4x: a 4x higher sample rate): the
picture shows waveforms and spectrograms of the input, its band-limited resampling and the render, and
the sounds go to OUT_STEM/*.wav. Volume models render on a ``--resolution``^3 grid (default 2x): slices
of a trilinear upscale beside the render, and their isosurfaces in OUT_STEM-isosurface.png.
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
    note,
    output_path,
    positive,
    save_picture,
)
from gon.core.errors import GonError
from gon.core.validate import check_request


def add_parser(commands) -> None:
    p = commands.add_parser("render", help=COMMANDS["render"], description=__doc__)
    add_model_argument(p)
    add_data_arguments(p)
    p.add_argument(
        "--resolution",
        type=int,
        help="output side in pixels (default 256); audio: samples per clip (default 4x), volumes: grid side (2x)",
    )
    p.add_argument("-n", type=int, default=16, help="number of images")
    p.add_argument("--pairs-per-row", type=int, default=4, help="(bicubic, render) pairs per row")
    add_out_argument(p, "sr.png")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gon.report.pictures import render_grid
    from gon.report.signals import render_signals, trained_rate

    out = output_path(args.out)
    positive(args.n, "-n")
    if args.resolution is not None:
        positive(args.resolution, "--resolution")
    positive(args.pairs_per_row, "--pairs-per-row")
    model = load_model(args)
    if not model.renders_any_size:
        raise GonError(
            f"{args.model} is a {type(model).__name__}, which decodes only at its training size; "
            "super-resolution needs an implicit GON (gon fit --model implicit)"
        )
    grid_dims = getattr(model, "dims", 2)
    if args.resolution is not None:
        check_request(model, 2 * args.n, f"--resolution {args.resolution}", (args.resolution,) * grid_dims)
    data = load_images(model, args, limit=args.n)
    grid = data.images.shape[2:]
    if len(grid) == 2:
        save_picture(render_grid(model, data.images, args.resolution or 256, args.pairs_per_row), out, enlarge=False)
        return 0
    scale = 4 if len(grid) == 1 else 2
    size = (args.resolution,) * len(grid) if args.resolution else tuple(scale * s for s in grid)
    for path in render_signals(model, data.images, size, out, trained_rate(model)):
        note(f"wrote {path}")
    return 0
