"""GONs for other tasks (Sec. 3.5): a classifier on the gradient latent (Eq. 13) and modality conversion.

Both only change the losses around the origin step: the classifier puts a linear layer with
softmax on the latent ``z = -grad_{z0} L(x, F(z0))`` and trains on cross-entropy (alone or with
the reconstruction); conversion takes the inner loss on a *source* signal (a masked or
downsampled image) and the outer loss on the *target* (the full image), so one gradient step
from the origin inpaints or super-resolves. :class:`ConversionAE` is the matching baseline: the
same decoder as an autoencoder whose encoder reads the source.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gon.core.settings import Info
from gon.models.baselines import AutoEncoder
from gon.models.core import GON, per_image_sse, takes_options
from gon.origin import sum_squared_error

#: source signals of modality conversion, by name (see :func:`degrade`)
SOURCES = ("mask", "downsample")
#: the conversion models' own option
SOURCE_INFO = {"source": Info("the source signal the latent is computed from", choices=SOURCES)}
DOWNSAMPLE = 4  # 28x28 -> 7x7 as in the paper's example; 32x32 -> 8x8


def degrade(x: Tensor, source: str) -> Tensor:
    """The source signal of target images ``x`` [B, C, H, W], at the same size.

    mask: the centre square of half the side set to 0 (inpainting).
    downsample: 4x4 blocks averaged, then shown blockwise (a 4x lower resolution image).
    """
    if source == "mask":
        h, w = x.shape[-2:]
        keep = torch.ones_like(x)
        keep[..., h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2] = 0
        return x * keep
    if source == "downsample":
        return F.interpolate(F.avg_pool2d(x, DOWNSAMPLE), scale_factor=DOWNSAMPLE, mode="nearest")
    raise ValueError(f"unknown conversion source {source!r}; choose from {', '.join(SOURCES)}")


class ClassifierGON(GON):
    """Eq. 13: ``C_x = CE(f(z), y)`` with ``z`` the GON's gradient latent and ``f`` linear + softmax.

    ``recon_weight`` 0 trains on cross-entropy alone (the decoder learns only through the
    gradient it provides); > 0 adds that multiple of the reconstruction loss (joint training).
    """

    batch_fields = ("label",)
    OPTION_INFO = {
        "num_classes": Info("classes of the linear softmax", low=2),
        "recon_weight": Info("weight of the reconstruction loss beside the cross-entropy (0: CE alone)", low=0),
    }

    @takes_options
    def __init__(
        self,
        latent_dim: int = 32,
        num_classes: int = 10,
        recon_weight: float = 1.0,
        **options,
    ):
        super().__init__(latent_dim, **options)
        self.recon_weight = recon_weight
        self.classifier = nn.Linear(latent_dim, num_classes)

    def logits(self, x: Tensor) -> Tensor:
        """x [B, C, H, W] -> class logits [B, num_classes] (softmax is inside the cross-entropy)."""
        return self.classifier(self.encode(x))

    def classify(self, x: Tensor) -> Tensor:
        """The predicted class of each image: [B] int64."""
        return self.logits(x).argmax(1)

    def loss_terms(self, x: Tensor, label: Tensor) -> dict[str, Tensor]:
        z = self.encode(x)
        logits = self.classifier(z)
        terms = {"ce": F.cross_entropy(logits, label), "accuracy": (logits.argmax(1) == label).float().mean()}
        terms["sse"] = per_image_sse(self.decode(z), x).mean()
        terms["loss"] = terms["ce"] + self.recon_weight * terms["sse"] if self.recon_weight else terms["ce"]
        return terms

    def loss(self, x: Tensor, label: Tensor) -> Tensor:
        return self.loss_terms(x, label)["loss"]


class ConversionGON(GON):
    """Modality conversion: the latent descends the error on the source signal, the output is the target.

    ``encode(x)`` sees only ``degrade(x, source)`` (the inner loss compares the degraded output
    with it); ``reconstruct(x)`` is the predicted full image and the training loss its summed
    squared error against ``x``. Use ``encode_source`` for a source signal you already have.
    """

    OPTION_INFO = SOURCE_INFO

    @takes_options
    def __init__(self, latent_dim: int = 32, source: str = "mask", **options):
        super().__init__(latent_dim, **options)
        self.source = source

    def inner_loss(self, z: Tensor, s: Tensor) -> Tensor:
        return sum_squared_error(degrade(self.decode(z), self.source), s)

    def encode_source(self, s: Tensor) -> Tensor:
        """A source signal (as :func:`degrade` makes it) -> latent [B, latent_dim]."""
        return super().encode(s)

    def encode(self, x: Tensor) -> Tensor:
        return self.encode_source(degrade(x, self.source))


class ConversionAE(AutoEncoder):
    """The conversion baseline: an autoencoder from the source signal to the target, same decoder."""

    OPTION_INFO = SOURCE_INFO

    @takes_options
    def __init__(self, latent_dim: int = 32, source: str = "mask", **options):
        super().__init__(latent_dim, **options)
        self.source = source

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(degrade(x, self.source))
