"""What the commands that use a trained model share: the MODEL argument, their data and their outputs.

MODEL is a run directory (its model/ export; checkpoints/last.ckpt when there is none or it has
more steps), a saved-model directory (config.json + model.safetensors) or a Lightning .ckpt. The
dataset, its folder and how it was resized default to what the model was trained on, when the
model records it.
"""

from __future__ import annotations

import argparse
import os
from fnmatch import fnmatch
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from gon.cli import seed
from gon.core.errors import GonError, printable
from gon.core.settings import check_flag
from gon.core.validate import torch_device
from gon.storage.runs import split_seed_of

MODEL_HELP = (
    "a run directory, a saved-model directory (config.json + model.safetensors), a .ckpt checkpoint or "
    "hf://owner/name[@revision] (a saved model on the Hugging Face Hub: pip install 'gon[hub]')"
)


def add_model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")


def add_data_arguments(p: argparse.ArgumentParser, split: str | None = "test") -> None:
    """--dataset and --data-dir (default: the model's training data), and --split and --seed (which images)
    unless ``split`` is None."""
    p.add_argument(
        "--dataset",
        help="fashion-mnist | mnist | smallnorb | coil20 | cifar10 | celeba | lsun-bedroom | "
        "folder:PATH | lmdb:PATH | audio:PATH | volume:PATH (default: the model's training data)",
    )
    p.add_argument("--data-dir", help="where to look for dataset files first")
    if split:
        p.add_argument("--split", default=split, choices=["train", "test"], help="which split's images to use")
        p.add_argument(
            "--seed",
            type=seed,
            default=0,
            help="seed of the random choice of images, stratified by class when the data has classes (default 0)",
        )


def add_out_argument(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--out", default=default, help="output file (its folder must exist)")


def load_model(args: argparse.Namespace):
    from gon.models.loading import load

    return load(args.model, torch_device(args.device))


def positive(value: int, flag: str, low: int = 1) -> int:
    """A count given on the command line, at least ``low`` (checked by :func:`gon.core.settings.check_flag`)."""
    return check_flag(flag, value, type=int, low=low)


def output_path(path: str, flag: str = "--out", suffixes: tuple[str, ...] = (), kind: str = "picture") -> Path:
    """The output file, checked before any work: its folder exists, it is not a folder, its suffix is one of
    ``suffixes`` (default: the picture formats), and an existing file there is one this kind of output may
    replace (:func:`check_replaceable`)."""
    out = Path(path)
    check_path_length(out, flag)
    if not out.parent.is_dir():
        raise GonError(f"{flag} {path}: folder {out.parent} does not exist")
    if out.is_dir():
        raise GonError(f"{flag} {path} is a folder; give a file name")
    suffixes = suffixes or PICTURE_SUFFIXES
    if out.suffix.lower() not in suffixes:
        wanted = ", ".join(suffixes[:-1]) + " or " * (len(suffixes) > 1) + suffixes[-1]
        raise GonError(f"{flag} {path} must end with {wanted}")
    check_writable(out, flag)
    check_replaceable(out, flag, kind)
    return out


#: the picture formats --out takes (those gon.storage.atomic.save_picture writes)
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
#: the names a command writes into a run by default, which it may replace there
DEFAULT_NAMES_IN_A_RUN = {"evaluation": "*evaluation-*.json", "report": "report.htm*"}


#: bytes a run directory's own paths add to its name (RUN/logs/version_K/.metrics.csv.<12 hex>.tmp)
RUN_PATH_ROOM = 64


def check_path_length(out: Path, flag: str = "--out", room: int = 0) -> None:
    """Refuse before any work a path the filesystem cannot take: a name longer than its limit once gon's temporary
    suffix (``.NAME.<12 hex>.tmp``) is added, or a whole path (plus ``room`` for what gon writes under it) longer
    than the system's."""
    from gon.storage.atomic import temp_sibling

    shown = printable(str(out))[:80] + "..." * (len(str(out)) > 80)
    existing = next((p for p in [out.parent, *out.parent.parents] if _is_dir(p)), Path("."))
    try:
        name_max, path_max = os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    whole = len(os.fsencode(os.path.abspath(out))) + room
    if whole >= path_max:
        raise GonError(f"{flag} {shown}: the path is too long ({whole} bytes with gon's files; at most {path_max})")
    for part in out.parts[:-1]:
        if len(os.fsencode(part)) > name_max:
            raise GonError(
                f"{flag} {shown}: a folder name is too long ({len(os.fsencode(part))} bytes; {name_max} fit)"
            )
    name, longest = len(os.fsencode(out.name)), len(os.fsencode(temp_sibling(out).name))
    if longest > name_max:
        raise GonError(
            f"{flag} {shown}: the file name is too long ({name} bytes; gon needs {longest - name} more for its "
            f"temporary file and the filesystem takes {name_max})"
        )


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long to look up
        return False


def check_writable(out: Path, flag: str = "--out") -> None:
    """A folder gon may write (the name's length is :func:`check_path_length`'s)."""
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise GonError(f"{flag} {printable(str(out))}: folder {printable(str(out.parent))} is not writable")


def check_replaceable(out: Path, flag: str, kind: str) -> None:
    """Refuse, before any work, to write over a file this command did not write: a run's or a saved model's own
    files (checkpoints, configs, weights, pictures) and any file that is not this kind of output."""
    from gon.storage.runs import is_gon_run, is_saved_model

    if not (out.exists() or out.is_symlink()):
        return
    shown = printable(str(out))
    if not out.is_file():
        raise GonError(f"{flag} {shown} exists and is not a regular file; refusing to write over it")
    default = DEFAULT_NAMES_IN_A_RUN.get(kind)
    for owner in (out.parent, out.parent.parent):
        if is_saved_model(owner):
            raise GonError(f"{flag} {shown} is a file of the saved model {printable(str(owner))}; give another --out")
        if is_gon_run(owner) and not (default and fnmatch(out.name, default)):
            raise GonError(f"{flag} {shown} is a file of the run {printable(str(owner))}; give another --out")
    if not IS_KIND[kind](out):
        raise GonError(
            f"{flag} {shown} exists and is not {KIND_NAMES[kind]}; refusing to write over it (give another --out)"
        )


def _is_picture(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            return image.format is not None
    except (OSError, ValueError, Image.DecompressionBombError):
        return False


def _is_evaluation(path: Path) -> bool:
    import json

    try:
        with path.open("rb") as f:
            results = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(results, dict) and {"model", "class", "dataset", "split", "images"} <= results.keys()


def _is_latents(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return {"latents.npy", "index.npy"} <= set(z.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def _is_report(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return b"<title>gon run " in f.read(4096)
    except OSError:
        return False


IS_KIND = {"picture": _is_picture, "evaluation": _is_evaluation, "latents": _is_latents, "report": _is_report}
KIND_NAMES = {
    "picture": "a picture",
    "evaluation": "an evaluation gon evaluate wrote",
    "latents": "a latents file gon encode wrote",
    "report": "a report gon report wrote",
}


def load_images(
    model,
    args: argparse.Namespace,
    limit: int | None = None,
    split: str | None = None,
    download: bool = True,
    limit_seed: int | None = None,
):
    """An ImageData of the dataset at the model's size and channels: ``limit`` images chosen at random with
    ``limit_seed`` (default --seed; stratified by class), or all of them. A folder's test split is the one the
    model was trained beside."""
    from gon.data import DEFAULT_AUDIO_SECONDS, DEFAULT_SAMPLE_RATE, load_dataset, same_dataset

    trained = model.training_data or {}
    name = args.dataset or trained.get("dataset")
    if not name:
        raise GonError(f"{args.model} does not record the dataset it was trained on: pass --dataset")
    size = model.config.get("image_size")
    if isinstance(size, (list, tuple)):  # [L] audio (its length set by the rate), [H, W] or [D, H, W]
        if len(size) > 1 and len(set(size)) != 1:
            raise GonError(f"{args.model} was trained on a {'x'.join(map(str, size))} grid; gon datasets are square")
        size = size[0] if len(size) > 1 else None
    same_data = same_dataset(name, trained.get("dataset"))
    data = load_dataset(
        name,
        split or getattr(args, "split", "test"),
        data_dir=args.data_dir or (trained.get("data_dir") if same_data else None),
        image_size=size,
        resize=trained.get("resize") or "resize",
        limit=limit,
        seed=split_seed_of(trained) if same_data else 0,  # a folder's test split: the one trained beside
        limit_seed=(getattr(args, "seed", None) or 0) if limit_seed is None else limit_seed,
        sample_rate=trained.get("sample_rate") or DEFAULT_SAMPLE_RATE,
        audio_seconds=trained.get("audio_seconds") or DEFAULT_AUDIO_SECONDS,
        download=download,
    )
    channels = model.config.get("channels")
    if channels is not None and data.channels != channels:
        raise GonError(f"dataset {name} has {data.channels} channel(s) but {args.model} expects {channels}")
    return data


def ensure_latent_gaussian(
    model, args: argparse.Namespace, fit_images: int | None = None, force: bool = False, download: bool = True
):
    """The model's latent Gaussian; fitted now on training latents when missing (or ``force``)."""
    from gon.sampling import GAUSSIAN_FIT_IMAGES, LatentGaussian, encode_images

    if model.latent_gaussian is not None and not force:
        return model.latent_gaussian
    from gon.data import same_dataset

    trained = model.training_data or {}
    wanted = fit_images or GAUSSIAN_FIT_IMAGES
    if same_dataset(args.dataset or trained.get("dataset"), trained.get("dataset")):
        # the images it was trained on (--limit-train drawn with the run's seed), then finish_run's choice of them
        seed = trained.get("seed") or 0
        limit = trained.get("limit_train") or wanted
        data = load_images(model, args, limit, "train", download, limit_seed=seed).subset(wanted, seed)
    else:  # never the picture or draw seed (gon sample --seed): one model, one Gaussian
        data = load_images(model, args, limit=wanted, split="train", download=download, limit_seed=0)
    note(f"fitting the latent Gaussian on {len(data)} {data.name} training latents")
    with tqdm(total=len(data), desc="encoding", unit="img", leave=False, disable=None) as bar:
        latents = encode_images(model, data.images, progress=bar.update)
    model.latent_gaussian = LatentGaussian.fit(latents)
    return model.latent_gaussian


def save_picture(image: Image.Image, out: Path, enlarge: bool = True) -> None:
    """Save a grid; small ones enlarged (nearest neighbour) so that their pixels can be seen."""
    from gon.report.images import save_image
    from gon.report.pictures import save_grid

    save_grid(image, out) if enlarge else save_image(image, out)
    with Image.open(out) as saved:
        note(f"wrote {out} ({saved.width}x{saved.height} pixels)")


def note(message: str) -> None:
    print(message)
