"""The peer implementation ``gon-pytorch`` (PyPI), run at gon's implicit configuration.

``bash benchmarks/install_peer.sh`` (which benchmarks/speed.sh runs) installs it with
``pip install --no-deps --target CACHE``, so it can never replace this environment's torch and the
environment itself is left untouched; the benchmark imports it from there. gon never installs it.
Matched configuration, read from its source (``gon_pytorch/modules.py``, version 0.1.1): SIREN
blocks (w0 = 30, the same initialisation), hidden width 256, latent 32, identity positional
encoding (raw (x, y) coordinates), no final activation, MSE inner and outer losses, one latent
step from a zero origin, batch 64. Its ``num_layers`` counts every linear layer, so
``num_layers=5`` is gon's ``depth=4`` (4 sine layers and a linear output): both have 206,593
parameters at 1 channel.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from gon.nets import coordinate_grid
from gon.storage.cache import cache_dir

PEER_REQUIREMENT = "gon-pytorch==0.1.1"


def peer_dir() -> Path:
    return cache_dir("bench", "gon-pytorch-0.1.1")


def import_peer():
    """The ``gon_pytorch`` module from the cache; raises RuntimeError saying how to install it when it is missing."""
    target = peer_dir()
    if not (target / "gon_pytorch").is_dir():
        raise RuntimeError(
            f"{PEER_REQUIREMENT} is not installed in {target}: run `bash benchmarks/install_peer.sh` "
            "(or pass --no-peer)"
        )
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    return importlib.import_module("gon_pytorch")


def peer_model(channels: int, latent_dim: int = 32, hidden: int = 256, depth: int = 4):
    """gon-pytorch's GON at gon's implicit configuration, with MSE losses."""
    gp = import_peer()

    class MSEGON(gp.GON):
        """The peer's GON with its BCE losses replaced by squared error (same reductions as its BCE)."""

        def loss_inner(self, output, target):  # summed over the batch, as the peer does
            return (output - target).pow(2).sum(0).mean()

    decoder = gp.ImplicitDecoder(
        latent_dim=latent_dim,
        out_dim=channels,
        hidden_dim=hidden,
        num_layers=depth + 1,
        block_factory=gp.SirenBlockFactory(w0=30),
        pos_encoder=gp.IdentityPositionalEncoding(2),
        final_activation=None,
    )
    return MSEGON(decoder)


def peer_step(channels: int, size: int, x: torch.Tensor, lr: float = 1e-4) -> tuple[Callable[[], None], int]:
    """One Adam step of the peer on images x [B, C, S, S], as in its README; and its parameter count."""
    model = peer_model(channels).to(x.device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    b = x.shape[0]
    coords = (
        coordinate_grid(size, size, device=x.device, dtype=x.dtype).view(1, size, size, 2).expand(b, -1, -1, -1)
    )  # (B, S, S, 2)
    target = x.permute(0, 2, 3, 1)  # (B, S, S, C): the peer's channels-last layout

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        latent, _ = model.infer_latents(coords, target)
        loss = (model(coords, latent) - target).pow(2).mean()
        loss.backward()
        optimiser.step()

    return step, sum(p.numel() for p in model.parameters())
