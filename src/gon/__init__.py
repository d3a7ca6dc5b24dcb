"""gon: Gradient Origin Networks (Bond-Taylor & Willcocks, ICLR 2021) on PyTorch."""

from gon.errors import GonError
from gon.loading import load
from gon.models import GON, GradientOriginModel, ImplicitGON, VariationalGON
from gon.origin import Origin, gradient_origin
from gon.registry import MODELS

__all__ = [
    "GON",
    "MODELS",
    "GonError",
    "GradientOriginModel",
    "ImplicitGON",
    "Origin",
    "VariationalGON",
    "gradient_origin",
    "load",
]
__version__ = "0.1.0"
