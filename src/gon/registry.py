"""Every trainable model by its ``--model`` name: the paper's models, then the baselines."""

from __future__ import annotations

from gon.baselines import GLO, VAE, AutoEncoder, TiedAutoEncoder
from gon.models import GON, GradientOriginModel, ImplicitGON, VariationalGON
from gon.tasks import ClassifierGON, ConversionAE, ConversionGON

MODELS: dict[str, type] = {
    "gon": GON,
    "vgon": VariationalGON,
    "implicit": ImplicitGON,
    # baselines on the same decoders (Tables 1-2); the detached / 10-step GONs are GON options
    "ae": AutoEncoder,
    "tied-ae": TiedAutoEncoder,
    "glo": GLO,
    "vae": VAE,
    # modality conversion (Sec. 3.5): source = masked or downsampled image, target = the image
    "conversion": ConversionGON,
    "conversion-ae": ConversionAE,
}

#: models whose loss needs labels, so ``loss(x)`` alone is not their objective: trained by
#: ``gon reproduce classifier``, rebuilt by name like the others
TASK_MODELS: dict[str, type] = {
    "classifier": ClassifierGON,
}


def model_class(name: str) -> type:
    """The class registered under ``name`` (a ``--model`` value) or under its class name."""
    for key, cls in {**MODELS, **TASK_MODELS}.items():
        if name in (key, cls.__name__):
            return cls
    raise KeyError(name)


__all__ = ["MODELS", "TASK_MODELS", "GradientOriginModel", "model_class"]
