"""A trained model's pictures as PIL images, and the ones a run writes at intervals and at its end.

Grids (all return ``PIL.Image``; save them with :func:`save_grid`):
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

from gon.images import make_grid, pairs_grid, rows_grid, save_image, side_by_side, upscale
from gon.report.plots import plot_latent_histogram, plot_loss_curves
from gon.report.signals import signal_pictures
from gon.sampling import (
    LatentGaussian,
    decode,
    encode_images,
    eval_mode,
    model_device,
    render,
    sample,
    slerp,
)

N_SAMPLES, N_PAIRS, N_STEPS = 64, 8, 8
INTERVAL_FIT_IMAGES = 512  # training latents behind the samples and histogram drawn at intervals


def reconstruction_grid(model, images: Tensor, nrow: int = 8) -> Image.Image:
    """Originals [N, C, H, W] beside their reconstructions: a row of originals, then the same reconstructed."""
    with eval_mode(model):
        recon = model.reconstruct(images.to(model_device(model))).cpu()
    return side_by_side(images, recon, nrow=nrow)


def sample_grid(
    model, n: int = N_SAMPLES, temperature: float = 1.0, seed: int | None = 0, gaussian: LatentGaussian | None = None
) -> Image.Image:
    """n samples in a square grid (see :func:`gon.sampling.sample`)."""
    return make_grid(sample(model, n, temperature, seed, gaussian))


def interpolation_frames(model, a: Tensor, b: Tensor, steps: int = N_STEPS) -> Tensor:
    """[P, steps + 2, C, H, W]: a_i, decode(slerp(z(a_i), z(b_i), t)) for ``steps`` t from 0 to 1, b_i."""
    za, zb = encode_images(model, torch.cat([a, b])).chunk(2)  # [P, k] each
    path = slerp(za, zb, steps)  # [P, T, k]
    frames = decode(model, path.flatten(0, 1)).clamp(0, 1).unflatten(0, path.shape[:2])  # [P, T, C, H, W]
    return torch.cat([a[:, None], frames, b[:, None]], dim=1)


def interpolation_grid(model, a: Tensor, b: Tensor, steps: int = N_STEPS) -> Image.Image:
    """One row per pair (paper Fig. 6): :func:`interpolation_frames` side by side."""
    return rows_grid(interpolation_frames(model, a, b, steps))


def render_grid(model, images: Tensor, resolution: int, pairs_per_row: int = 4) -> Image.Image:
    """Super-resolution (paper Fig. 5, 17): each input upscaled bicubically beside the model's render."""
    rendered = render(model, images, resolution)
    return pairs_grid(upscale(images, resolution), rendered, pairs_per_row)


def save_grid(image: Image.Image, path: str | Path) -> Path:
    """Save a grid, enlarged (nearest neighbour) up to 4x when small so that pixels stay visible."""
    scale = max(1, min(4, 768 // max(image.width, image.height)))
    return save_image(image, path, scale=scale)


# -- the pictures of a run ------------------------------------------------------------------------
def interval_pictures(
    model,
    folder: Path,
    step: int,
    train: Tensor,
    test: Tensor,
    rows: list[dict[str, float]] | None = None,
    curves: Path | None = None,
) -> None:
    """Reconstructions of the first 32 test images, samples, interpolations and the latent histogram at
    ``step`` (into ``folder``), and the loss curves so far."""
    folder.mkdir(parents=True, exist_ok=True)
    save_grid(reconstruction_grid(model, test[:32]), folder / f"recon_step{step:07d}.png")
    latents = encode_images(model, train[:INTERVAL_FIT_IMAGES])
    gaussian = LatentGaussian.fit(latents)
    save_grid(sample_grid(model, gaussian=gaussian), folder / f"samples_step{step:07d}.png")
    a, b = _pairs(test)
    save_grid(interpolation_grid(model, a, b), folder / f"interpolation_step{step:07d}.png")
    plot_latent_histogram(latents, folder / f"latents_step{step:07d}.png", title=f"training latents at step {step}")
    if rows and curves is not None:
        plot_loss_curves(rows, curves)


def final_pictures(
    model,
    run: Path,
    latents: Tensor,
    gaussian: LatentGaussian,
    test: Tensor,
    rows: list[dict[str, float]],
    sample_rate: int | None = None,
) -> dict[str, float]:
    """The pictures at the end of ``gon fit``, from the final model's training ``latents`` and their ``gaussian``
    (``sample_rate``: audio's, for its sounds).

    Writes samples.png, interpolation.png, latent_histogram.png and loss_curves.png (and for audio
    audio.png + audio/*.wav, for volumes isosurfaces.png + slices.png: :func:`gon.report.signals.signal_pictures`);
    returns the latents' normality statistics (``latent_ks`` ...) for metrics.json.
    """
    save_grid(sample_grid(model, gaussian=gaussian), run / "samples.png")
    a, b = _pairs(test)
    save_grid(interpolation_grid(model, a, b), run / "interpolation.png")
    stats = plot_latent_histogram(
        latents, run / "latent_histogram.png", title=f"{len(latents)} training latents of the final model"
    )
    plot_loss_curves(rows, run / "loss_curves.png", title=run.name)
    if test.ndim != 4:  # audio or volumes: waveforms, spectrograms and sounds, or isosurfaces and slices
        signal_pictures(model, run, test, sample_rate)
    return {
        f"latent_{k}": round(v, 5) for k, v in stats.items() if k in ("ks", "ks_per_dim", "skew", "excess_kurtosis")
    }


def _pairs(test: Tensor, pairs: int = N_PAIRS) -> tuple[Tensor, Tensor]:
    """Pairs of distinct test images: (0, 1), (2, 3), ... (fewer pairs when the test set is small)."""
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
