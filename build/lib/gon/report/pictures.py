"""A trained model's pictures as PIL images, and the ones a run writes at intervals and at its end.

Grids (all return ``PIL.Image``, enlarged for viewing and labelled: a header says what the rows and
columns are; save them with :func:`save_grid`):
    reconstruction_grid   rows of originals, each followed by the row reconstructed
    sample_grid           samples: the variational prior, else the fitted latent Gaussian
    interpolation_grid    one row per pair: the real image, slerp between the latents, the other image
    render_grid           super-resolution: bicubic upscale of the input beside the implicit render
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from gon.report.images import as_pictures, labelled, make_grid, pairs_grid, rows_grid, save_image, side_by_side, upscale
from gon.report.plots import plot_latent_histogram, plot_loss_curves
from gon.report.signals import signal_pictures
from gon.sampling import (
    LatentGaussian,
    decode,
    encode_images,
    eval_mode,
    is_variational,
    model_device,
    render,
    sample,
    slerp,
)

N_SAMPLES, N_PAIRS, N_STEPS = 64, 8, 8
INTERVAL_FIT_IMAGES = 512  # training latents behind the samples and histogram drawn at intervals


def reconstruction_grid(model, images: Tensor, nrow: int = 8, source: str = "test images") -> Image.Image:
    """Originals [N, C, H, W] beside their reconstructions: a row of originals, then the same reconstructed.

    source: what the images are, for the title (e.g. "32 test images, seed 0").
    """
    with eval_mode(model):
        recon = model.reconstruct(images.to(model_device(model))).cpu()
    title = f"{source}: each row of originals, then the same images reconstructed"
    return labelled(side_by_side(images, recon, nrow=nrow), title, _cell(images), rows=["original", "reconstructed"])


def sample_grid(
    model, n: int = N_SAMPLES, temperature: float = 1.0, seed: int | None = 0, gaussian: LatentGaussian | None = None
) -> Image.Image:
    """n samples in a square grid (see :func:`gon.sampling.sample`)."""
    return sample_picture(model, sample(model, n, temperature, seed, gaussian), temperature, seed)


def sample_picture(model, samples: Tensor, temperature: float = 1.0, seed: int | None = 0) -> Image.Image:
    """Samples [n, C, *grid] of ``model`` in a square grid whose title says where they come from."""
    source = "z ~ N(0, I), the prior" if is_variational(model) else "the Gaussian fitted to training latents"
    spread = "" if temperature == 1 else f", temperature {temperature:g}"
    title = f"{len(samples)} samples: decoded draws from {source}{spread} (seed {seed})"
    return labelled(make_grid(samples), title, _cell(samples))


def interpolation_frames(model, a: Tensor, b: Tensor, steps: int = N_STEPS) -> Tensor:
    """[P, steps + 2, C, H, W]: a_i, decode(slerp(z(a_i), z(b_i), t)) for ``steps`` t from 0 to 1, b_i."""
    za, zb = encode_images(model, torch.cat([a, b])).chunk(2)  # [P, k] each
    path = slerp(za, zb, steps)  # [P, T, k]
    frames = decode(model, path.flatten(0, 1)).clamp(0, 1).unflatten(0, path.shape[:2])  # [P, T, C, H, W]
    return torch.cat([a[:, None], frames, b[:, None]], dim=1)


def interpolation_grid(model, a: Tensor, b: Tensor, steps: int = N_STEPS) -> Image.Image:
    """One row per pair (paper Fig. 6): :func:`interpolation_frames` side by side, labelled."""
    return interpolation_picture(interpolation_frames(model, a, b, steps))


def interpolation_picture(rows: Tensor) -> Image.Image:
    """Rows [P, T + 2, C, *grid] of :func:`interpolation_frames` as a grid whose columns say what they are."""
    steps = rows.shape[1] - 2
    columns = ["image a", *(f"t={t / (steps - 1):.2g}" for t in range(steps)), "image b"]
    title = "one pair of images per row: the two images, and between them decoded slerps of their latents"
    return labelled(rows_grid(rows), title, _cell(rows[0]), columns=columns)


def render_grid(model, images: Tensor, resolution: int, pairs_per_row: int = 4) -> Image.Image:
    """Super-resolution (paper Fig. 5, 17): each input upscaled bicubically beside the model's render."""
    rendered = render(model, images, resolution)
    size = "x".join(str(n) for n in images.shape[2:])
    title = (
        f"inputs of size {size} rendered at {resolution}: the usual upscale (bicubic), then the implicit GON's render"
    )
    grid = pairs_grid(upscale(images, resolution), rendered, pairs_per_row)
    return labelled(grid, title, _cell(rendered), columns=["upscaled", "GON render"])


def _cell(signals: Tensor) -> tuple[int, int]:
    """(height, width) of one picture of these signals in a grid, its padding included."""
    h, w = as_pictures(signals[:1]).shape[-2:]
    return h + 2, w + 2


def save_grid(image: Image.Image, path: str | Path) -> Path:
    """Save a grid (the grids above are already enlarged and labelled)."""
    return save_image(image, path)


# -- the pictures of a run ------------------------------------------------------------------------
def interval_pictures(
    model,
    folder: Path,
    step: int,
    train: Tensor,
    test: Tensor,
    rows: list[dict[str, float]] | None = None,
    curves: Path | None = None,
    validation_note: str = "",
) -> dict[str, Image.Image]:
    """Reconstructions of 32 test images (``test``: a class-stratified choice), samples from a Gaussian fitted to
    the latents of ``train`` (a stratified choice of INTERVAL_FIT_IMAGES), interpolations and the latent histogram at
    ``step`` (into ``folder``), and the loss curves so far; returns the grids by name."""
    folder.mkdir(parents=True, exist_ok=True)
    pictures = {"recon": reconstruction_grid(model, test[:32], source=f"{min(32, len(test))} test images, step {step}")}
    latents = encode_images(model, train)
    gaussian = LatentGaussian.fit(latents)
    pictures["samples"] = sample_grid(model, gaussian=gaussian)
    a, b = _pairs(test)
    pictures["interpolation"] = interpolation_grid(model, a, b)
    for name, image in pictures.items():
        save_grid(image, folder / f"{name}_step{step:07d}.png")
    plot_latent_histogram(latents, folder / f"latents_step{step:07d}.png", title=f"training latents at step {step}")
    if rows and curves is not None:
        plot_loss_curves(rows, curves, validation_note=validation_note)
    return pictures


def final_pictures(
    model,
    run: Path,
    latents: Tensor,
    gaussian: LatentGaussian,
    test: Tensor,
    rows: list[dict[str, float]],
    sample_rate: int | None = None,
    validation_note: str = "",
) -> tuple[dict[str, float], dict[str, Image.Image]]:
    """The pictures at the end of ``gon fit``, from the final model's training ``latents`` and their ``gaussian``
    (``sample_rate``: audio's, for its sounds; ``validation_note``: which images the interval evaluations saw).

    Writes samples.png, interpolation.png, latent_histogram.png and loss_curves.png (and for audio
    audio.png + audio/*.wav, for volumes isosurfaces.png + slices.png: :func:`gon.report.signals.signal_pictures`);
    returns the latents' normality statistics (``latent_ks`` ...) for metrics.json, and the grids by name.
    """
    a, b = _pairs(test)
    pictures = {"samples": sample_grid(model, gaussian=gaussian), "interpolation": interpolation_grid(model, a, b)}
    for name, image in pictures.items():
        save_grid(image, run / f"{name}.png")
    stats = plot_latent_histogram(
        latents, run / "latent_histogram.png", title=f"{len(latents)} training latents of the final model"
    )
    plot_loss_curves(rows, run / "loss_curves.png", title=run.name, validation_note=validation_note)
    if test.ndim != 4:  # audio or volumes: waveforms, spectrograms and sounds, or isosurfaces and slices
        signal_pictures(model, run, test, sample_rate)
    normality = ("ks", "ks_per_dim", "skew", "excess_kurtosis")
    return {f"latent_{k}": round(v, 5) for k, v in stats.items() if k in normality}, pictures


def _pairs(test: Tensor, pairs: int = N_PAIRS) -> tuple[Tensor, Tensor]:
    """Pairs of distinct test images: (0, 1), (2, 3), ... (fewer pairs when the test set is small); with a
    class-stratified choice the classes take turns, so each pair joins two classes."""
    p = min(pairs, len(test) // 2)
    return (test[0 : 2 * p : 2], test[1 : 2 * p : 2]) if p else (test[:1], test[:1])


__all__ = [
    "interpolation_grid",
    "reconstruction_grid",
    "render_grid",
    "sample_grid",
    "save_grid",
    "interval_pictures",
    "final_pictures",
]
