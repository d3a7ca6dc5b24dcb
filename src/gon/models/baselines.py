"""The paper's baselines (Tables 1-2), built on exactly the decoders of the GONs they are compared with.

- :class:`AutoEncoder`: a conv encoder mirroring the decoder, then the GON's decoder (twice the parameters).
- :class:`TiedAutoEncoder`: the encoder is the decoder run backwards with its transposed weights.
- :class:`GLO`: one persistent latent per training image, learnt with the decoder (Bojanowski et al., 2018);
  unseen images get theirs by optimisation with the decoder frozen.
- :class:`VAE`: an encoder in front of the variational GON's heads and decoder, trained on the same ELBO.
- :class:`MLPAutoEncoder`: an MLP autoencoder over signals of any grid dimension, the encoder-based baseline of the
  1-D and 3-D implicit GONs (audio, volumes) at a matched parameter count.

The detached and multi-step GON rows of Table 1 are not classes: they are ``GON(detach=True)`` and
``GON(steps=10, step_size=0.1)``. Every baseline has the shared API of
:class:`~gon.models.GradientOriginModel` (encode / decode / reconstruct / loss / loss_terms).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gon.core.settings import Info
from gon.models.core import ConvModel, GradientOriginModel, per_image_sse, takes_options
from gon.models.variational import VariationalGON
from gon.nets import make_activation
from gon.nets.conv import make_norm
from gon.origin import sum_squared_error


class AutoEncoder(ConvModel):
    """Table 1's "AE": ``ConvEncoder`` (the decoder mirrored) -> the GON's ``ConvDecoder``."""

    gradient_encoder = False

    @takes_options
    def __init__(self, **options):
        super().__init__(**options)
        self.encoder = self.mirrored_encoder()

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # [B, C, S, S] -> [B, latent_dim]


class TiedAutoEncoder(ConvModel):
    """Table 1's "TiedAE" (Gedeon, 1998): the encoder applies the decoder's transposed convolutions in reverse.

    A ``ConvTranspose2d`` weight [in, out, k, k] used by ``conv2d`` with the same stride and
    padding is the adjoint map out -> in, so the decoder's weights encode too; the encoder has
    only its own biases and normalisation layers.
    """

    gradient_encoder = False

    @takes_options
    def __init__(self, **options):
        super().__init__(**options)
        convs = self._convs()
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(c.in_channels)) for c in convs)
        self.norms = nn.ModuleList(make_norm(self.conv_options["norm"], c.in_channels) for c in convs[:-1])
        self.activation = make_activation(self.conv_options["activation"])

    def _convs(self) -> list[nn.ConvTranspose2d]:
        """The decoder's transposed convolutions, output layer first."""
        return [m for m in self.decoder.main if isinstance(m, nn.ConvTranspose2d)][::-1]

    def encode(self, x: Tensor) -> Tensor:
        h = x  # [B, C, S, S] -> ... -> [B, latent_dim, 1, 1]
        for i, (conv, bias) in enumerate(zip(self._convs(), self.biases)):
            h = F.conv2d(h, conv.weight, bias, stride=conv.stride, padding=conv.padding)
            if i < len(self.norms):
                h = self.activation(self.norms[i](h))
        return h.flatten(1)


GLO_FIT_STEPS = 100  # Adam steps that fit an unseen image's code (Table 1's GLO evaluation)


class GLO(ConvModel):
    """Generative Latent Optimisation: a learnt latent per training image, decoded by the GON's decoder.

    ``loss_terms(x, index)`` trains the codes of training images ``index`` jointly with the
    decoder, on the GON's loss (summed squared error; no projection onto a sphere, as in the
    paper's Table 1). Adam moves every parameter by about ``lr`` a step and each code is seen once
    an epoch, so the codes are stored divided by ``code_scale``: they learn ``code_scale`` times
    faster than the decoder, GLO's separate latent learning rate without a second optimiser.

    Unseen images (``encode``) get codes by ``fit_steps`` Adam steps of size ``fit_lr`` on the
    summed squared error from the origin, the decoder frozen: this is what makes GLO orders of
    magnitude slower to evaluate than the single-pass models.

    Defaults chosen on 4,096 Fashion-MNIST images, 640 steps at lr 1e-3: codes' training error
    11.1 at ``code_scale`` 100 against 24.1 at 10 and 10.9 at 1,000; 100 fit steps of 0.3 reach a
    test error within 7% of 200 steps.
    """

    batch_fields = ("index",)
    gradient_encoder = False
    OPTION_INFO = {
        "num_images": Info("training images, one code each (default: the data's)", low=1),
        "code_scale": Info("how much faster the codes learn than the decoder", low=0, low_open=True),
        "fit_steps": Info("Adam steps that fit an unseen image's code", low=1),
        "fit_lr": Info("learning rate of those steps", low=0, low_open=True),
    }

    @takes_options
    def __init__(
        self,
        num_images: int,
        latent_dim: int = 32,
        code_scale: float = 100.0,
        fit_steps: int = GLO_FIT_STEPS,
        fit_lr: float = 0.3,
        **options,
    ):
        super().__init__(latent_dim, **options)
        self.code_scale, self.fit_steps, self.fit_lr = code_scale, fit_steps, fit_lr
        self.codes = nn.Parameter(torch.randn(num_images, latent_dim) / code_scale)  # codes ~ N(0, I) at start

    def code(self, index: Tensor) -> Tensor:
        """The persistent codes of training images ``index`` [B] -> [B, latent_dim]."""
        return self.codes[index] * self.code_scale

    def encode(self, x: Tensor) -> Tensor:
        """Codes for (unseen) images: Adam on each image's summed squared error, the decoder frozen."""
        z = torch.zeros(x.shape[0], self.latent_dim, device=x.device, dtype=x.dtype, requires_grad=True)
        opt = torch.optim.Adam([z], lr=self.fit_lr)
        with torch.enable_grad():
            for _ in range(self.fit_steps):
                # summed over images: each image's gradient, hence its code, ignores the rest of the batch
                (z.grad,) = torch.autograd.grad(sum_squared_error(self.decode(z), x), z)
                opt.step()
        return z.detach()

    def loss_terms(self, x: Tensor, index: Tensor | None = None) -> dict[str, Tensor]:
        """The training loss on the codes of training images ``index``.

        ``index`` None: in training mode, ``x`` is taken to be training images 0..B-1 (a full-batch
        run); in eval mode, ``x`` are unseen images and their codes are fitted (``encode``).
        """
        if index is None:
            if not self.training:
                return {"loss": per_image_sse(self.reconstruct(x), x).mean()}
            if x.shape[0] > self.codes.shape[0]:
                raise ValueError(f"GLO has codes for {self.codes.shape[0]} images, got a batch of {x.shape[0]}")
            index = torch.arange(x.shape[0], device=x.device)
        return {"loss": per_image_sse(self.decode(self.code(index)), x).mean()}

    def loss(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        return self.loss_terms(x, index)["loss"]

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, codes={self.codes.shape[0]}, fit_steps={self.fit_steps}"


class VAE(VariationalGON):
    """Table 2's VAE: ``ConvEncoder`` -> the variational GON's Gaussian heads -> its decoder.

    Only where the heads' input comes from differs (an encoder instead of the gradient at the
    origin); the ELBO, ``encode`` (the posterior mean) and ``sample`` are the variational GON's.
    """

    gradient_encoder = False

    @takes_options
    def __init__(self, **options):
        super().__init__(**options)
        self.encoder = self.mirrored_encoder()

    def gradient_latent(self, x: Tensor) -> Tensor:
        """The encoder's features [B, latent_dim], in place of the GON's gradient latent."""
        return self.encoder(x)


class MLPAutoEncoder(GradientOriginModel):
    """flatten -> ``hidden`` -> latent -> ``hidden`` -> values (ELU between): an autoencoder for signals [B, C, *grid]
    of any grid dimension (``image_size`` as :class:`~gon.models.ImplicitGON` takes it).

    The smallest honest encoder-based baseline for an implicit GON on audio or volumes: a conv AE needs images, and
    its parameters grow with the signal (2 x C x prod(grid) x hidden), so ``hidden`` sets the count to match:
    a 4x256 SIREN on 2,400-sample clips has 206,337 parameters, ``MLPAutoEncoder(hidden=42, image_size=[2400])``
    206,804.
    """

    any_grid = True  # trains on signals of any grid dimension d
    gradient_encoder = False
    OPTION_INFO = {
        "hidden": Info("units of the encoder's and the decoder's hidden layer", low=1),
        "channels": Info("signal channels (default: the data's)", low=1),
        "image_size": Info("the grid: an int (square image) or one length per dimension (default: the data's)", low=1),
    }

    @takes_options
    def __init__(self, latent_dim: int = 32, hidden: int = 64, channels: int = 1, image_size: int | list[int] = 28):
        super().__init__(latent_dim)
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if not size:  # the sizes' bounds are checked with the other options
            raise ValueError(f"MLPAutoEncoder needs positive sizes, got image_size={image_size}")
        self.image_size, self.channels = size, channels
        values = channels * math.prod(size)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(values, hidden), nn.ELU(), nn.Linear(hidden, latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ELU(), nn.Linear(hidden, values))

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # [B, C, *grid] -> [B, latent_dim]

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z).view(-1, self.channels, *self.image_size)

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, grid={self.image_size}"
