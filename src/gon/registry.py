"""Every trainable model by its ``--model`` name: the paper's models, then the baselines."""
from __future__ import annotations

from gon.models import GON, GradientOriginModel, ImplicitGON, VariationalGON

MODELS: dict[str, type] = {
    "gon": GON,
    "vgon": VariationalGON,
    "implicit": ImplicitGON,
}


def model_class(name: str) -> type:
    """The class registered under ``name`` (a ``--model`` value) or under its class name."""
    for key, cls in MODELS.items():
        if name in (key, cls.__name__):
            return cls
    raise KeyError(name)


__all__ = ["MODELS", "GradientOriginModel", "model_class"]
