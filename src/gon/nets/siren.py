"""A SIREN (Sitzmann et al., 2020): an MLP with sine activations, for implicit GONs (Eq. 12)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class SineLayer(nn.Module):
    """sin(w0 * (W x + b)) with the SIREN initialisation."""

    def __init__(self, in_features: int, out_features: int, w0: float = 30.0, is_first: bool = False):
        super().__init__()
        self.w0 = w0
        self.linear = nn.Linear(in_features, out_features)
        bound = (1 / in_features) if is_first else (math.sqrt(6 / in_features) / w0)
        nn.init.uniform_(self.linear.weight, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.w0 * self.linear(x))


class Siren(nn.Module):
    """[..., in_features] -> [..., out_features]: ``depth`` sine layers of ``hidden`` units, then a linear map.

    depth 4, hidden 256, 34 inputs (2 coordinates + latent 32), 1 output: 206,593 parameters.
    """

    def __init__(self, in_features: int, out_features: int = 1, hidden: int = 256, depth: int = 4, w0: float = 30.0):
        super().__init__()
        if depth < 1 or hidden < 1:
            raise ValueError(f"SIREN depth and hidden must be >= 1, got depth={depth}, hidden={hidden}")
        sizes = [in_features] + [hidden] * depth
        self.layers = nn.ModuleList(
            SineLayer(a, b, w0=w0, is_first=(i == 0)) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
        )
        self.out = nn.Linear(hidden, out_features)
        bound = math.sqrt(6 / hidden) / w0
        nn.init.uniform_(self.out.weight, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.out(x)


def coordinate_grid(height: int, width: int, device=None, dtype=None) -> Tensor:
    """Pixel-centre coordinates of an image covering [-1, 1]^2, as (y, x) rows: [height * width, 2].

    Centres (not edges) make a 28x28 grid and a 256x256 grid sample the same square, so an
    implicit model renders the same picture at any resolution.
    """
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width * 2 - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)
