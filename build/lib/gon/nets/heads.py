"""The variational GON's stochastic layer: two linear maps of the latent to a diagonal Gaussian (Eq. 10)."""

import torch
from torch import Tensor, nn


class GaussianHeads(nn.Module):
    """z [B, k] -> (mu [B, out], log-variance [B, out])."""

    def __init__(self, latent_dim: int, out_dim: int | None = None):
        super().__init__()
        self.mu = nn.Linear(latent_dim, out_dim or latent_dim)
        self.logvar = nn.Linear(latent_dim, out_dim or latent_dim)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(z), self.logvar(z)


def reparameterise(
    mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None, noise: Tensor | None = None
) -> Tensor:
    """A differentiable draw from N(mu, exp(logvar)) (Kingma & Welling, 2014); from ``generator`` when given.

    noise: the standard normal draw itself, drawn by the caller (e.g. outside ``torch.func.vmap``, which draws
    no numbers a separate run would); None: drawn here.
    """
    if noise is None and generator is None:
        noise = torch.randn_like(mu)
    elif noise is None:
        noise = torch.randn(mu.shape, generator=generator, device=mu.device)
    return mu + noise.to(mu.dtype) * torch.exp(0.5 * logvar)


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, in nats: [B]."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
