"""Test-set metrics, computed batch by batch with the model's own methods.

- ``reconstruction_metrics``: summed squared error per image (Table 1), per-pixel MSE, PSNR.
- ``elbo_bits_per_dim``: the variational models' negative ELBO in bits per dimension (Table 2).
- ``discretised_elbo_bits_per_dim``: the same ELBO under a likelihood over 256 pixel levels (Table 2's scale).
- ``classification_accuracy``: the classifier GON's test accuracy (Eq. 13).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from gon.models import GradientOriginModel, VariationalGON, per_image_sse
from gon.nets import kl_to_standard_normal, reparameterise
from gon.sampling import eval_mode


def _batches(tensors: list[Tensor], batch_size: int, device: torch.device) -> Iterator[list[Tensor]]:
    for start in range(0, len(tensors[0]), batch_size):
        yield [t[start : start + batch_size].to(device) for t in tensors]


def reconstruction_metrics(model: GradientOriginModel, images: Tensor, batch_size: int = 256) -> dict[str, float]:
    """Mean summed squared error per image (``sse``), per-pixel MSE (``mse``) and PSNR in dB over ``images``.

    PSNR is 10 log10(1 / mse) of the mean per-pixel MSE, for pixels in [0, 1].
    """
    with eval_mode(model) as device:
        total_sse = sum(
            per_image_sse(model.reconstruct(x), x).sum().item() for (x,) in _batches([images], batch_size, device)
        )
    sse = total_sse / max(len(images), 1)
    mse = sse / images[0].numel()
    return {"sse": sse, "mse": mse, "psnr": 10 * math.log10(1 / mse) if mse > 0 else float("inf")}


def elbo_bits_per_dim(
    model: VariationalGON, images: Tensor, samples: int = 1, batch_size: int = 256, seed: int = 0
) -> dict[str, float]:
    """The negative ELBO of ``images`` in bits per dimension (lower is better), and its two parts.

    For an image x in [0, 1]^D (D = C * H * W, at the model's resolution) and the encoder's
    posterior q(z | x) = N(mu, sigma^2) (a variational GON's heads on its gradient latent, or a
    VAE's on its encoder's features):

        -ELBO(x) = E_q[ sum_d BCE(x_d, p_d(z)) ] + KL(q(z | x) || N(0, I))       (nats)
        BCE(x, p) = -x log p - (1 - x) log(1 - p)

    i.e. the Bernoulli log-likelihood applied to grey levels in [0, 1], as the paper's BCE (not a
    normalised density for x strictly between 0 and 1), with the decoder's output p. The
    expectation is estimated with ``samples`` draws z = mu + sigma * eps (seeded). Reported:
    ``elbo_bpd`` = mean over images of -ELBO(x) / (D ln 2), split into ``bce_bpd`` + ``kl_bpd``.
    """
    if not isinstance(model, VariationalGON):
        raise TypeError(f"the ELBO needs a variational model (vgon, vae), not {type(model).__name__}")
    bce_total = kl_total = 0.0
    with torch.random.fork_rng(), eval_mode(model) as device:  # seeded draws; the caller's RNG untouched
        torch.manual_seed(seed)
        for (x,) in _batches([images], batch_size, device):
            mu, logvar = model.heads(model.gradient_latent(x))  # the posterior q(z | x), [B, k] each
            for _ in range(samples):
                p = model.decode(reparameterise(mu, logvar))
                bce_total += F.binary_cross_entropy(p, x, reduction="sum").item() / samples
            kl_total += kl_to_standard_normal(mu, logvar).sum().item()
    per_dim = len(images) * images[0].numel() * math.log(2)
    bce, kl = bce_total / per_dim, kl_total / per_dim
    return {"elbo_bpd": bce + kl, "bce_bpd": bce, "kl_bpd": kl}


LEVELS = 256


def discretised_logistic_log_prob(x: Tensor, mean: Tensor, log_scale: float) -> Tensor:
    """log P(x) per pixel for x on the 256-level grid {0, 1/255, ..., 1}: a logistic(mean, scale) density
    integrated over each level's bin, the end bins stretched to +-infinity (as PixelCNN++ does)."""
    half_bin = 0.5 / (LEVELS - 1)
    inv_scale = math.exp(-log_scale)
    centred = x - mean
    plus, minus = inv_scale * (centred + half_bin), inv_scale * (centred - half_bin)
    log_cdf_plus = plus - F.softplus(plus)  # log sigmoid(plus): the bottom bin (x = 0)
    log_survival_minus = -F.softplus(minus)  # log (1 - sigmoid(minus)): the top bin (x = 1)
    mass = torch.sigmoid(plus) - torch.sigmoid(minus)
    middle = centred * inv_scale  # where the bin's mass underflows, density x bin width instead
    log_density = middle - log_scale - 2 * F.softplus(middle) + math.log(2 * half_bin)
    interior = torch.where(mass > 1e-5, torch.log(mass.clamp_min(1e-12)), log_density)
    return torch.where(x < half_bin, log_cdf_plus, torch.where(x > 1 - half_bin, log_survival_minus, interior))


def _posterior_draw(model: VariationalGON, x: Tensor) -> tuple[Tensor, Tensor]:
    """One decoded posterior draw p(z), z ~ q(z | x), and KL(q || N(0, I)) per image."""
    mu, logvar = model.heads(model.gradient_latent(x))
    return model.decode(reparameterise(mu, logvar)), kl_to_standard_normal(mu, logvar)


def discretised_elbo_bits_per_dim(
    model: VariationalGON, images: Tensor, fit_images: Tensor, batch_size: int = 256, seed: int = 0
) -> dict[str, float]:
    """The negative ELBO in bits per dimension under a likelihood over the 256 pixel levels (lower is better).

    The paper reports Table 2 in bits/dim on the scale of discrete likelihoods (Fashion-MNIST 3.30,
    where a uniform guess costs 8); gon's Bernoulli ELBO (:func:`elbo_bits_per_dim`) is a different
    quantity (~0.5), since BCE on grey levels is not a probability of the 8-bit image. Here each
    pixel, rounded to its level k/255, has the discretised logistic probability around the decoder's
    output (the mean) with one scale for the whole model, the maximum-likelihood scale on
    ``fit_images`` (training images: the test set stays untouched):

        -ELBO(x) = E_q[ -sum_d log P(x_d | p_d(z), s) ] + KL(q(z | x) || N(0, I))      (nats)

    Reported: ``elbo256_bpd`` (per dimension, in bits), its parts ``nll256_bpd`` + ``kl_bpd``,
    and ``log_scale``. One posterior draw per image, seeded.
    """
    if not isinstance(model, VariationalGON):
        raise TypeError(f"the ELBO needs a variational model (vgon, vae), not {type(model).__name__}")

    def quantised(x: Tensor) -> Tensor:
        return torch.round(x * (LEVELS - 1)) / (LEVELS - 1)

    with torch.random.fork_rng(), eval_mode(model) as device:
        torch.manual_seed(seed)
        fit = [(quantised(x), _posterior_draw(model, x)[0]) for (x,) in _batches([fit_images], batch_size, device)]

        def fit_nll(log_scale: float) -> float:
            return -sum(discretised_logistic_log_prob(x, p, log_scale).sum().item() for x, p in fit)

        log_scale = _golden_minimum(fit_nll, -9.0, 1.0)
        nll_total = kl_total = 0.0
        for (x,) in _batches([images], batch_size, device):
            p, kl = _posterior_draw(model, x)
            nll_total -= discretised_logistic_log_prob(quantised(x), p, log_scale).sum().item()
            kl_total += kl.sum().item()
    per_dim = len(images) * images[0].numel() * math.log(2)
    nll, kl = nll_total / per_dim, kl_total / per_dim
    return {"elbo256_bpd": nll + kl, "nll256_bpd": nll, "kl_bpd": kl, "log_scale": log_scale}


def _golden_minimum(f, low: float, high: float, tolerance: float = 1e-3) -> float:
    """The minimum of a unimodal ``f`` on [low, high] by golden-section search."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tolerance:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2


def classification_accuracy(model: torch.nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """The fraction of ``images`` whose predicted class ``model.classify(x)`` [B] equals its label."""
    with eval_mode(model) as device:
        correct = sum((model.classify(x) == y).sum().item() for x, y in _batches([images, labels], batch_size, device))
    return correct / max(len(images), 1)
