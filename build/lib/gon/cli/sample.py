"""``gon sample MODEL -n 64 --out samples.png``: new images from the model.

A variational GON decodes draws from its N(0, I) prior. A GON or implicit GON decodes draws from
the multivariate normal fitted to its training latents (the paper's early-stopping approach),
stored in a saved model by ``gon fit`` and ``gon export``, or fitted now from the training data.
Audio models draw waveforms and write the sounds to OUT_STEM/sample_i.wav; volume models draw slices and
their isosurfaces to OUT_STEM-isosurface.png.
"""

from __future__ import annotations

import argparse

from gon.cli import COMMANDS, seed
from gon.cli.infer import (
    add_data_arguments,
    add_model_argument,
    add_out_argument,
    ensure_latent_gaussian,
    load_model,
    note,
    output_path,
    positive,
    save_picture,
)
from gon.core.errors import GonError
from gon.core.validate import check_request, finite


def add_parser(commands) -> None:
    p = commands.add_parser("sample", help=COMMANDS["sample"], description=__doc__)
    add_model_argument(p)
    add_data_arguments(p, split=None)  # the training data, when latent statistics must be fitted
    p.add_argument("-n", type=int, default=64, help="number of samples")
    p.add_argument("--seed", type=seed, default=0, help="random seed of the draws")
    p.add_argument("--temperature", type=float, default=1.0, help="scale of the latent noise (1: the fitted spread)")
    add_out_argument(p, "samples.png")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gon.report.pictures import sample_picture
    from gon.report.signals import save_signal_extras, trained_rate
    from gon.sampling import is_variational, sample

    out = output_path(args.out)
    positive(args.n, "-n")
    if finite(args.temperature, "--temperature") < 0:
        raise GonError(f"--temperature must be >= 0, got {args.temperature}")
    model = load_model(args)
    check_request(model, args.n, f"-n {args.n}")
    if not is_variational(model) and (model.latent_gaussian is None or args.dataset):
        ensure_latent_gaussian(model, args, force=True)
    samples = sample(model, args.n, args.temperature, args.seed)
    save_picture(sample_picture(model, samples, args.temperature, args.seed), out)
    for path in save_signal_extras(out, {"sample": (samples, trained_rate(model))}):  # sounds or isosurfaces
        note(f"wrote {path}")
    return 0
