"""Activations by name. A GON trains through F's derivative, so F's activation needs a
non-zero second derivative (ELU, SiLU, tanh, sine); ReLU'' = 0 is the paper's failure case (Fig. 3)."""

import torch
from torch import nn


class Sine(nn.Module):
    """sin(w0 * x); w0 = 1 inside conv nets, 30 inside a SIREN."""

    def __init__(self, w0: float = 1.0):
        super().__init__()
        self.w0 = w0

    def forward(self, x):
        return torch.sin(self.w0 * x)


ACTIVATIONS = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sine": Sine,
}


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}") from None
