"""The one idea of the paper: a latent is a gradient step on the data-fitting loss from the origin.

Eq. 8 of Bond-Taylor & Willcocks (2021):

    z = z0 - step_size * grad_{z0} L_in(x, F(z0)),     z0 = 0,

taken ``steps`` times, with the graph kept (``create_graph=True``) so that the outer
loss L_out(x, F(z)) trains F *through* the gradient: encoder and decoder are one network.
Every model in gon gets its latents from :func:`gradient_origin`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

#: ``inner_loss(z) -> scalar``: the data-fitting loss of a whole batch, *summed* over its
#: samples, so that each sample's gradient (its latent) does not depend on the batch.
InnerLoss = Callable[[Tensor], Tensor]


def gradient_origin(
    inner_loss: InnerLoss,
    z0: Tensor,
    *,
    steps: int = 1,
    step_size: float = 1.0,
    detach: bool = False,
    keep_z0: bool = True,
) -> Tensor:
    """Latents ``z`` from ``steps`` gradient-descent steps on ``inner_loss`` starting at ``z0``.

    detach: cut the second-order terms (the paper's "detached" ablation): the latent is
        then a constant to the outer loss and only the decoder learns from it.
    keep_z0: ``z = z0 - grad`` (a descent step from z0); ``False`` gives ``z = -grad``
        (the negative gradient alone, Fig. 11a). Identical when z0 = 0.

    Works under ``torch.no_grad()`` too (inference): the gradient is still taken, but no
    second-order graph is built and the result is detached.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    create_graph = torch.is_grad_enabled() and not detach
    z = z0
    with torch.enable_grad():
        for step in range(steps):
            if not create_graph or not z.requires_grad:
                z = z.detach().requires_grad_()
            (grad,) = torch.autograd.grad(inner_loss(z), z, create_graph=create_graph)
            start = z if (keep_z0 or step > 0) else torch.zeros_like(z)
            z = start - step_size * grad
    return z if create_graph else z.detach()


@dataclass(frozen=True)
class Origin:
    """Where the latent search starts and how it steps: the options every GON shares."""

    steps: int = 1
    step_size: float = 1.0
    detach: bool = False
    z0_std: float = 0.0  # z0 ~ N(0, z0_std^2 I); 0 is the paper's origin (Appendix C, Fig. 11)
    keep_z0: bool = True

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"origin steps must be >= 1, got {self.steps}")
        if self.step_size <= 0:
            raise ValueError(f"origin step_size must be > 0, got {self.step_size}")
        if self.z0_std < 0:
            raise ValueError(f"origin z0_std must be >= 0, got {self.z0_std}")

    def start(self, batch: int, dim: int, like: Tensor) -> Tensor:
        """z0 for a batch: the origin, or one independent draw per sample."""
        z0 = torch.zeros(batch, dim, device=like.device, dtype=like.dtype)
        if self.z0_std > 0:
            z0 = z0 + self.z0_std * torch.randn_like(z0)
        return z0

    def __call__(self, inner_loss: InnerLoss, z0: Tensor) -> Tensor:
        return gradient_origin(
            inner_loss, z0, steps=self.steps, step_size=self.step_size, detach=self.detach, keep_z0=self.keep_z0
        )


def sum_squared_error(x_hat: Tensor, x: Tensor) -> Tensor:
    """Squared error summed over every value of every sample: the default inner loss for images."""
    return (x_hat - x).pow(2).sum()
