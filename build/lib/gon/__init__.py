"""gon: Gradient Origin Networks (Bond-Taylor & Willcocks, ICLR 2021) on PyTorch."""

import importlib
import importlib.util

from gon.core.errors import GonError

#: public name -> the module defining it, imported on first use: ``import gon.cli`` stays light, so the
#: ``gon`` command handles SIGTERM from its first moment (before torch is imported)
_LAZY = {
    "load": "gon.models.loading",
    "GON": "gon.models",
    "GradientOriginModel": "gon.models",
    "ImplicitGON": "gon.models",
    "VariationalGON": "gon.models",
    "Origin": "gon.origin",
    "gradient_origin": "gon.origin",
    "MODELS": "gon.models.registry",
}

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


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif importlib.util.find_spec(f"gon.{name}") is not None:  # gon.models etc., as before the lazy imports
        value = importlib.import_module(f"gon.{name}")
    else:
        raise AttributeError(f"module 'gon' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
