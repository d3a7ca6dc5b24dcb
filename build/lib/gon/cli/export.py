"""``gon export MODEL DIR``: a saved model (config.json + model.safetensors + latent statistics) from any
run or checkpoint.

The latent Gaussian used for sampling is fitted on the training latents when the model records
its training data (or --dataset is given), else kept from MODEL when it has one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gon.cli import COMMANDS
from gon.cli.infer import add_data_arguments, add_model_argument, ensure_latent_gaussian, load_model, note, positive
from gon.core.errors import GonError
from gon.storage.runs import is_saved_model


def add_parser(commands) -> None:
    p = commands.add_parser("export", help=COMMANDS["export"], description=__doc__)
    add_model_argument(p)
    p.add_argument("out", metavar="DIR", help="the saved-model directory to write (its parent must exist)")
    add_data_arguments(p, split=None)
    p.add_argument(
        "--fit-images", type=int, default=None, help="training images encoded for the latent Gaussian (default 4096)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace the saved model in DIR (its other files are kept)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if not out.parent.is_dir():
        raise GonError(f"DIR {out}: folder {out.parent} does not exist")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not args.overwrite)):
        raise GonError(f"DIR {out} already exists and is not empty; pass --overwrite to replace the saved model in it")
    if out.is_dir() and any(out.iterdir()) and not is_saved_model(out):  # checked before any work
        raise GonError(f"DIR {out} is not empty and not a gon saved model: --overwrite replaces only a saved model")
    if args.fit_images is not None:
        positive(args.fit_images, "--fit-images")
    model = load_model(args)
    refit = args.dataset is not None or args.fit_images is not None
    if refit or (model.latent_gaussian is None and (model.training_data or {}).get("dataset")):
        ensure_latent_gaussian(model, args, args.fit_images, force=True)
    model.cpu().save_pretrained(out)
    stats = "with" if model.latent_gaussian is not None else "without (no training data known: pass --dataset)"
    note(f"wrote {type(model).__name__} to {out}, {stats} latent statistics")
    return 0
