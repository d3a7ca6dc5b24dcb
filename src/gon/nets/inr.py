"""The implicit GON's network in all its variants: coordinate encodings, SIREN / ReLU / SiLU blocks, and the four
ways a latent can enter (concatenated, functa's shifts, FiLM, a multiplicative modulation network).

Every variant is written as ``y = trunk(h, m)``: ``h = features(c)`` is the first layer's argument from the
coordinates alone (one row per coordinate) and ``m = modulations(z)`` everything the latent adds, the same on every
row of a signal. With ``concat`` (the paper's) ``m = W_z z`` joins ``h`` in the first layer, as
:class:`gon.nets.Siren` splits it; otherwise the first layer sees the coordinates only and ``m`` modulates every
hidden layer. Rows never mix, which the shared-origin pass (:func:`gon.origin.shared_origin_gradient`) relies on.

The concat SIREN without an encoding is :class:`gon.nets.Siren` exactly: the same parameters, names, initialisation
and arithmetic, so the implicit GON's seeded runs are unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gon.nets.siren import SineLayer

#: hidden blocks: sine (SIREN) or gon-pytorch's ReLU / SiLU ("swish") / leaky ReLU linear blocks
BLOCKS = ("siren", "relu", "silu", "leaky-relu")
#: coordinate encodings: the raw coordinates, NeRF's frequencies, Gaussian Fourier features (fixed or learnt)
ENCODINGS = ("none", "nerf", "gaussian", "gaussian-learnt")
#: how the latent enters: concatenated with the coordinates (the paper's), functa's shifts of every hidden layer's
#: argument, FiLM (a scale and a shift per hidden unit), or Mehta et al.'s ReLU network multiplying every hidden layer
LATENT_MODES = ("concat", "shift", "film", "multiply")

_DENSE = {"relu": nn.ReLU, "silu": nn.SiLU, "leaky-relu": lambda: nn.LeakyReLU(0.2)}  # gon-pytorch's slope 0.2


class CoordinateEncoding(nn.Module):
    """Coordinates [n, d] -> features [n, out_dim] (gon-pytorch's encodings, same formulas).

    nerf: sin and cos of pi 2^j c for j < size, per coordinate (NeRF, Mildenhall et al. 2020).
    gaussian: sin and cos of 2 pi c B with B ~ N(0, scale^2) [d, size] (Tancik et al. 2020), a buffer, or a
        parameter with "gaussian-learnt".
    """

    def __init__(self, dims: int, kind: str = "none", size: int = 10, scale: float = 1.0):
        super().__init__()
        self.kind = kind
        if kind == "nerf":
            self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(size, dtype=torch.float32))
            self.out_dim = 2 * size * dims
        elif kind in ("gaussian", "gaussian-learnt"):
            projection = scale * torch.randn(dims, size)
            if kind == "gaussian-learnt":
                self.projection = nn.Parameter(projection)
            else:
                self.register_buffer("projection", projection)
            self.out_dim = 2 * size
        else:
            self.out_dim = dims

    def forward(self, c: Tensor) -> Tensor:
        if self.kind == "none":
            return c
        if self.kind == "nerf":
            angles = (c[..., None] * self.frequencies.to(c.dtype)).flatten(-2)  # (n, d * size)
        else:
            angles = 2 * math.pi * c @ self.projection.to(c.dtype)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class DenseLayer(nn.Module):
    """act(W x + b) with PyTorch's default initialisation: gon-pytorch's ReLU / swish blocks."""

    w0 = 1.0  # (the sine layers' frequency; 1 leaves a dense layer's argument as it is)

    def __init__(self, in_features: int, out_features: int, block: str):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.activation = _DENSE[block]()

    def argument(self, x: Tensor) -> Tensor:
        return self.linear(x)

    def activate(self, h: Tensor) -> Tensor:
        return self.activation(h)


class ModulationNetwork(nn.Module):
    """Mehta et al. (2021), as gon-pytorch builds it: ReLU layers from the latent, each also fed the latent, one
    output of ``hidden`` per modulated layer; z [..., k] -> [..., layers * hidden]."""

    def __init__(self, latent_dim: int, hidden: int, layers: int):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(latent_dim + (hidden if i else 0), hidden) for i in range(layers))

    def forward(self, z: Tensor) -> Tensor:
        outputs, x = [], z
        for block in self.blocks:
            out = torch.relu(block(x))
            outputs.append(out)
            x = torch.cat([out, z], dim=-1)
        return torch.cat(outputs, dim=-1)


class ImplicitNet(nn.Module):
    """Coordinates [n, d] and latents [B, k] -> values [B, n, out]: ``depth`` hidden blocks of ``hidden`` units and a
    linear output (then a sigmoid with ``output="sigmoid"``), the latent entering by ``latent_mode``."""

    def __init__(
        self,
        dims: int,
        latent_dim: int,
        out_features: int = 1,
        hidden: int = 256,
        depth: int = 4,
        w0: float = 30.0,
        block: str = "siren",
        latent_mode: str = "concat",
        encoding: str = "none",
        encoding_size: int = 10,
        encoding_scale: float = 1.0,
        output: str = "linear",
    ):
        super().__init__()
        if depth < 1 or hidden < 1:
            raise ValueError(f"depth and hidden must be >= 1, got depth={depth}, hidden={hidden}")
        self.latent_mode, self.hidden, self.depth, self.output = latent_mode, hidden, depth, output
        self.encoding = CoordinateEncoding(dims, encoding, encoding_size, encoding_scale)
        self.coord_features = self.encoding.out_dim
        sizes = [self.coord_features + (latent_dim if latent_mode == "concat" else 0)] + [hidden] * depth
        pairs = list(zip(sizes[:-1], sizes[1:]))
        if block == "siren":
            self.layers = nn.ModuleList(SineLayer(a, b, w0=w0, is_first=(i == 0)) for i, (a, b) in enumerate(pairs))
        else:
            self.layers = nn.ModuleList(DenseLayer(a, b, block) for a, b in pairs)
        self.out = nn.Linear(hidden, out_features)
        if block == "siren":
            bound = math.sqrt(6 / hidden) / w0
            nn.init.uniform_(self.out.weight, -bound, bound)
        self.modulation: nn.Module | None = None
        if latent_mode in ("shift", "film"):  # functa: a linear map of the latent, zero bias
            per_layer = 2 if latent_mode == "film" else 1
            self.modulation = nn.Linear(latent_dim, per_layer * depth * hidden)
            nn.init.zeros_(self.modulation.bias)
        elif latent_mode == "multiply":
            self.modulation = ModulationNetwork(latent_dim, hidden, depth)

    # -- the split the shared-origin pass uses ------------------------------------------------
    def first_weight(self, start: int = 0, stop: int | None = None) -> Tensor:
        """How first-layer inputs start:stop enter its argument, [hidden, m] (w0 W for a sine layer)."""
        first = self.layers[0]
        return first.w0 * first.linear.weight[:, start:stop]

    def features(self, coords: Tensor) -> Tensor:
        """The first layer's argument from the (encoded) coordinates alone: [n, d] -> [n, hidden]."""
        first = self.layers[0]
        e = self.encoding(coords)
        return F.linear(e, self.first_weight(0, self.coord_features), first.w0 * first.linear.bias)

    def modulations(self, z: Tensor) -> Tensor:
        """All the latent adds, [..., k] -> [..., M]: concat: W_z z (joins the first argument, [hidden]); shift: a
        shift of every hidden argument ([depth * hidden], scaled by w0 as functa's sin(w0 (W x + b + s))); film: a
        scale and a shift per hidden unit; multiply: the modulation network's factors."""
        if self.latent_mode == "concat":
            return F.linear(z, self.first_weight(self.coord_features))
        m = self.modulation(z)
        return self.layers[0].w0 * m if self.latent_mode == "shift" else m

    def trunk(self, h: Tensor, m: Tensor | None = None) -> Tensor:
        """The network from the first layer's argument h [..., hidden]; ``m`` [..., M] (broadcast over rows): the
        modulations (None with concat, whose ``m`` is already in h). Rows are independent."""
        mods = None if m is None else m.unflatten(-1, (-1, self.hidden)).unbind(-2)
        x = h
        for i, layer in enumerate(self.layers):
            a = h if i == 0 else _rows(layer.argument, x)
            if self.latent_mode == "shift" and mods is not None:
                a = a + mods[i]
            elif self.latent_mode == "film" and mods is not None:
                a = a * (1 + mods[i]) + layer.w0 * mods[self.depth + i]
            x = layer.activate(a)
            if self.latent_mode == "multiply" and mods is not None:
                x = x * mods[i]
        y = _rows(self.out, x)
        return torch.sigmoid(y) if self.output == "sigmoid" else y

    def forward(self, z: Tensor, coords: Tensor) -> Tensor:
        """z [B, k], coords [n, d] -> [B, n, out]."""
        b, n = z.shape[0], coords.shape[0]
        h, m = self.features(coords), self.modulations(z)
        if self.latent_mode == "concat":
            h = h[None] + m[:, None]  # (B, n, H)
            return self.trunk(h.view(b * n, -1)).view(b, n, -1)  # 2-D rows: faster matmul backward than 3-D
        return self.trunk(h.expand(b, n, -1), m[:, None])


def _rows(layer, x: Tensor) -> Tensor:
    """A row-wise layer applied to x [..., f] as one 2-D matrix (faster backward than batched 3-D matmuls)."""
    if x.ndim <= 2:
        return layer(x)
    return layer(x.reshape(-1, x.shape[-1])).view(*x.shape[:-1], -1)
