"""The paper's models: GON (Eq. 8), VariationalGON (Eq. 9-10) and ImplicitGON (Eq. 12).

They share one API (:class:`GradientOriginModel`): ``encode(x) -> z``, ``decode(z) -> x_hat``,
``reconstruct(x)``, ``loss(x)`` (the full training objective) and ``loss_terms(x)`` (its
named parts). Latents always come from :mod:`gon.origin`; a model only says how to decode
and what its inner and outer losses are.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gon.nets import (
    ACTIVATIONS,
    NORMS,
    ConvDecoder,
    GaussianHeads,
    Siren,
    coordinate_grid,
    kl_to_standard_normal,
    reparameterise,
)
from gon.origin import FirstGradient, Origin, shared_origin_gradient, sum_squared_error
from gon.pretrained import PretrainedMixin
from gon.settings import Info

#: the conv decoders' default training size: 28x28 data is grown to 32x32, as in the paper
CONV_MIN_IMAGE_SIZE = 32
MAX_LAYERS = 256  # a SIREN's depth: each layer is a module object, built before any memory check can help
MAX_ORIGIN_STEPS = 1000  # the paper's multi-step GONs take 10

#: what the signatures of the conv models cannot say about their options (gon.settings reads both)
CONV_OPTION_INFO = {
    "width": Info("conv decoder width ngf", low=1),
    "channels": Info("image channels (default: the data's)", low=1),
    "image_size": Info("training size, a power of two >= 8 (default: the data's, at least 32)", low=8),
    "activation": Info("conv activation (needs a non-zero second derivative)", choices=tuple(ACTIVATIONS)),
    "norm": Info("conv normalisation (batch = the paper's; couples the latents of a batch)", choices=NORMS),
}


def per_image_sse(x_hat: Tensor, x: Tensor) -> Tensor:
    """Summed squared error of each image: [B] (Table 1's metric)."""
    return (x_hat - x).pow(2).flatten(1).sum(1)


class GradientOriginModel(PretrainedMixin, nn.Module):
    """A decoder-only model whose encoder is the gradient of its own inner loss at the origin.

    Subclasses define ``decode`` (and may override ``inner_loss`` and ``loss_terms``). The
    constructor's keyword arguments are recorded in ``self.config`` so a model can be rebuilt
    from JSON (``gon.pretrained``).
    """

    #: extra batch fields ``loss_terms`` takes as keywords, besides the images (GLO: index, classifiers: label)
    batch_fields: tuple[str, ...] = ()
    #: smaller data is grown to this size unless a size is asked for (:func:`gon.registry.image_size`)
    min_image_size: int = 1
    #: whether ``decode(z, size=(H, W))`` renders at any resolution (an implicit model)
    renders_any_size: bool = False
    #: whether it trains on signals of any grid dimension (audio, volumes), not only images
    any_grid: bool = False
    #: help, choices and bounds of the constructor's options (:func:`gon.settings.options_of`; subclasses add theirs)
    OPTION_INFO = {
        "latent_dim": Info("latent size", low=1),
        "steps": Info("gradient steps from the origin", low=1, high=MAX_ORIGIN_STEPS),
        "step_size": Info("size of each latent step", low=0, low_open=True),
        "detach": Info("cut the second-order terms (the paper's detached ablation)"),
        "z0_std": Info("start from z0 ~ N(0, std^2) instead of the origin (Fig. 11)", low=0),
        "keep_z0": Info("z = z0 - grad; off: z = -grad, the negative gradient alone (Fig. 11a)"),
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__init__

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            init(self, *args, **kw)
            if type(self) is cls:  # the most derived class records its own arguments
                bound = inspect.signature(init).bind(self, *args, **kw)
                bound.apply_defaults()
                self.config = {k: v for k, v in bound.arguments.items() if k != "self"}

        cls.__init__ = recording_init

    def __init__(
        self,
        latent_dim: int,
        steps: int = 1,
        step_size: float = 1.0,
        detach: bool = False,
        z0_std: float = 0.0,
        keep_z0: bool = True,
    ):
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim = latent_dim
        self.origin = Origin(steps=steps, step_size=step_size, detach=detach, z0_std=z0_std, keep_z0=keep_z0)
        self.config: dict[str, Any] = {}

    # -- what a subclass defines --------------------------------------------------------
    def decode(self, z: Tensor) -> Tensor:
        """z [B, latent_dim] -> x_hat [B, C, H, W]."""
        raise NotImplementedError

    def inner_loss(self, z: Tensor, x: Tensor) -> Tensor:
        """The data-fitting loss the latent descends, summed over the batch (Eq. 8's L)."""
        return sum_squared_error(self.decode(z), x)

    def first_gradient(self, z0: Tensor, x: Tensor, **inner) -> FirstGradient | None:
        """An exact shortcut for ``inner_loss``'s gradient at ``z0`` (e.g. the shared-origin pass), or None:
        autograd on ``inner_loss``. It must return exactly that gradient."""
        return None

    # -- the shared API -----------------------------------------------------------------
    def encode(self, x: Tensor, **inner) -> Tensor:
        """x [B, C, H, W] in [0, 1] -> z [B, latent_dim], by gradient steps from the origin on
        ``inner_loss(z, x, **inner)``, the first through ``first_gradient`` when the model has one."""
        z0 = self.origin.start(x.shape[0], self.latent_dim, x)
        return self.origin(lambda z: self.inner_loss(z, x, **inner), z0, self.first_gradient(z0, x, **inner))

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """The training objective (key ``loss``) and its parts, each averaged over the batch."""
        return {"loss": per_image_sse(self.reconstruct(x), x).mean()}

    def loss(self, x: Tensor) -> Tensor:
        """The model's full training objective on a batch; ``.backward()`` on it trains the model."""
        return self.loss_terms(x)["loss"]

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, origin={self.origin}"


class GON(GradientOriginModel):
    """The convolutional GON (Sec. 3.2): the paper's DCGAN-style decoder, no encoder.

    ``norm="layer"`` (default) normalises each image on its own, so an image's latent never
    depends on its batch. ``norm="batch"`` is the paper's BatchNorm: at the origin every image
    feeds the same input, BatchNorm's batch statistics then couple the images of a batch
    (a latent changes with the batch it sits in) and, in eval mode, its running statistics
    give different latents altogether; use it to reproduce the original code.
    """

    min_image_size = CONV_MIN_IMAGE_SIZE
    OPTION_INFO = CONV_OPTION_INFO

    def __init__(
        self,
        latent_dim: int = 32,
        width: int = 16,
        channels: int = 1,
        image_size: int = 32,
        activation: str = "elu",
        norm: str = "layer",
        steps: int = 1,
        step_size: float = 1.0,
        detach: bool = False,
        z0_std: float = 0.0,
        keep_z0: bool = True,
    ):
        super().__init__(latent_dim, steps, step_size, detach, z0_std, keep_z0)
        self.decoder = ConvDecoder(latent_dim, width, channels, image_size, activation, norm)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)


class VariationalGON(GradientOriginModel):
    """The variational GON (Sec. 3.3, Eq. 9-10).

    F = decoder o reparameterise o (mu, log-variance heads). The latent descends
    BCE(x, F(z0)) - log N(z0; 0, 2I) from the origin; training minimises the negative ELBO
    BCE + KL(N(mu, sigma^2) || N(0, I)). ``encode`` returns the posterior mean mu, the space
    that ``decode`` and ``sample`` (z ~ N(0, I)) work in.

    Two choices make it work beyond 32x32 grayscale (measured on 64x64 RGB images):
    - the training loss's inner pass decodes mu, not a draw (``sample=True`` asks for one), as evaluation
      does: z_hat is one deterministic function of x in both modes (the ELBO of the encoder x -> (mu, sigma)).
      A draw in the inner pass while training only made evaluation see other latents (norms 43-91
      against 10-18 at 64x64 RGB), on which the log-variance head gave KLs of 1e5 to 1e13 nats.
    - the heads start ``HEADS_INIT_SCALE`` times smaller than PyTorch's default: the inner loss is a sum
      over every pixel and channel, so z_hat grows with the image (|z_hat| ~ 26 at 32x32, 53 at 64x64,
      91 at 128x128 at initialisation) and default heads turned it into variances up to e^18; the KL
      then crushed the heads before the decoder learnt anything.
    """

    min_image_size = CONV_MIN_IMAGE_SIZE
    OPTION_INFO = CONV_OPTION_INFO
    HEADS_INIT_SCALE = 0.1

    def __init__(
        self,
        latent_dim: int = 32,
        width: int = 16,
        channels: int = 1,
        image_size: int = 32,
        activation: str = "elu",
        norm: str = "layer",
        steps: int = 1,
        step_size: float = 1.0,
        detach: bool = False,
        z0_std: float = 0.0,
        keep_z0: bool = True,
    ):
        super().__init__(latent_dim, steps, step_size, detach, z0_std, keep_z0)
        self.heads = GaussianHeads(latent_dim)
        with torch.no_grad():
            for head in (self.heads.mu, self.heads.logvar):
                head.weight.mul_(self.HEADS_INIT_SCALE)
        self.decoder = ConvDecoder(latent_dim, width, channels, image_size, activation, norm)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def inner_loss(self, z0: Tensor, x: Tensor, sample: bool = False) -> Tensor:
        """BCE(x, F(z0)) - log N(z0; 0, 2I); ``sample``: decode a posterior draw instead of its mean (training)."""
        mu, logvar = self.heads(z0)
        z = reparameterise(mu, logvar) if sample else mu
        bce = F.binary_cross_entropy(self.decoder(z), x, reduction="sum")
        return bce + z0.pow(2).sum() / 4  # -log N(z0; 0, 2I) up to a constant

    def gradient_latent(self, x: Tensor, sample: bool = False) -> Tensor:
        """The empirical-Bayes latent z_hat (before the heads); ``sample`` as in :meth:`inner_loss`."""
        return super().encode(x, sample=sample)

    def encode(self, x: Tensor) -> Tensor:
        return self.heads(self.gradient_latent(x))[0]

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        mu, logvar = self.heads(self.gradient_latent(x))
        z = reparameterise(mu, logvar) if self.training else mu
        bce = F.binary_cross_entropy(self.decoder(z), x, reduction="none").flatten(1).sum(1)
        kl = kl_to_standard_normal(mu, logvar)
        return {"loss": (bce + kl).mean(), "bce": bce.mean(), "kl": kl.mean()}

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """n images decoded from z ~ N(0, temperature^2 I)."""
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        return self.decode(temperature * z)


class ImplicitGON(GradientOriginModel):
    """The implicit GON (Sec. 3.4, Eq. 12): a SIREN over coordinates concatenated with the latent.

    A signal is a continuous function of its coordinates, so ``decode(z, size=...)`` renders it at
    any resolution (cell centres of the same [-1, 1]^d cube). The coordinates may have any dimension d,
    set by ``image_size``: an int is a square image (d = 2, the paper's), a list gives one length per
    dimension: ``[L]`` audio or another 1-D signal [B, C, L], ``[H, W]`` an image, ``[D, H, W]`` a
    volume [B, C, D, H, W]. "Pixel" below means a grid cell of any d.

    origin_pass: "shared" (default) computes the first latent step with the exact shared-origin
        pass (:func:`gon.origin.shared_origin_gradient`): one inner forward pass per coordinate
        grid instead of one per image, and the SIREN's first layer split as W_c c + b + W_z z
        everywhere. "naive" is the original code's pass (a repeated latent concatenated onto
        every coordinate, autograd's double backward through every image), kept as the
        reference; it runs the same SIREN. Both give the same latents and gradients. The
        shared pass applies only where every image starts from the same z0: with ``z0_std > 0``
        the naive pass is used (with a warning), with ``steps > 1`` only the first step is
        shared, and a batch with fewer images than channels uses the naive pass (cheaper there).
    The inner loss integrates over coordinates as a mean over pixels (summed over channels and
    over the batch, so latents stay batch-independent). With the conv GON's summed error the
    latents of a SIREN would be H * W times larger, its sines saturate and it barely learns
    (test MSE 0.146 after 300 steps for a 3x64 SIREN, against 0.036 with the mean).
    coord_fraction: p in (0, 1]: while training, both coordinate integrals (inner and outer loss)
        run over a random p of the pixels, fresh each step and scaled by 1/p, so each is an
        unbiased estimate of its full sum. Evaluation (eval mode) always uses the full grid.
        Default 0.25: at equal wall-clock it reached a lower test MSE than the full grid (1) and
        than 0.5 or 0.1 (docs/performance.md); 1 trains on every pixel (the paper's objective).
    coord_sampling: "same" (one subset for the inner and outer integrals) or "independent".
    coord_scale: the coordinates span [-coord_scale, coord_scale]^d instead of [-1, 1]^d. The first layer's
        weights (SIREN init U(-1/(d + k), 1/(d + k)), times w0) then resolve frequencies up to about
        w0 * coord_scale / (d + k) radians per unit: 1 suits 28x28 images, a clip of thousands of samples
        needs hundreds (SIREN's audio fits scale their first layer ~100x for the same reason). Only the
        coordinates are scaled, not the latent's weights, so latents keep their size.
    """

    renders_any_size = True
    ORIGIN_PASSES = ("shared", "naive")
    any_grid = True
    COORD_SAMPLINGS = ("same", "independent")
    OPTION_INFO = {
        "hidden": Info("SIREN units per layer", low=1),
        "depth": Info("SIREN sine layers", low=1, high=MAX_LAYERS),
        "channels": Info("image channels (default: the data's)", low=1),
        "image_size": Info(
            "training grid: an int (square image) or one length per dimension, [L], [H, W] or [D, H, W] "
            "(default: the data's)",
            low=1,
        ),
        "w0": Info("SIREN frequency", low=0, low_open=True),
        "origin_pass": Info("the exact shared-origin pass or the naive double backward (reference)", ORIGIN_PASSES),
        "coord_fraction": Info(
            "train on a random fraction p of the pixels each step (Monte Carlo; 1 = every pixel)",
            low=0,
            high=1,
            low_open=True,
        ),
        "coord_sampling": Info("one pixel subset for the inner and outer integrals, or two", COORD_SAMPLINGS),
        "coord_scale": Info(
            "coordinates span [-s, s]: long 1-D signals (audio) need hundreds to resolve their frequencies",
            low=0,
            low_open=True,
        ),
    }

    def __init__(
        self,
        latent_dim: int = 32,
        hidden: int = 256,
        depth: int = 4,
        channels: int = 1,
        image_size: int | tuple[int, ...] | list[int] = 28,
        w0: float = 30.0,
        steps: int = 1,
        step_size: float = 1.0,
        detach: bool = False,
        z0_std: float = 0.0,
        keep_z0: bool = True,
        origin_pass: str = "shared",
        coord_fraction: float = 0.25,
        coord_sampling: str = "same",
        coord_scale: float = 1.0,
    ):
        super().__init__(latent_dim, steps, step_size, detach, z0_std, keep_z0)
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if not size or min(size) < 1:
            raise ValueError(
                f"image_size must be a positive int or one positive length per dimension, got {image_size}"
            )
        if origin_pass not in self.ORIGIN_PASSES:
            raise ValueError(f"origin_pass must be one of {', '.join(self.ORIGIN_PASSES)}, got {origin_pass!r}")
        if not 0 < coord_fraction <= 1:
            raise ValueError(f"coord_fraction must be in (0, 1], got {coord_fraction}")
        if not coord_scale > 0:
            raise ValueError(f"coord_scale must be > 0, got {coord_scale}")
        if coord_sampling not in self.COORD_SAMPLINGS:
            raise ValueError(f"coord_sampling must be one of {', '.join(self.COORD_SAMPLINGS)}, got {coord_sampling!r}")
        if origin_pass == "shared" and not self.origin.shared_start:
            warnings.warn(
                "ImplicitGON: origin_pass='shared' needs one z0 for the whole batch; with z0_std > 0 "
                "every image starts elsewhere, so the naive pass is used",
                stacklevel=3,
            )
        elif origin_pass == "shared" and steps > 1:
            warnings.warn(
                f"ImplicitGON: origin_pass='shared' speeds up only the first of the {steps} latent steps; "
                "later steps start from per-image latents and use the naive pass",
                stacklevel=3,
            )
        self.image_size = size
        self.dims = len(size)  # d: the coordinates' dimension
        self.channels = channels
        self.origin_pass = origin_pass
        self.coord_fraction = coord_fraction
        self.coord_sampling = coord_sampling
        self.coord_scale = coord_scale
        self.siren = Siren(self.dims + latent_dim, channels, hidden, depth, w0)

    # -- rendering ------------------------------------------------------------------------
    def render(self, z: Tensor, coords: Tensor) -> Tensor:
        """F(c (+) z) for every signal and coordinate: z [B, k], coords [n, d] -> [B, n, C]."""
        if self.origin_pass == "naive":  # the original formulation: concatenate a repeated latent
            b, n = z.shape[0], coords.shape[0]
            return self.siren(torch.cat([coords.expand(b, -1, -1), z[:, None, :].expand(-1, n, -1)], dim=-1))
        b, n = z.shape[0], coords.shape[0]
        h = (
            self.siren.first_linear(coords)[None] + self.siren.first_linear(z, start=self.dims, bias=False)[:, None]
        )  # (B, n, H)
        return self.siren.trunk(h.view(b * n, -1)).view(b, n, -1)  # 2-D rows: faster matmul backward than 3-D

    def decode(self, z: Tensor, size: tuple[int, ...] | None = None) -> Tensor:
        """z [B, k] -> [B, C, *size] at ``size``, one length per dimension (default: the training size)."""
        size = tuple(size or self.image_size)
        if len(size) != self.dims:
            raise ValueError(f"this implicit GON renders {self.dims}-D grids, got size {size}")
        coords = self.coord_scale * coordinate_grid(*size, device=z.device, dtype=z.dtype)  # (N, d), N = prod(size)
        return self.render(z, coords).transpose(1, 2).reshape(z.shape[0], self.channels, *size)

    # -- latents --------------------------------------------------------------------------
    def _pixels(self, x: Tensor, pixels: Tensor | None) -> tuple[Tensor, Tensor]:
        """Coordinates [n, d] and values [B, n, C] of signals x at pixel indices ``pixels`` (None: all)."""
        coords, target = self._grid(x), as_pixels(x)  # (N, d), (B, N, C)
        return (coords, target) if pixels is None else (coords[pixels], target[:, pixels])

    def inner_loss(self, z: Tensor, x: Tensor, pixels: Tensor | None = None) -> Tensor:
        """The squared error integrated over the grid: the mean over pixels, summed over channels and signals.

        pixels: indices (into the grid, row-major) of the n pixels the integral runs over (their mean
            is the Monte Carlo estimate of the mean over all pixels); None: all pixels.
        """
        coords, target = self._pixels(x, pixels)
        return (1 / coords.shape[0]) * sum_squared_error(self.render(z, coords), target)

    def first_gradient(self, z0: Tensor, x: Tensor, pixels: Tensor | None = None) -> FirstGradient | None:
        """The shared-origin pass (``origin_pass="shared"``): one inner forward pass for the whole batch, where
        every image starts from the same z0 and has at least as many images as channels (cheaper there)."""
        b = x.shape[0]
        if self.origin_pass != "shared" or not self.origin.shared_start or self.channels > b:
            return None
        coords, target = self._pixels(x, pixels)
        scale = 1 / coords.shape[0]

        def first(create_graph: bool) -> Tensor:
            h0 = self.siren.first_linear(coords) + self.siren.first_linear(z0[:1], start=self.dims, bias=False)
            lift = self.siren.first_weight(start=self.dims)  # (H, k): w0 W_z
            return shared_origin_gradient(
                self.siren.trunk, h0, lift, lambda y: scale * sum_squared_error(y, target), b, create_graph
            )

        return first

    def reconstruct(self, x: Tensor, size: tuple[int, ...] | None = None) -> Tensor:
        """Reconstruct x, optionally rendered at another resolution (super-resolution)."""
        z = self.encode(x)
        return self.decode(z, size=size or x.shape[2:])

    def _grid(self, x: Tensor) -> Tensor:
        """The coordinates of x's grid [N, d], after checking that x [B, C, *grid] has this model's d and C."""
        if x.ndim != 2 + self.dims or x.shape[1] != self.channels:
            raise ValueError(
                f"this implicit GON takes [B, {self.channels}, ...] with {self.dims} grid dimension(s), "
                f"got {tuple(x.shape)}"
            )
        return self.coord_scale * coordinate_grid(*x.shape[2:], device=x.device, dtype=x.dtype)

    # -- training -------------------------------------------------------------------------
    def coordinate_subsets(self, total: int, device=None) -> tuple[Tensor | None, Tensor | None]:
        """Pixel indices for the inner and outer integrals of one training step (None: all pixels).

        Monte Carlo only while training with ``coord_fraction < 1``: round(p * total) pixels drawn
        without replacement, fresh each call.
        """
        if not self.training or self.coord_fraction >= 1:
            return None, None
        n = max(1, round(self.coord_fraction * total))
        inner = torch.randperm(total, device=device)[:n]
        outer = inner if self.coord_sampling == "same" else torch.randperm(total, device=device)[:n]
        return inner, outer

    def loss_terms(self, x: Tensor, subsets: tuple[Tensor | None, Tensor | None] | None = None) -> dict[str, Tensor]:
        """Mean summed squared error per image, or with Monte Carlo pixel subsets its estimate, unbiased
        for the latents they give (``subsets``: explicit (inner, outer) pixel indices, for tests)."""
        total = x[0, 0].numel()
        inner, outer = subsets if subsets is not None else self.coordinate_subsets(total, x.device)
        z = self.encode(x, pixels=inner)
        coords, target = self._pixels(x, outer)
        scale = 1.0 if outer is None else total / len(outer)
        sse = scale * (self.render(z, coords) - target).pow(2).flatten(1).sum(1)  # (B,)
        return {"loss": sse.mean()}


def as_pixels(x: Tensor) -> Tensor:
    """Signals [B, C, *grid] (images [B, C, H, W]) as the values of a function on the coordinate grid: [B, N, C]."""
    return x.flatten(2).transpose(1, 2)
