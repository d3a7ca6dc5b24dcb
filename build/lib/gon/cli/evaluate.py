"""``gon evaluate MODEL``: test-split metrics of a trained model, printed and written as JSON.

Reconstruction (every model): summed squared error per image, per-pixel MSE, PSNR. Variational
models (vgon, vae): the negative ELBO in bits/dim (gon.metrics.elbo_bits_per_dim). Classifiers:
test accuracy. MODEL is a run directory, a saved-model directory or a .ckpt checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gon.cli import COMMANDS, seed
from gon.storage.atomic import write_text


def add_parser(commands) -> None:
    p = commands.add_parser(
        "evaluate",
        help=COMMANDS["evaluate"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="run directory, saved-model directory or .ckpt file")
    p.add_argument("--dataset", help="dataset to evaluate on (default: the one the model was trained on)")
    p.add_argument("--data-dir", help="where to look for dataset files first")
    p.add_argument("--split", choices=["test", "train"], default="test", help="split to evaluate (default test)")
    p.add_argument(
        "--limit",
        type=int,
        help="evaluate N images drawn at random with --seed, stratified by class (GLO fits a code per image: slow)",
    )
    p.add_argument("--seed", type=seed, default=0, help="seed of the random choice of --limit images (default 0)")
    p.add_argument("--batch-size", type=int, default=256, help="images per evaluation batch (default 256)")
    p.add_argument("--elbo-samples", type=int, default=1, help="posterior samples per image for the ELBO (default 1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument(
        "--out",
        help="JSON file to write (default: RUN/evaluation-DATASET-SPLIT.json for a run directory; beside a saved "
        "model or .ckpt, NAME-evaluation-DATASET-SPLIT.json)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gon.cli.infer import load_images, load_model, output_path, positive
    from gon.metrics import classification_accuracy, elbo_bits_per_dim, reconstruction_metrics
    from gon.models import VariationalGON

    for key in ("limit", "batch_size", "elbo_samples"):
        if getattr(args, key) is not None:
            positive(getattr(args, key), "--" + key.replace("_", "-"))
    out = output_path(args.out, suffixes=(".json",), kind="evaluation") if args.out else None
    model = load_model(args)  # the shared device check (cpu, cuda, cuda:N, auto)
    data = load_images(model, args, limit=args.limit)

    device = next(model.parameters()).device
    images = data.images.to(device)
    results = {
        "model": str(args.model),
        "class": type(model).__name__,
        "dataset": data.name,
        "split": args.split,
        "images": len(data),
        "images_chosen": f"all {len(data):,} {args.split} images"
        if args.limit is None or len(data) < args.limit
        else f"{len(data):,} {args.split} images drawn with seed {args.seed}, stratified by class",
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    results.update(reconstruction_metrics(model, images, args.batch_size))
    if isinstance(model, VariationalGON):
        results.update(elbo_bits_per_dim(model, images, samples=args.elbo_samples, batch_size=args.batch_size))
    if hasattr(model, "classify") and data.labels is not None:
        results["accuracy"] = classification_accuracy(model, images, data.labels.to(device), args.batch_size)

    if out is None:
        out = default_out(args.model, data.name, args.split)
        out = output_path(str(out), "the default --out", (".json",), kind="evaluation")
    write_text(out, json.dumps(results, indent=2) + "\n")
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:{width}s}  {value:.6g}" if isinstance(value, float) else f"{key:{width}s}  {value}")
    print(f"written to {out}")
    return 0


def default_out(source: str | Path, dataset: str, split: str) -> Path:
    """Inside a run directory; beside a saved model or checkpoint, named after it: never inside a saved model,
    whose folder a finishing ``gon fit`` or ``gon export --overwrite`` replaces. A Hub model's
    (``hf://owner/name[@revision]``) goes into the current folder as ``owner--name[@revision]-evaluation-...``,
    not into huggingface_hub's cache."""
    from gon.storage import hub
    from gon.storage.runs import file_safe, is_saved_model

    name = f"evaluation-{file_safe(dataset)}-{split}.json"
    if isinstance(source, str) and source.startswith(hub.SCHEME):
        repo_id, revision = hub.parse(source)
        return Path(file_safe(repo_id.replace("/", "--") + (f"@{revision}" if revision else "")) + f"-{name}")
    source = Path(source)
    if source.is_dir() and not is_saved_model(source):
        return source / name
    source = source.resolve()
    return source.parent / f"{source.name if source.is_dir() else source.stem}-{name}"
