"""Using a trained GON's latent space: latent statistics, sampling, slerp and rendering at any size.

A plain or implicit GON has no prior to sample: as in the paper (Appendix D, Fig. 15) its
training latents are approximately normal (early stopping keeps them so), so a multivariate
normal fitted to them, :class:`LatentGaussian`, stands in for one. The variational GON samples
its own N(0, I) prior. Nothing here trains; every function runs without building a graph.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from gon.core.errors import GonError
from gon.storage.atomic import rust_readable

#: training images encoded to fit the latent Gaussian at the end of ``gon fit`` (k x k covariance:
#: thousands of samples are plenty for the latent sizes used here)
GAUSSIAN_FIT_IMAGES = 4096


class LatentGaussian:
    """N(mean, L L^T): a multivariate normal over latents, fitted to a model's training latents."""

    def __init__(self, mean: Tensor, scale_tril: Tensor):
        if mean.ndim != 1 or scale_tril.shape != (mean.shape[0], mean.shape[0]):
            raise ValueError(
                f"need mean [k] and scale_tril [k, k], got {tuple(mean.shape)} and {tuple(scale_tril.shape)}"
            )
        self.mean = mean.detach().float().cpu()  # [k]
        self.scale_tril = scale_tril.detach().float().cpu()  # [k, k], lower triangular

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @property
    def covariance(self) -> Tensor:
        return self.scale_tril @ self.scale_tril.T

    @classmethod
    def fit(cls, latents: Tensor, jitter: float = 1e-6) -> LatentGaussian:
        """Maximum-likelihood mean and covariance of latents [N, k] (N >= 2).

        A covariance that is singular (N <= k, or collapsed dimensions) gets the smallest diagonal
        jitter, growing tenfold from ``jitter`` times its mean variance, that makes it factorise.
        """
        if latents.ndim != 2 or latents.shape[0] < 1:
            raise ValueError(f"need latents [N >= 1, k], got {tuple(latents.shape)}")
        z = latents.detach().double().cpu()
        if z.shape[0] < 2:  # one image has no spread: a unit Gaussian around it still samples
            print("gon: warning: one training latent: sampling from N(z, I) (train on more images)", file=sys.stderr)
            return cls(z[0], torch.eye(z.shape[1], dtype=z.dtype))
        mean = z.mean(0)
        cov = (z - mean).T @ (z - mean) / z.shape[0]  # [k, k]
        scale = cov.diagonal().mean().clamp_min(1e-12)
        eye = torch.eye(cov.shape[0], dtype=cov.dtype)
        for k in range(12):
            tril, info = torch.linalg.cholesky_ex(cov + (0 if k == 0 else jitter * 10 ** (k - 1)) * scale * eye)
            if info == 0:
                return cls(mean, tril)
        raise GonError(
            "the training latents are not finite or degenerate (no covariance factorises): training diverged; "
            "a lower --lr may help"
        )

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """n draws [n, k] from N(mean, temperature^2 * covariance), on the CPU."""
        eps = torch.randn(n, self.dim, generator=generator)
        return self.mean + temperature * eps @ self.scale_tril.T

    def save(self, path: str | Path) -> Path:
        save_file(
            {"mean": self.mean.contiguous(), "scale_tril": self.scale_tril.contiguous()},
            str(path),
            metadata={"format": "gon-latent-gaussian"},
        )
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> LatentGaussian:
        try:
            with rust_readable(path) as name:
                tensors = load_file(name)
            return cls(tensors["mean"], tensors["scale_tril"])
        except FileNotFoundError:
            raise GonError(f"latent statistics file {path} does not exist") from None
        except (SafetensorError, KeyError, ValueError, OSError) as e:
            raise GonError(f"latent statistics file {path} is not valid: {e}") from None

    def __repr__(self) -> str:
        return f"LatentGaussian(dim={self.dim}, mean_norm={self.mean.norm():.3g}, trace={self.covariance.trace():.3g})"


def ks_distance(values: Tensor) -> float:
    """Kolmogorov-Smirnov distance between values [n] and the normal fitted to them (mean, std).

    0 is a perfect fit; unlike a p-value it does not go to 0 as n grows, so runs compare fairly.
    """
    x = values.double().flatten()
    n = x.numel()
    std = x.std(unbiased=False)
    if n < 2 or std == 0:
        return 1.0
    cdf = torch.special.ndtr((x.sort().values - x.mean()) / std)
    ranks = torch.arange(1, n + 1, dtype=x.dtype)
    return max((ranks / n - cdf).max().item(), (cdf - (ranks - 1) / n).max().item())


def latent_normality(latents: Tensor) -> dict[str, float]:
    """How normal latents [N, k] are: the normality statistics a run reports.

    ``ks``: KS distance of all values pooled (the paper's histogram) to their fitted normal;
    ``ks_per_dim``: the mean over dimensions of each one's KS distance (each marginal alone, so
    differing scales across dimensions do not count as non-normality); ``skew`` and
    ``excess_kurtosis`` of the pooled values (both 0 for a normal).
    """
    z = latents.detach().double().cpu()
    x = z.flatten()
    std = x.std(unbiased=False).clamp_min(1e-300)
    u = (x - x.mean()) / std
    return {
        "ks": ks_distance(x),
        "ks_per_dim": sum(ks_distance(z[:, j]) for j in range(z.shape[1])) / z.shape[1],
        "skew": u.pow(3).mean().item(),
        "excess_kurtosis": u.pow(4).mean().item() - 3,
        "mean": x.mean().item(),
        "std": x.std(unbiased=False).item(),
    }


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's weights: where its inputs must go."""
    return next(model.parameters()).device


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.device]:
    """Eval mode and no autograd graph inside the block (a GON still takes its gradient inside); yields the
    model's device. The model's previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model_device(model)
    finally:
        model.train(was_training)


def encode_images(
    model, images: Tensor, batch_size: int = 256, progress: Callable[[int], None] | None = None
) -> Tensor:
    """Latents [N, k] of images [N, C, H, W], batch by batch in eval mode, on the CPU.

    ``progress(n)`` is called after each batch with the number of images it held.
    """
    device, out = model_device(model), []
    with eval_mode(model):
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(device)
            out.append(model.encode(x).cpu())
            if progress:
                progress(len(x))
    return torch.cat(out) if out else torch.empty(0, getattr(model, "latent_dim", 0))


def is_variational(model) -> bool:
    """Whether the model has its own N(0, I) prior to sample (the variational GON)."""
    return callable(getattr(model, "sample", None))


def sample(
    model, n: int, temperature: float = 1.0, seed: int | None = None, gaussian: LatentGaussian | None = None
) -> Tensor:
    """n images [n, C, H, W]: the prior of a variational model, else its fitted latent Gaussian.

    ``gaussian`` defaults to ``model.latent_gaussian`` (set by ``gon.load`` from a saved model).
    """
    if n < 1:
        raise GonError(f"number of samples must be >= 1, got {n}")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    with eval_mode(model):
        if is_variational(model):
            if generator is None or model_device(model).type == "cpu":
                return model.sample(n, temperature=temperature, generator=generator).cpu()
            z = torch.randn(n, model.latent_dim, generator=generator)  # CPU draws: a seed means the same on any device
            return decode(model, temperature * z)
        gaussian = gaussian or getattr(model, "latent_gaussian", None)
        if gaussian is None:
            raise GonError(
                f"this {type(model).__name__} has no latent statistics to sample from: export it from its "
                "run with `gon export RUN DIR` (which fits them on the training latents)"
            )
        return decode(model, gaussian.sample(n, temperature, generator))


def slerp(a: Tensor, b: Tensor, t: Tensor | int) -> Tensor:
    """Spherical interpolation (the paper's Fig. 6) between latents a, b [B, k] at fractions t [T].

    ``t`` may be a number of evenly spaced steps from 0 to 1 (both ends included). Returns
    [B, T, k]: the great-circle path between the directions of a and b, its norm interpolated
    linearly. (Slerp applied to the latents themselves, as often written, swings far outside both
    norms when they differ and the latents are nearly opposite: norm 11.6 between latents of norm
    1 and 3 that are 170 degrees apart.) Pairs (almost) parallel or opposite, or a zero latent, fall
    back to a straight line.
    """
    if isinstance(t, int):
        if t < 2:
            raise ValueError(f"slerp needs at least 2 steps, got {t}")
        t = torch.linspace(0, 1, t)
    t = t.to(a.device, a.dtype)[None, :, None]  # [1, T, 1]
    a_, b_ = a[:, None, :], b[:, None, :]  # [B, 1, k]
    norm_a, norm_b = a_.norm(dim=-1, keepdim=True), b_.norm(dim=-1, keepdim=True)  # [B, 1, 1]
    tiny = torch.finfo(a.dtype).tiny
    unit_a, unit_b = a_ / norm_a.clamp_min(tiny), b_ / norm_b.clamp_min(tiny)
    omega = torch.acos((unit_a * unit_b).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    straight = (so.abs() < 1e-6) | (norm_a == 0) | (norm_b == 0)
    safe = torch.where(straight, torch.ones_like(so), so)
    direction = (torch.sin((1 - t) * omega) * unit_a + torch.sin(t * omega) * unit_b) / safe
    return torch.where(straight, (1 - t) * a_ + t * b_, direction * ((1 - t) * norm_a + t * norm_b))


#: pixels x images decoded at once when rendering: bounds the memory of the activations (about 1 GB for
#: a 4x256 SIREN, four 256x256 images at a time)
RENDER_CHUNK_PIXELS = 1 << 18


def decode(model, z: Tensor, size: tuple[int, ...] | None = None, chunk_pixels: int = RENDER_CHUNK_PIXELS) -> Tensor:
    """Decode latents z [N, k] to images [N, C, H, W] (signals [N, C, *grid]) on the CPU, a chunk at a time.

    ``size`` (H, W), or one length per grid dimension, renders an implicit model at any resolution; other
    models only decode at their own size. Chunks hold ``chunk_pixels // (H * W)`` images (at least one), so a large
    resolution never holds the activations of the whole batch at once.
    """
    if size is not None and not model.renders_any_size:
        raise GonError(
            f"a {type(model).__name__} decodes only at its training size; rendering at "
            f"{'x'.join(map(str, size))} needs an implicit GON (--model implicit)"
        )
    device, out = model_device(model), []
    per_chunk = max(1, chunk_pixels // math.prod(size)) if size else 256
    with eval_mode(model):
        for start in range(0, len(z), per_chunk):
            zc = z[start : start + per_chunk].to(device)
            out.append((model.decode(zc, size=size) if size else model.decode(zc)).float().cpu())
    return torch.cat(out)


def render(model, images: Tensor, size: int | tuple[int, ...], chunk_pixels: int = RENDER_CHUNK_PIXELS) -> Tensor:
    """Super-resolution (paper Fig. 5, 17): encode signals at the training size, render at ``size``.

    images [N, C, *grid] -> [N, C, *size], clamped to [0, 1]; an int ``size`` is that length along
    every grid dimension (images 256 -> 256x256, volumes 64 -> 64^3, audio 32000 -> 32,000 samples).
    """
    size = (size,) * (images.ndim - 2) if isinstance(size, int) else tuple(size)
    if not model.renders_any_size:
        raise GonError(
            f"a {type(model).__name__} cannot render at another resolution: super-resolution "
            "needs an implicit GON (--model implicit)"
        )
    if min(size) < 1:
        raise GonError(f"resolution must be >= 1, got {size}")
    z = encode_images(model, images)
    return decode(model, z, size, chunk_pixels).clamp(0, 1)
