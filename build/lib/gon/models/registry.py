"""Every trainable model by its ``--model`` name, and :func:`build`, the one way to build a model for data.

Below the registry nothing knows names: a model class builds itself from keywords and saves /
rebuilds itself with :mod:`gon.models.pretrained`. Above it, the auto-loader (:mod:`gon.models.loading`),
training, experiments, benchmarks and the CLI build every model through :func:`build`, which
owns the rules that depend on the data: channels and image size, the minimum image size a model
is grown to by default, one GLO code per training image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gon.core.errors import GonError
from gon.core.settings import Option, options_of
from gon.models import (
    GLO,
    GON,
    VAE,
    AutoEncoder,
    ClassifierGON,
    ConversionAE,
    ConversionGON,
    GradientOriginModel,
    ImplicitGON,
    MLPAutoEncoder,
    TiedAutoEncoder,
    VariationalGON,
)
from gon.models.pretrained import construct

MODELS: dict[str, type[GradientOriginModel]] = {
    "gon": GON,
    "vgon": VariationalGON,
    "implicit": ImplicitGON,
    # baselines on the same decoders (Tables 1-2); the detached / 10-step GONs are GON options
    "ae": AutoEncoder,
    "tied-ae": TiedAutoEncoder,
    "glo": GLO,
    "vae": VAE,
    "mlp-ae": MLPAutoEncoder,  # signals of any grid dimension (audio, volumes): the implicit GON's baseline there
    # modality conversion (Sec. 3.5): source = masked or downsampled image, target = the image
    "conversion": ConversionGON,
    "conversion-ae": ConversionAE,
}

#: models whose loss needs labels, so ``loss(x)`` alone is not their objective: trained by
#: ``gon reproduce classifier``, rebuilt by name like the others
TASK_MODELS: dict[str, type[GradientOriginModel]] = {
    "classifier": ClassifierGON,
}


class Data(Protocol):
    """What :func:`build` reads of the training data (a :class:`gon.data.ImageData` has it)."""

    @property
    def grid(self) -> tuple[int, ...]: ...

    @property
    def channels(self) -> int: ...

    @property
    def image_size(self) -> int: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class DataShape:
    """Data described without images: for building a model before (or without) loading any."""

    channels: int
    image_size: int
    images: int

    @property
    def grid(self) -> tuple[int, ...]:
        return (self.image_size, self.image_size)

    def __len__(self) -> int:
        return self.images


def model_class(name: str) -> type[GradientOriginModel]:
    """The class registered under ``name`` (a ``--model`` value) or under its class name; KeyError if none."""
    for key, cls in {**MODELS, **TASK_MODELS}.items():
        if name in (key, cls.__name__):
            return cls
    raise KeyError(name)


def _registered(name: Any) -> type[GradientOriginModel]:
    try:
        return model_class(name)
    except (KeyError, TypeError):
        raise GonError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None


def image_size(name: str, native: int, requested: int | None = None) -> int:
    """The training size of model ``name`` on data ``native`` pixels wide: ``requested`` if given, else the
    native size grown to the model's ``min_image_size`` (the conv models take 28x28 data at 32x32, as the paper)."""
    if requested is not None:
        return requested
    return max(native, _registered(name).min_image_size)


def check_data(name: str, data: Data) -> None:
    """Model ``name`` can train on ``data``: images (a 2-D grid), or any grid for a model with ``any_grid``."""
    if len(data.grid) != 2 and not _registered(name).any_grid:
        anywhere = ", ".join(n for n, c in MODELS.items() if c.any_grid)
        raise GonError(
            f"model {name!r} works on images; {getattr(data, 'name', 'the data')} is {len(data.grid)}-D data: "
            f"train it with one of {anywhere}"
        )


def options_for(name: str, data: Data | None = None, **options: Any) -> dict[str, Any]:
    """The constructor keywords of model ``name`` for ``data``: its channels and size (a side for images, as the
    paper's models take it; one length per dimension for audio and volumes), one code per training image for a
    model with one latent per image (GLO); explicit ``options`` win."""
    cls = _registered(name)
    derived: dict[str, Any] = {}
    if data is not None:
        check_data(name, data)
        grid = list(data.grid)
        derived = {"channels": data.channels, "image_size": grid[0] if len(grid) == 2 else grid}
        if "index" in cls.batch_fields:  # one persistent latent per training image
            derived["num_images"] = len(data)
    return {**derived, **options}


def schema(name: str) -> dict[str, Option]:
    """Model ``name``'s options, from its constructor (:func:`gon.core.settings.options_of`); GonError if unknown."""
    return options_of(_registered(name))


def build(name: str, data: Data | None = None, /, **options: Any) -> GradientOriginModel:
    """Model ``name`` (a ``--model`` value or a class name) for ``data`` (:func:`options_for`), bad options
    named in a GonError. Without ``data``, ``options`` must say everything the defaults do not."""
    return construct(_registered(name), options_for(name, data, **options), f"model {name!r}", training=True)


__all__ = ["MODELS", "TASK_MODELS", "DataShape", "build", "image_size", "model_class", "options_for", "schema"]
