"""The one idea of the paper: a latent is a gradient step on the data-fitting loss from the origin.

Eq. 8 of Bond-Taylor & Willcocks (2021):

    z = z0 - step_size * grad_{z0} L_in(x, F(z0)),     z0 = 0,

taken ``steps`` times, with the graph kept (``create_graph=True``) so that the outer
loss L_out(x, F(z)) trains F *through* the gradient: encoder and decoder are one network.
Every model in gon gets its latents from :func:`gradient_origin`.

The exact shared-origin pass (:func:`shared_origin_gradient`) computes the same first step
faster for networks ``F(c, z) = trunk(h0(c) + W_z z)`` evaluated over many coordinates ``c``
(an implicit GON): at a z0 shared by the whole batch the inner forward pass is the same for
every sample, so it runs once, and each sample's gradient is a product of its residual with one
Jacobian of the trunk per output channel.

Under :func:`functional_gradients` the same step takes its inner gradient with ``torch.func.grad``, which
composes with ``torch.func.vmap`` (``torch.autograd.grad`` does not): the stacked ensemble (gon.training.ensemble)
trains several seeds of a model at once through this one Eq. 8.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from gon.core.settings import Info, check_options, options_of

#: ``inner_loss(z) -> scalar``: the data-fitting loss of a whole batch, *summed* over its
#: samples, so that each sample's gradient (its latent) does not depend on the batch.
InnerLoss = Callable[[Tensor], Tensor]
#: ``first_gradient(create_graph) -> grad [B, k]``: the inner loss's gradient at z0, by another exact route
FirstGradient = Callable[[bool], Tensor]


def gradient_origin(
    inner_loss: InnerLoss,
    z0: Tensor,
    *,
    steps: int = 1,
    step_size: float = 1.0,
    detach: bool = False,
    keep_z0: bool = True,
    first_gradient: FirstGradient | None = None,
) -> Tensor:
    """Latents ``z`` from ``steps`` gradient-descent steps on ``inner_loss`` starting at ``z0``.

    detach: cut the second-order terms (the paper's "detached" ablation): the latent is
        then a constant to the outer loss and only the decoder learns from it.
    keep_z0: ``z = z0 - grad`` (a descent step from z0); ``False`` gives ``z = -grad``
        (the negative gradient alone, Fig. 11a). Identical when z0 = 0.
    first_gradient: computes the first step's gradient (at z0) instead of autograd on
        ``inner_loss``; it must return exactly that gradient (e.g. :func:`shared_origin_gradient`).
        Later steps start from per-sample latents and always use ``inner_loss``.

    Works under ``torch.no_grad()`` too (inference): the gradient is still taken, but no
    second-order graph is built and the result is detached.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    create_graph = torch.is_grad_enabled() and not detach
    functional = _FUNCTIONAL.get()
    z = z0
    with torch.enable_grad():
        for step in range(steps):
            if functional:  # inside torch.func transforms; a first_gradient shortcut is autograd, so not here
                grad = torch.func.grad(inner_loss)(z)
                grad = grad if create_graph else grad.detach()
            elif step == 0 and first_gradient is not None:
                grad = first_gradient(create_graph)
            else:
                if not create_graph or not z.requires_grad:
                    z = z.detach().requires_grad_()
                (grad,) = torch.autograd.grad(inner_loss(z), z, create_graph=create_graph)
            start = z if (keep_z0 or step > 0) else torch.zeros_like(z)
            z = start - step_size * grad
    return z if create_graph else z.detach()


_FUNCTIONAL = contextvars.ContextVar("gon_functional_gradients", default=False)


@contextlib.contextmanager
def functional_gradients() -> Iterator[None]:
    """Within: :func:`gradient_origin` takes the inner gradient by ``torch.func.grad`` (differentiable by the
    transforms and by autograd around them), so a model's step can run under ``torch.func.vmap``."""
    token = _FUNCTIONAL.set(True)
    try:
        yield
    finally:
        _FUNCTIONAL.reset(token)


MAX_ORIGIN_STEPS = 1000  # the paper's multi-step GONs take 10


@dataclass(frozen=True)
class Origin:
    """Where the latent search starts and how it steps: the options every GON shares."""

    #: help and bounds of the fields below, also every GON's origin options (:func:`gon.core.settings.options_of`)
    OPTION_INFO = {
        "steps": Info("gradient steps from the origin", low=1, high=MAX_ORIGIN_STEPS),
        "step_size": Info("size of each latent step", low=0, low_open=True),
        "detach": Info("cut the second-order terms (the paper's detached ablation)"),
        "z0_std": Info("start from z0 ~ N(0, std^2) instead of the origin (Fig. 11)", low=0),
        "keep_z0": Info("z = z0 - grad; off: z = -grad, the negative gradient alone (Fig. 11a)"),
    }

    steps: int = 1
    step_size: float = 1.0
    detach: bool = False
    z0_std: float = 0.0  # z0 ~ N(0, z0_std^2 I); 0 is the paper's origin (Appendix C, Fig. 11)
    keep_z0: bool = True

    def __post_init__(self):
        check_options(options_of(type(self)), vars(self), owner="Origin")  # an OptionError, also a ValueError

    @property
    def shared_start(self) -> bool:
        """Whether every sample of a batch starts from the same z0 (the shared-origin pass needs it)."""
        return self.z0_std == 0

    def start(self, batch: int, dim: int, like: Tensor) -> Tensor:
        """z0 for a batch: the origin, or one independent draw per sample."""
        z0 = torch.zeros(batch, dim, device=like.device, dtype=like.dtype)
        if self.z0_std > 0:
            z0 = z0 + self.z0_std * torch.randn_like(z0)
        return z0

    def __call__(self, inner_loss: InnerLoss, z0: Tensor, first_gradient: FirstGradient | None = None) -> Tensor:
        return gradient_origin(
            inner_loss,
            z0,
            steps=self.steps,
            step_size=self.step_size,
            detach=self.detach,
            keep_z0=self.keep_z0,
            first_gradient=first_gradient,
        )


def shared_origin_gradient(
    trunk: Callable[[Tensor], Tensor],
    h0: Tensor,
    lift: Tensor,
    output_loss: Callable[[Tensor], Tensor],
    batch: int,
    create_graph: bool = True,
) -> Tensor:
    """The inner gradient of every sample at a z0 shared by the batch, with one forward pass.

    The network is ``F(c, z) = trunk(h0(c) + lift @ (z - z0))``, ``trunk`` acting on each of the n
    rows (coordinates) of its input independently. At z0 every sample sees the same output
    ``y = trunk(h0)``, so with the residual ``r_b = dL/dy`` of sample b (cheap: elementwise) and
    ``G_o = d y_o / d h0`` (one backward pass per output channel o over the n rows),

        grad_z L_b = lift^T sum_{c, o} r_b[c, o] G_o[c]        (the chain rule, row by row)

    which is exactly what the naive double backward over all B x n rows computes.

    trunk: h [n, H] -> y [n, C]
    h0: [n, H] pre-activation at the shared z0 (e.g. W_c c + b + W_z z0)
    lift: [H, k] how the latent enters the pre-activation (W_z)
    output_loss: y [B, n, C] -> scalar, the inner loss summed over the batch
    batch: B; returns grad [B, k]. ``create_graph=True`` keeps it differentiable (training).
    """
    with torch.enable_grad():
        h = h0 if (create_graph and h0.requires_grad) else h0.detach().requires_grad_()
        y = trunk(h)  # (n, C): the one inner forward pass
        y_batch = y.unsqueeze(0).expand(batch, *y.shape)  # (B, n, C), a view: no copy
        (residual,) = torch.autograd.grad(output_loss(y_batch), y_batch, create_graph=create_graph, retain_graph=True)
        channels = y.shape[-1]
        jacobians = torch.stack(
            [  # (C, n, H): d y[c, o] / d h[c], row by row
                torch.autograd.grad(
                    y[:, o].sum(), h, create_graph=create_graph, retain_graph=o + 1 < channels or create_graph
                )[0]
                for o in range(channels)
            ]
        )
        pulled = torch.einsum("bno,onh->bh", residual, jacobians)  # (B, H): dL_b / d h, summed over rows
        grad = pulled @ lift  # (B, k)
    return grad if create_graph else grad.detach()


def sum_squared_error(x_hat: Tensor, x: Tensor) -> Tensor:
    """Squared error summed over every value of every sample: the default inner loss for images."""
    return (x_hat - x).pow(2).sum()
