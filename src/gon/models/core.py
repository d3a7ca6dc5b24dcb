"""The shared API of every model (:class:`GradientOriginModel`), the conv models' base (:class:`ConvModel`) and
the paper's convolutional GON (Eq. 8).

Every model has ``encode(x) -> z``, ``decode(z) -> x_hat``, ``reconstruct(x)``, ``loss(x)`` (the full
training objective) and ``loss_terms(x)`` (its named parts). Latents come from :mod:`gon.origin`; a model
only says how to decode and what its inner and outer losses are.

A model's constructor is its settings schema (:func:`gon.core.settings.options_of`): each option is written once,
in the class that introduces it. Every model constructor carries :class:`takes_options`: one ending in ``**options``
takes its base class's options too, so ``GON`` writes none, and ``ClassifierGON(latent_dim=32, num_classes=10,
recon_weight=1.0, **options)`` only its own; every value is checked against the schema before the constructor runs
(an ``OptionError``, which is a ``ValueError``).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor, nn

from gon.core.settings import Info, check_options, extend_signature, options_of
from gon.models.pretrained import PretrainedMixin
from gon.nets import ACTIVATIONS, NORMS, ConvDecoder, ConvEncoder
from gon.origin import LOSSES, FirstGradient, Origin, pixel_error

#: the conv decoders' default training size: 28x28 data is grown to 32x32, as in the paper
CONV_MIN_IMAGE_SIZE = 32
#: the options of :class:`gon.origin.Origin`, which only models that encode by the gradient take
ORIGIN_OPTIONS = tuple(Origin.OPTION_INFO)


#: the ``loss`` option of the GONs that take one (conv and implicit): written once, shared by both
LOSS_INFO = {"loss": Info("inner and outer loss: summed squared error (the paper's) or BCE (gon-pytorch's)", LOSSES)}


def per_image_sse(x_hat: Tensor, x: Tensor) -> Tensor:
    """Summed squared error of each image: [B] (Table 1's metric)."""
    return (x_hat - x).pow(2).flatten(1).sum(1)


def per_image_error(x_hat: Tensor, x: Tensor, loss: str = "sse") -> Tensor:
    """The ``loss`` (:data:`gon.origin.LOSSES`) summed over each image: [B]."""
    return pixel_error(x_hat, x, loss).flatten(1).sum(1)


class takes_options:  # noqa: N801 (a decorator, named as it reads: ``@takes_options``)
    """Decorator on a model's ``__init__``: the constructor takes the model's options, checked once and recorded.

    Its signature is its own parameters, then, when it ends in ``**options``, those of its base class's constructor
    it does not name (less the origin's when the class's ``gradient_encoder`` is False), so each option is written
    once, in the class that introduces it. The outermost constructor of a model checks the values against the
    model's options (:func:`gon.core.settings.options_of`: an ``OptionError``, also a ``ValueError``) and records
    them in ``self.config``; the constructors it calls through ``super().__init__`` only bind theirs.
    """

    def __init__(self, init):
        self.init = init

    def __set_name__(self, owner: type, name: str) -> None:  # the class exists now: its base's signature is known
        init = self.init
        leave_out = () if owner.gradient_encoder else ORIGIN_OPTIONS
        signature = extend_signature(init, owner.__mro__[1].__init__, leave_out)

        @functools.wraps(init)
        def checked_init(model, *args, **kw):
            bound = signature.bind(model, *args, **kw)
            bound.apply_defaults()
            arguments = {k: v for k, v in bound.arguments.items() if k != "self"}
            outermost = type(model).__init__ is checked_init
            if outermost:
                arguments = check_options(options_of(type(model)), arguments, owner=type(model).__name__)
            init(model, **arguments)
            if outermost:
                model.config = arguments

        checked_init.__signature__ = signature
        checked_init.__annotations__ = {
            p.name: p.annotation for p in signature.parameters.values() if p.annotation is not p.empty
        }
        setattr(owner, name, checked_init)


class GradientOriginModel(PretrainedMixin, nn.Module):
    """A decoder-only model whose encoder is the gradient of its own inner loss at the origin.

    Subclasses define ``decode`` (and may override ``inner_loss`` and ``loss_terms``). The
    constructor's arguments, checked against the class's options, are recorded in ``self.config`` so a
    model can be rebuilt from JSON (``gon.models.pretrained``).
    """

    #: extra batch fields ``loss_terms`` takes as keywords, besides the images (GLO: index, classifiers: label)
    batch_fields: tuple[str, ...] = ()
    #: smaller data is grown to this size unless a size is asked for (:func:`gon.models.registry.image_size`)
    min_image_size: int = 1
    #: whether ``decode(z, size=(H, W))`` renders at any resolution (an implicit model)
    renders_any_size: bool = False
    #: whether it trains on signals of any grid dimension (audio, volumes), not only images
    any_grid: bool = False
    #: whether ``encode`` is the gradient at the origin; False (an encoder network, GLO's codes): no origin options
    gradient_encoder: bool = True
    #: help, choices and bounds of the constructor's options (:func:`gon.core.settings.options_of`; subclasses add)
    OPTION_INFO = {"latent_dim": Info("latent size", low=1), **Origin.OPTION_INFO}

    @takes_options
    def __init__(
        self,
        latent_dim: int,
        steps: int = 1,
        step_size: float = 1.0,
        detach: bool = False,
        z0_std: float = 0.0,
        keep_z0: bool = True,
        learn_origin: bool = False,
        learn_step_size: bool = False,
        step_size_low: float | None = None,
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.origin = Origin(
            steps=steps,
            step_size=step_size,
            detach=detach,
            z0_std=z0_std,
            keep_z0=keep_z0,
            learn_origin=learn_origin,
            learn_step_size=learn_step_size,
            step_size_low=step_size_low,
        )
        self.config: dict[str, Any] = {}
        # the learnt origin and step sizes (parameters only when asked for: other models' weights are unchanged)
        self.z0 = nn.Parameter(torch.zeros(latent_dim)) if learn_origin else None
        self.step_sizes = nn.Parameter(self.origin.initial_step_sizes(latent_dim)) if learn_step_size else None

    # -- what a subclass defines --------------------------------------------------------
    def decode(self, z: Tensor) -> Tensor:
        """z [B, latent_dim] -> x_hat [B, C, H, W]."""
        raise NotImplementedError

    #: the data-fitting loss of ``inner_loss`` and ``loss_terms`` (:data:`gon.origin.LOSSES`); a model with a
    #: ``loss`` option sets it
    pixel_loss: str = "sse"

    def inner_loss(self, z: Tensor, x: Tensor) -> Tensor:
        """The data-fitting loss the latent descends, summed over the batch (Eq. 8's L)."""
        return pixel_error(self.decode(z), x, self.pixel_loss).sum()

    def first_gradient(self, z0: Tensor, x: Tensor, **inner) -> FirstGradient | None:
        """An exact shortcut for ``inner_loss``'s gradient at ``z0`` (e.g. the shared-origin pass), or None:
        autograd on ``inner_loss``. It must return exactly that gradient."""
        return None

    # -- the shared API -----------------------------------------------------------------
    def encode(self, x: Tensor, **inner) -> Tensor:
        """x [B, C, H, W] in [0, 1] -> z [B, latent_dim], by gradient steps from the origin on
        ``inner_loss(z, x, **inner)``, the first through ``first_gradient`` when the model has one."""
        z0 = self.origin.start(x.shape[0], self.latent_dim, x, self.z0)
        inner_loss = lambda z: self.inner_loss(z, x, **inner)  # noqa: E731
        return self.origin(inner_loss, z0, self.first_gradient(z0, x, **inner), self.step_sizes)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: Tensor, return_latent: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``model(x)``: the reconstruction of ``x`` at its own size (with ``return_latent``: and its latent z), so
        that hooks, summaries and ``torch.compile`` treat a model as any PyTorch module."""
        z = self.encode(x)
        x_hat = self.decode(z, size=x.shape[2:]) if self.renders_any_size else self.decode(z)
        return (x_hat, z) if return_latent else x_hat

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """The training objective (key ``loss``) and its parts, each averaged over the batch."""
        return self.loss_and_reconstruction(x)[0]

    def loss_and_reconstruction(self, x: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """``loss_terms(x)`` and ``reconstruct(x)`` (test images: gon fit's evaluations), ``x`` encoded once where
        the loss is the reconstruction's error (this class's ``loss_terms``); a model with an objective of its own
        (a sampled latent, fitted codes, a subset of pixels, a classifier) encodes for each."""
        if type(self).loss_terms is not GradientOriginModel.loss_terms:
            return self.loss_terms(x), self.reconstruct(x)
        x_hat = self.reconstruct(x)
        return {"loss": per_image_error(x_hat, x, self.pixel_loss).mean()}, x_hat

    def loss(self, x: Tensor) -> Tensor:
        """The model's full training objective on a batch; ``.backward()`` on it trains the model."""
        return self.loss_terms(x)["loss"]

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}" + (f", origin={self.origin}" if self.gradient_encoder else "")


class ConvModel(GradientOriginModel):
    """A model around the conv GON's DCGAN-style decoder: the six decoder options, written here once.

    Subclasses add their own layers and options; layers built by :meth:`build_before_decoder` are initialised
    before the decoder (the order of random draws and of parameters in saved optimiser states).
    """

    min_image_size = CONV_MIN_IMAGE_SIZE
    OPTION_INFO = {
        "width": Info("conv decoder width ngf", low=1),
        "channels": Info("image channels (default: the data's)", low=1),
        "image_size": Info("training size, a power of two >= 8 (default: the data's, at least 32)", low=8),
        "activation": Info("conv activation (needs a non-zero second derivative)", choices=tuple(ACTIVATIONS)),
        "norm": Info("conv normalisation (batch = the paper's; couples the latents of a batch)", choices=NORMS),
    }

    @takes_options
    def __init__(
        self,
        latent_dim: int = 32,
        width: int = 16,
        channels: int = 1,
        image_size: int = 32,
        activation: str = "elu",
        norm: str = "layer",
        **origin,
    ):
        super().__init__(latent_dim, **origin)
        #: the decoder's arguments, in its order (:meth:`mirrored_encoder` builds an encoder from the same)
        self.conv_options = dict(
            width=width, channels=channels, image_size=image_size, activation=activation, norm=norm
        )
        self.build_before_decoder()
        self.decoder = ConvDecoder(latent_dim, **self.conv_options)

    def build_before_decoder(self) -> None:
        """Layers a subclass builds before the decoder (the variational GON's heads); none here."""

    def mirrored_encoder(self) -> ConvEncoder:
        """The decoder mirrored, image -> latent: the autoencoder baselines' encoder."""
        return ConvEncoder(self.latent_dim, **self.conv_options)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)


class GON(ConvModel):
    """The convolutional GON (Sec. 3.2): the paper's DCGAN-style decoder, no encoder.

    ``norm="layer"`` (default) normalises each image on its own, so an image's latent never
    depends on its batch. ``norm="batch"`` is the paper's BatchNorm: at the origin every image
    feeds the same input, BatchNorm's batch statistics then couple the images of a batch
    (a latent changes with the batch it sits in) and, in eval mode, its running statistics
    give different latents altogether; use it to reproduce the original code.
    ``loss="bce"``: binary cross-entropy (of the decoder's sigmoid outputs) as the inner and outer loss,
    gon-pytorch's choice, instead of the paper's summed squared error.
    """

    OPTION_INFO = LOSS_INFO

    @takes_options
    def __init__(self, latent_dim: int = 32, loss: str = "sse", **options):
        super().__init__(latent_dim, **options)
        self.pixel_loss = loss
