"""Decoders: plain ``torch.nn`` modules that know nothing about GONs."""

from gon.nets.activations import ACTIVATIONS, make_activation
from gon.nets.conv import NORMS, ConvDecoder, ConvEncoder
from gon.nets.heads import GaussianHeads, kl_to_standard_normal, reparameterise
from gon.nets.siren import Siren, coordinate_grid

__all__ = [
    "ACTIVATIONS",
    "NORMS",
    "ConvDecoder",
    "ConvEncoder",
    "GaussianHeads",
    "kl_to_standard_normal",
    "reparameterise",
    "Siren",
    "coordinate_grid",
    "make_activation",
]
