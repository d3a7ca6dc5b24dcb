"""The implicit GON (Sec. 3.4, Eq. 12): a SIREN over coordinates and the latent, for signals of any grid dimension."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from gon.core.settings import Info
from gon.models.core import LOSS_INFO, GradientOriginModel, takes_options
from gon.nets import BLOCKS, ENCODINGS, LATENT_MODES, ImplicitNet, coordinate_grid
from gon.origin import FirstGradient, pixel_error, shared_origin_gradient

MAX_LAYERS = 256  # a SIREN's depth: each layer is a module object, built before any memory check can help


class ImplicitGON(GradientOriginModel):
    """The implicit GON (Sec. 3.4, Eq. 12): a SIREN over coordinates concatenated with the latent, and the
    later work's variants of it (:mod:`gon.nets.inr`).

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
    over the batch, so latents stay batch-independent): with the conv GON's summed error the
    latents of a SIREN would be H * W times larger and its sines saturate (docs/core.md).
    coord_fraction: p in (0, 1]: while training, both coordinate integrals (inner and outer loss)
        run over a random p of the pixels, fresh each step and scaled by 1/p, so each is an
        unbiased estimate of its full sum. Evaluation (eval mode) always uses the full grid.
        Default 0.25, the best at equal wall-clock (docs/performance.md); 1 trains on every pixel (the paper's
        objective).
    coord_sampling: "same" (one subset for the inner and outer integrals) or "independent".
    coord_scale: the coordinates span [-coord_scale, coord_scale]^d instead of [-1, 1]^d. The first layer's
        weights (SIREN init U(-1/(d + k), 1/(d + k)), times w0) then resolve frequencies up to about
        w0 * coord_scale / (d + k) radians per unit: 1 suits 28x28 images, a clip of thousands of samples
        needs hundreds (SIREN's audio fits scale their first layer ~100x for the same reason). Only the
        coordinates are scaled, not the latent's weights, so latents keep their size.
    latent_mode: how the latent enters the network: "concat" (the paper's, and CAVIA's context parameters),
        "shift" (functa: a linear map of the latent to one shift per hidden unit of every hidden layer), "film"
        (a scale and a shift per hidden unit, both linear in the latent) or "multiply" (Mehta et al. 2021's ReLU
        modulation network multiplying every hidden layer, gon-pytorch's ``modulation``). The shared-origin pass
        is exact for all four (at one z0 every modulation is shared too, so the inner forward is one pass).
    block: "siren" (sine layers, w0) or gon-pytorch's "relu", "silu" (its swish) and "leaky-relu" blocks.
    encoding: the coordinates as they are ("none"), NeRF frequencies ("nerf": ``encoding_size`` octaves per
        coordinate) or Gaussian Fourier features ("gaussian", "gaussian-learnt": ``encoding_size`` features,
        N(0, encoding_scale^2) frequencies, learnt or fixed), as gon-pytorch's encodings.
    loss: "sse" (the squared error above) or "bce" (binary cross-entropy, gon-pytorch's; the output then goes
        through a sigmoid), integrated over the grid the same way in the inner and the outer loss.
    The network is kept as ``self.siren`` (its name in earlier gons' checkpoints) whatever its blocks.
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
        "latent_mode": Info(
            "how the latent enters: concatenated (the paper's), functa's shifts, FiLM, or a multiplicative "
            "modulation network (Mehta et al., gon-pytorch's)",
            LATENT_MODES,
        ),
        "block": Info("implicit network blocks: sine (SIREN) or ReLU / SiLU / leaky-ReLU layers", BLOCKS),
        "encoding": Info("coordinate encoding: none, NeRF frequencies, Gaussian Fourier features", ENCODINGS),
        "encoding_size": Info("NeRF octaves per coordinate, or Gaussian Fourier features", low=1, high=4096),
        "encoding_scale": Info("standard deviation of the Gaussian Fourier frequencies", low=0, low_open=True),
        **LOSS_INFO,
    }

    @takes_options
    def __init__(
        self,
        latent_dim: int = 32,
        hidden: int = 256,
        depth: int = 4,
        channels: int = 1,
        image_size: int | tuple[int, ...] | list[int] = 28,
        w0: float = 30.0,
        origin_pass: str = "shared",
        coord_fraction: float = 0.25,
        coord_sampling: str = "same",
        coord_scale: float = 1.0,
        latent_mode: str = "concat",
        block: str = "siren",
        encoding: str = "none",
        encoding_size: int = 10,
        encoding_scale: float = 1.0,
        loss: str = "sse",
        **origin,
    ):
        super().__init__(latent_dim, **origin)
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if not size:  # the lengths' bounds are checked with the other options
            raise ValueError(
                f"image_size must be a positive int or one positive length per dimension, got {image_size}"
            )
        if origin_pass == "shared" and not self.origin.shared_start:
            warnings.warn(
                "ImplicitGON: origin_pass='shared' needs one z0 for the whole batch; with z0_std > 0 "
                "every image starts elsewhere, so the naive pass is used",
                stacklevel=3,
            )
        elif origin_pass == "shared" and self.origin.steps > 1:
            warnings.warn(
                f"ImplicitGON: origin_pass='shared' speeds up only the first of the {self.origin.steps} latent steps; "
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
        self.pixel_loss = loss
        self.siren = ImplicitNet(
            self.dims,
            latent_dim,
            channels,
            hidden,
            depth,
            w0,
            block=block,
            latent_mode=latent_mode,
            encoding=encoding,
            encoding_size=encoding_size,
            encoding_scale=encoding_scale,
            output="sigmoid" if loss == "bce" else "linear",
        )

    # -- rendering ------------------------------------------------------------------------
    def render(self, z: Tensor, coords: Tensor) -> Tensor:
        """F(c (+) z) for every signal and coordinate: z [B, k], coords [n, d] -> [B, n, C]."""
        net = self.siren
        if self.origin_pass == "naive" and net.latent_mode == "concat":  # the original: a repeated latent
            b, n = z.shape[0], coords.shape[0]
            e = net.encoding(coords)
            inputs = torch.cat([e.expand(b, -1, -1), z[:, None, :].expand(-1, n, -1)], dim=-1)
            first = net.layers[0]
            return net.trunk(F.linear(inputs, net.first_weight(), first.w0 * first.linear.bias))
        return net(z, coords)  # concat: W_c c + b once per grid, plus each signal's W_z z

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
        return (1 / coords.shape[0]) * pixel_error(self.render(z, coords), target, self.pixel_loss).sum()

    def first_gradient(self, z0: Tensor, x: Tensor, pixels: Tensor | None = None) -> FirstGradient | None:
        """The shared-origin pass (``origin_pass="shared"``): one inner forward pass for the whole batch, where
        every image starts from the same z0 and has at least as many images as channels (cheaper there)."""
        b = x.shape[0]
        if self.origin_pass != "shared" or not self.origin.shared_start or self.channels > b:
            return None
        coords, target = self._pixels(x, pixels)
        scale = 1 / coords.shape[0]
        net = self.siren

        def loss(y: Tensor) -> Tensor:
            return scale * pixel_error(y, target, self.pixel_loss).sum()

        def first(create_graph: bool) -> Tensor:
            h = net.features(coords)  # (n, H)
            m0 = net.modulations(z0[:1])  # (1, M): the same for every sample at a shared z0
            if net.latent_mode == "concat":  # the latent joins the first argument through W_z
                lift = net.first_weight(start=net.coord_features)  # (H, k): w0 W_z
                return shared_origin_gradient(net.trunk, h + m0, lift, loss, b, create_graph)

            def lift(pulled: Tensor) -> Tensor:  # dL/dm [B, M] -> dL/dz [B, k]: the VJP of m at z0, per sample
                zb = z0 if (create_graph and z0.requires_grad) else z0.detach().requires_grad_()
                (grad,) = torch.autograd.grad(net.modulations(zb), zb, pulled, create_graph=create_graph)
                return grad

            rows = m0.expand(h.shape[0], -1)  # m(z0) on every row: its gradient row by row is G_o
            return shared_origin_gradient(lambda m: net.trunk(h, m), rows, lift, loss, b, create_graph)

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
        error = scale * pixel_error(self.render(z, coords), target, self.pixel_loss).flatten(1).sum(1)  # (B,)
        return {"loss": error.mean()}


def as_pixels(x: Tensor) -> Tensor:
    """Signals [B, C, *grid] (images [B, C, H, W]) as the values of a function on the coordinate grid: [B, N, C]."""
    return x.flatten(2).transpose(1, 2)
