"""A SIREN (Sitzmann et al., 2020): an MLP with sine activations, for implicit GONs (Eq. 12).

The first layer is linear in its input, so for an input ``[c; z]`` its pre-activation splits as
``W_c c + b + W_z z`` (:meth:`Siren.first_linear`, scaled by w0); the rest of the network
(:meth:`Siren.trunk`) then works on that sum. An implicit GON computes ``W_c c + b`` once per coordinate grid and adds
each image's ``W_z z`` instead of concatenating a repeated latent onto every coordinate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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
        # w0 folded into the (small) weights: one full-size multiply fewer each way than sin(w0 * (W x + b))
        return torch.sin(F.linear(x, self.w0 * self.linear.weight, self.w0 * self.linear.bias))


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
        return self.trunk(self.first_linear(x))

    def first_weight(self, start: int = 0, stop: int | None = None) -> Tensor:
        """w0 W[:, start:stop]: how input features start:stop enter the first sine's argument, [hidden, m]."""
        first = self.layers[0]
        return first.w0 * first.linear.weight[:, start:stop]

    def first_linear(self, x: Tensor, start: int = 0, bias: bool = True) -> Tensor:
        """The first sine's argument ``w0 (W x + b)`` from input features ``start : start + m`` alone.

        [..., m] -> [..., hidden]. Being linear, the argument for ``[c; z]`` is
        ``first_linear(c) + first_linear(z, start=c.shape[-1], bias=False)``.
        """
        first = self.layers[0]
        weight = self.first_weight(start, start + x.shape[-1])
        return F.linear(x, weight, first.w0 * first.linear.bias if bias else None)

    def trunk(self, h: Tensor) -> Tensor:
        """The network after its first linear map: the first sine's argument h [..., hidden] -> [..., out].

        Acts on each row of h independently (no mixing across positions), which the shared-origin
        pass relies on.
        """
        x = torch.sin(h)
        for layer in self.layers[1:]:
            x = layer(x)
        return self.out(x)


def coordinate_grid(*size: int, device=None, dtype=None) -> Tensor:
    """Cell-centre coordinates of a grid of ``size`` (one length per dimension) covering [-1, 1]^d, as rows in
    row-major order: [prod(size), d]. An image is ``coordinate_grid(H, W)`` with (y, x) rows; audio
    ``coordinate_grid(L)``; a volume ``coordinate_grid(D, H, W)``.

    Centres (not edges) make a 28x28 grid and a 256x256 grid sample the same square, so an
    implicit model renders the same signal at any resolution.
    """
    if not size or min(size) < 1:
        raise ValueError(f"a coordinate grid needs one positive length per dimension, got {size}")
    axes = [(torch.arange(n, device=device, dtype=dtype) + 0.5) / n * 2 - 1 for n in size]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(size))
