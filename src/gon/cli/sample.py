"""``gon sample MODEL -n 64 --out samples.png``: new images from the model.

A variational GON decodes draws from its N(0, I) prior. A GON or implicit GON decodes draws from
the multivariate normal fitted to its training latents (the paper's early-stopping approach),
stored in a saved model by ``gon fit`` and ``gon export``, or fitted now from the training data.
"""

from __future__ import annotations

import argparse

from gon.cli.infer import (
    add_data_arguments,
    add_model_argument,
    add_out_argument,
    ensure_latent_gaussian,
    load_model,
    output_path,
    positive,
    save_picture,
)
from gon.errors import GonError


def add_parser(commands) -> None:
    p = commands.add_parser("sample", help="draw samples", description=__doc__)
    add_model_argument(p)
    add_data_arguments(p, split=None)  # the training data, when latent statistics must be fitted
    p.add_argument("-n", type=int, default=64, help="number of samples")
    p.add_argument("--seed", type=int, default=0, help="random seed of the draws")
    p.add_argument("--temperature", type=float, default=1.0, help="scale of the latent noise (1: the fitted spread)")
    add_out_argument(p, "samples.png")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gon.report.pictures import sample_grid
    from gon.sampling import is_variational

    out = output_path(args.out)
    positive(args.n, "-n")
    if args.temperature < 0:
        raise GonError(f"--temperature must be >= 0, got {args.temperature}")
    model = load_model(args)
    if not is_variational(model) and (model.latent_gaussian is None or args.dataset):
        ensure_latent_gaussian(model, args, force=True)
    save_picture(sample_grid(model, args.n, args.temperature, args.seed), out)
    return 0
