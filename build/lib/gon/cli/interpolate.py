"""``gon interpolate MODEL --pairs 8 --steps 8 --out slerp.png``: spherical interpolation between real images.

One row per pair of images (paper Fig. 6): the first image, ``--steps`` decodings along the slerp
between their latents (both ends included), then the second image. Pairs are drawn at random with
--seed (stratified by class: the classes take turns, so a pair joins two classes). Audio models also
write each row as one sound, OUT_STEM/pair_i.wav (the clips of the row one after another).
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
    p = commands.add_parser("interpolate", help=COMMANDS["interpolate"], description=__doc__)
    add_model_argument(p)
    add_data_arguments(p)
    p.add_argument("--pairs", type=int, default=8, help="pairs of images, one row each")
    p.add_argument("--steps", type=int, default=8, help="interpolation steps per row, ends included")
    add_out_argument(p, "slerp.png")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gon.report.pictures import interpolation_frames, interpolation_picture
    from gon.report.signals import trained_rate, write_wavs

    out = output_path(args.out)
    positive(args.pairs, "--pairs")
    positive(args.steps, "--steps", low=2)  # both ends
    model = load_model(args)
    check_request(model, args.pairs * (args.steps + 2), f"--pairs {args.pairs} --steps {args.steps}")
    data = load_images(model, args, limit=2 * args.pairs)  # classes take turns: a pair joins two classes
    if len(data) < 2 * args.pairs:
        raise GonError(f"--pairs {args.pairs} needs {2 * args.pairs} images; the {args.split} split has {len(data)}")
    rows = interpolation_frames(model, data.images[0::2], data.images[1::2], args.steps)  # [P, T + 2, C, *grid]
    save_picture(interpolation_picture(rows), out)
    if rows.ndim == 4:  # audio: each row as one sound, the clips one after another
        for path in write_wavs(out.with_suffix(""), "pair", rows.transpose(1, 2).flatten(2), trained_rate(model)):
            note(f"wrote {path}")
    return 0
