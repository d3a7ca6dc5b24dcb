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


@dataclass(frozen=True)
class Recipe:
    """A named configuration from the literature: a model and the options its paper used; any option given
    beside it wins (``gon fit --recipe NAME``)."""

    model: str
    options: dict[str, Any]
    source: str

    def describe(self) -> str:
        options = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in self.options.items())
        return f"--model {self.model}, {options}. Source: {self.source}"


#: the gradient-origin family by name: each recipe sets only what its paper fixes; width, depth, latent size and
#: budgets stay gon's (or yours) unless the source states them for the model it describes
RECIPES: dict[str, Recipe] = {
    "gon": Recipe(
        "implicit",
        {"latent_mode": "concat", "steps": 1, "step_size": 1.0, "learn_origin": False, "learn_step_size": False},
        "Bond-Taylor & Willcocks, ICLR 2021, Eq. 8 and 12: latent concatenated with the coordinates, one gradient "
        "step of size 1 from z0 = 0 (also a conv GON: --model gon)",
    ),
    "cavia": Recipe(
        "implicit",
        {"block": "relu", "latent_mode": "concat", "steps": 1, "step_size": 1.0, "learn_origin": False},
        "Zintgraf et al., ICML 2019 (CAVIA): context parameters that start at zero, concatenated with the input of "
        "a ReLU MLP, one second-order inner gradient step at rate 1.0",
    ),
    "functa": Recipe(
        "implicit",
        {
            "block": "siren",
            "w0": 30.0,
            "latent_mode": "shift",
            "steps": 3,
            "learn_step_size": True,
            "step_size": 0.1,
            "step_size_low": 0.005,
            "learn_origin": False,
        },
        "Dupont et al., ICML 2022 (functa; COIN++ the same): a SIREN whose hidden layers get shifts from a linear "
        "map of the latent, latents starting at zero, 3 inner SGD steps with per-dimension Meta-SGD step sizes "
        "initialised uniformly in [0.005, 0.1] (clipped to >= 0 here; functa also caps them at 1)",
    ),
    "gon-pytorch": Recipe(
        "implicit",
        {"loss": "bce", "encoding": "nerf", "encoding_size": 10, "hidden": 128, "depth": 3, "block": "siren"},
        "gon-pytorch 0.1.1 (kklemon, PyPI): BCE inner and outer loss on sigmoid outputs, its README's "
        "configuration (NeRF positional encoding of 10 octaves, SIREN hidden 128, num_layers 4 = 3 sine layers, "
        "one latent update from a zero origin, no modulation network)",
    ),
}


def recipe(name: str) -> Recipe:
    """The recipe called ``name``; GonError naming the choices if none."""
    if name not in RECIPES:
        raise GonError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name]


def recipe_options(name: str, model: str | None, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The model and options of recipe ``name`` under the ones given (``model``: None for the recipe's own);
    GonError when the model given cannot take an option the recipe needs."""
    r = recipe(name)
    model = model or r.model
    takes = schema(model)
    defaults = options_of(_registered(r.model))  # a setting the model lacks is fine where it asks for nothing
    missing = [k for k, v in r.options.items() if k not in takes and defaults[k].default != v]
    if missing:
        raise GonError(
            f"recipe {name!r} sets option {missing[0]} ({'--' + missing[0].replace('_', '-')}), which model "
            f"{model!r} does not take: use --model {r.model}"
        )
    return model, {**{k: v for k, v in r.options.items() if k in takes}, **options}


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


__all__ = [
    "MODELS",
    "RECIPES",
    "TASK_MODELS",
    "DataShape",
    "Recipe",
    "recipe",
    "recipe_options",
    "build",
    "image_size",
    "model_class",
    "options_for",
    "schema",
]
