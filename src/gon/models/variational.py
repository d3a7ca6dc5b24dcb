"""The variational GON (Sec. 3.3, Eq. 9-10): the conv GON's decoder behind Gaussian heads, trained on the ELBO."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gon.models.core import ConvModel
from gon.nets import GaussianHeads, kl_to_standard_normal, reparameterise


class VariationalGON(ConvModel):
    """The variational GON (Sec. 3.3, Eq. 9-10).

    F = decoder o reparameterise o (mu, log-variance heads). The latent descends
    BCE(x, F(z0)) - log N(z0; 0, 2I) from the origin; training minimises the negative ELBO
    BCE + KL(N(mu, sigma^2) || N(0, I)). ``encode`` returns the posterior mean mu, the space
    that ``decode`` and ``sample`` (z ~ N(0, I)) work in.

    Three choices make it work beyond 32x32 grayscale (the measurements behind them: docs/core.md, "The variational
    GON's three choices"): the inner pass decodes mu, not a draw, as evaluation does; the heads start
    ``HEADS_INIT_SCALE`` times smaller than PyTorch's default (z_hat grows with the image); the posterior starts
    narrow (the log-variance bias is ``LOGVAR_INIT``). The VAE shares the heads and this start.
    """

    HEADS_INIT_SCALE = 0.1
    LOGVAR_INIT = -6.0
    #: the seed of the posterior draw in evaluation: the logged test loss is a repeatable one-draw ELBO, like training's
    EVAL_SEED = 0

    def build_before_decoder(self) -> None:
        self.heads = GaussianHeads(self.latent_dim)
        with torch.no_grad():
            for head in (self.heads.mu, self.heads.logvar):
                head.weight.mul_(self.HEADS_INIT_SCALE)
            self.heads.logvar.bias.fill_(self.LOGVAR_INIT)

    def inner_loss(self, z0: Tensor, x: Tensor) -> Tensor:
        """BCE(x, F(z0)) - log N(z0; 0, 2I), F decoding the posterior mean."""
        bce = F.binary_cross_entropy(self.decoder(self.heads(z0)[0]), x, reduction="sum")
        return bce + z0.pow(2).sum() / 4  # -log N(z0; 0, 2I) up to a constant

    def gradient_latent(self, x: Tensor) -> Tensor:
        """The empirical-Bayes latent z_hat (before the heads)."""
        return super().encode(x)

    def encode(self, x: Tensor) -> Tensor:
        return self.heads(self.gradient_latent(x))[0]

    def training_noise(self, x: Tensor) -> dict[str, Tensor]:
        """The random numbers one training step on ``x`` draws (the posterior draw's standard normal), drawn now
        from the global generator as :meth:`loss_terms` would: ``loss_terms(x, **these)`` then draws none."""
        p = next(self.parameters())
        return {"noise": torch.randn(x.shape[0], self.latent_dim, device=p.device, dtype=p.dtype)}

    def loss_terms(self, x: Tensor, noise: Tensor | None = None) -> dict[str, Tensor]:
        """The negative ELBO (BCE of one posterior draw + KL), in both modes; in evaluation the draw is seeded.

        noise: that draw's standard normal [B, latent_dim] (from :meth:`training_noise`); None: drawn here."""
        mu, logvar = self.heads(self.gradient_latent(x))
        seeded = None if self.training or noise is not None else torch.Generator(mu.device).manual_seed(self.EVAL_SEED)
        z = reparameterise(mu, logvar, seeded, noise)
        bce = F.binary_cross_entropy(self.decoder(z), x, reduction="none").flatten(1).sum(1)
        kl = kl_to_standard_normal(mu, logvar)
        return {"loss": (bce + kl).mean(), "bce": bce.mean(), "kl": kl.mean()}

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """n images decoded from z ~ N(0, temperature^2 I)."""
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        return self.decode(temperature * z)
