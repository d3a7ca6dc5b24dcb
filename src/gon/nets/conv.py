"""The paper's DCGAN-style convolutional decoder (and its mirror image, for the autoencoder baselines).

At 32x32 with latent 32, width 16, 1 channel and BatchNorm this is exactly the original
code's generator (74,321 parameters). Each doubling of the image size adds one upsampling
block, as the paper scales it to 64x64 (CelebA) and 128x128 (LSUN).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from gon.nets.activations import make_activation


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":  # the paper's choice; couples the samples of a batch (see GON's docs)
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # per-sample statistics over (C, H, W): batch-independent
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose from {', '.join(NORMS)}")


NORMS = ("layer", "batch", "none")


def block_widths(image_size: int, width: int) -> list[int]:
    """Channel widths of the hidden feature maps, 4x4 first: [width * 2^(n-1), ..., width]."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image size must be a power of two >= 8 for the conv decoder, got {image_size}")
    n = int(math.log2(image_size)) - 2
    return [width * 2 ** (n - 1 - i) for i in range(n)]


class ConvDecoder(nn.Module):
    """z [B, latent_dim] -> image [B, channels, image_size, image_size] in (0, 1)."""

    def __init__(
        self,
        latent_dim: int = 32,
        width: int = 16,
        channels: int = 1,
        image_size: int = 32,
        activation: str = "elu",
        norm: str = "layer",
    ):
        super().__init__()
        widths = block_widths(image_size, width)
        layers: list[nn.Module] = []
        ins = [latent_dim] + widths[:-1]
        for i, (cin, cout) in enumerate(zip(ins, widths)):
            # first block: 1x1 -> 4x4; the rest double the size
            conv = nn.ConvTranspose2d(cin, cout, 4, 1, 0) if i == 0 else nn.ConvTranspose2d(cin, cout, 4, 2, 1)
            layers += [conv, make_norm(norm, cout), make_activation(activation)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Sigmoid()]
        self.main = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.main(z.view(z.shape[0], -1, 1, 1))  # (B, k) -> (B, k, 1, 1) -> (B, C, S, S)


class ConvEncoder(nn.Module):
    """The decoder mirrored: image [B, C, S, S] -> [B, out_dim]; the autoencoder baselines' encoder."""

    def __init__(
        self,
        out_dim: int = 32,
        width: int = 16,
        channels: int = 1,
        image_size: int = 32,
        activation: str = "elu",
        norm: str = "layer",
    ):
        super().__init__()
        widths = block_widths(image_size, width)[::-1]  # [width, 2 width, ...]
        layers: list[nn.Module] = [
            nn.Conv2d(channels, widths[0], 4, 2, 1),
            make_norm(norm, widths[0]),
            make_activation(activation),
        ]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), make_norm(norm, cout), make_activation(activation)]
        layers += [nn.Conv2d(widths[-1], out_dim, 4, 1, 0)]  # 4x4 -> 1x1
        self.main = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x).flatten(1)
