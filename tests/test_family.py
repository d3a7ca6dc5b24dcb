"""The gradient-origin family (issue 22): learnt origins and Meta-SGD step sizes against closed forms, the latent
modes, encodings and blocks through the shared-origin pass, BCE, the recipes, and one functa model trained by
``gon fit`` on a colour folder and used by every inference command."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import gon
from gon import GON, ImplicitGON
from gon.cli import main
from gon.cli.fit import add_parser
from gon.core.errors import GonError
from gon.nets import CoordinateEncoding
from gon.origin import Origin, gradient_origin, sum_squared_error
from tests.helpers import FASHION_MNIST

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(latent_dim=5, hidden=12, depth=2)
TOL = 1e-4


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


# -- the origin options against closed forms (a linear decoder F(z) = A z + b) ----------------------
def linear_problem(batch=4, k=3, d=6):
    A = torch.randn(d, k, dtype=torch.float64, requires_grad=True)
    b = torch.randn(d, dtype=torch.float64)
    x = torch.randn(batch, d, dtype=torch.float64)
    return A, b, x, lambda z: sum_squared_error(z @ A.T + b, x)


def test_meta_sgd_steps_are_per_dimension_descent_clipped_at_zero():
    A, b, x, inner = linear_problem()
    sizes = torch.tensor([[0.1, -0.5, 0.02], [0.05, 0.2, 0.0]], dtype=torch.float64, requires_grad=True)
    z = Origin(steps=2, learn_step_size=True)(inner, torch.zeros(4, 3, dtype=torch.float64), step_sizes=sizes)
    expected, clipped = torch.zeros(4, 3, dtype=torch.float64), sizes.clamp(min=0)
    for s in range(2):
        expected = expected - clipped[s] * (2 * (expected @ A.T + b - x) @ A)
    torch.testing.assert_close(z, expected)
    (grad,) = torch.autograd.grad(z.sum(), sizes)
    assert grad[0, 1] == 0 and grad[0, 0] != 0  # a clipped step size learns nothing until it is positive again


def test_a_learnt_origin_is_a_descent_step_from_it_and_learns_through_both_paths():
    A, b, x, inner = linear_problem()
    z0 = torch.randn(3, dtype=torch.float64, requires_grad=True)
    start = Origin(learn_origin=True).start(4, 3, x, z0)
    z = gradient_origin(inner, start, step_size=0.1)
    closed = lambda v: v - 0.1 * (2 * (v @ A.T + b - x) @ A)  # noqa: E731
    torch.testing.assert_close(z, closed(z0.expand(4, 3)))
    (got,) = torch.autograd.grad(sum_squared_error(z @ A.T + b, x), z0)
    (want,) = torch.autograd.grad(sum_squared_error(closed(z0.expand(4, 3)) @ A.T + b, x), z0)
    torch.testing.assert_close(got, want)


def test_meta_sgd_starts_at_the_step_size_or_uniform_in_functas_range():
    assert torch.equal(
        Origin(steps=2, step_size=0.3, learn_step_size=True).initial_step_sizes(4), torch.full((2, 4), 0.3)
    )
    sizes = Origin(steps=3, step_size=0.1, learn_step_size=True, step_size_low=0.005).initial_step_sizes(1000)
    assert sizes.shape == (3, 1000) and 0.005 <= sizes.min() and sizes.max() <= 0.1 and sizes.std() > 0.02
    with pytest.raises(ValueError, match="needs --learn-step-size"):
        Origin(step_size_low=0.01)
    with pytest.raises(ValueError, match="must be <= step_size"):
        Origin(learn_step_size=True, step_size=0.1, step_size_low=0.5)


@pytest.mark.parametrize(
    "make,size",
    [(lambda **o: GON(latent_dim=6, width=4, **o), 32), (lambda **o: ImplicitGON(**TINY, **o), 28)],
    ids=["conv", "implicit"],
)
def test_an_untrained_zero_origin_and_fixed_step_sizes_are_todays_model_exactly(make, size):
    """One step at a fixed step size, z0 a zero parameter and Meta-SGD sizes at that step size: bit for bit."""
    x = torch.rand(3, 1, size, size)
    torch.manual_seed(0)
    today = make()
    torch.manual_seed(0)
    learnt = make(learn_origin=True, learn_step_size=True)
    assert {n for n, _ in learnt.named_parameters()} - {n for n, _ in today.named_parameters()} == {"z0", "step_sizes"}
    torch.manual_seed(1)
    z_today, loss_today = today.encode(x), today.loss(x)
    torch.manual_seed(1)
    z_learnt, loss_learnt = learnt.encode(x), learnt.loss(x)
    assert torch.equal(z_today, z_learnt) and torch.equal(loss_today, loss_learnt)
    grads = dict(
        zip([n for n, _ in learnt.named_parameters()], torch.autograd.grad(loss_learnt, list(learnt.parameters())))
    )
    assert grads["z0"].abs().sum() > 0 and grads["step_sizes"].abs().sum() > 0  # both are trained


# -- latent modes, encodings and blocks through the shared-origin pass -----------------------------
def twins(channels, size, **options):
    options.setdefault("coord_fraction", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shared = ImplicitGON(channels=channels, image_size=size, origin_pass="shared", **TINY, **options)
        naive = ImplicitGON(channels=channels, image_size=size, origin_pass="naive", **TINY, **options)
    naive.load_state_dict(shared.state_dict())
    return shared, naive


def assert_same(shared, naive, x):
    z_s, z_n = shared.encode(x), naive.encode(x)
    assert rel_error(z_s, z_n) <= TOL
    torch.manual_seed(2)
    loss_s = shared.loss(x)
    torch.manual_seed(2)
    loss_n = naive.loss(x)
    assert rel_error(loss_s, loss_n) <= TOL
    names = [name for name, _ in shared.named_parameters()]
    grads = zip(
        torch.autograd.grad(loss_s, list(shared.parameters())), torch.autograd.grad(loss_n, list(naive.parameters()))
    )
    for name, (g_s, g_n) in zip(names, grads):
        assert rel_error(g_s, g_n) <= TOL, name


@pytest.mark.parametrize("mode", ["shift", "film", "multiply"])
@pytest.mark.parametrize("size", [[9], [5, 4], [3, 3, 2]], ids=["1d", "2d", "3d"])
def test_every_latent_mode_gives_the_naive_latents_through_the_shared_pass(mode, size):
    shared, naive = twins(2, size, latent_mode=mode, coord_fraction=0.5)  # Monte Carlo coordinates too
    assert_same(shared, naive, torch.rand(3, 2, *size))


@pytest.mark.parametrize(
    "options",
    [
        dict(latent_mode="shift", learn_origin=True, learn_step_size=True, steps=3, step_size=0.1, step_size_low=0.01),
        dict(encoding="nerf", block="relu", loss="bce"),
        dict(encoding="gaussian-learnt", block="silu", latent_mode="film"),
        dict(encoding="gaussian", block="leaky-relu", latent_mode="multiply", loss="bce"),
    ],
    ids=["functa-learnt", "nerf-relu-bce", "fourier-silu-film", "fourier-leaky-multiply-bce"],
)
def test_encodings_blocks_bce_and_learnt_origins_keep_the_shared_pass_exact(options):
    shared, naive = twins(3, 5, **options)
    if shared.z0 is not None:  # a trained origin, not zero: still one z0 for the batch
        with torch.no_grad():
            shared.z0.normal_()
            naive.z0.copy_(shared.z0)
    assert_same(shared, naive, torch.rand(4, 3, 5, 5))


def test_shift_monte_carlo_latents_are_unbiased_over_every_subset():
    torch.manual_seed(0)
    model = ImplicitGON(channels=1, image_size=3, latent_mode="shift", **TINY).double()
    x = torch.rand(2, 1, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        mean = torch.stack([model.encode(x, pixels=torch.tensor(s)) for s in itertools.combinations(range(9), 3)])
        assert rel_error(mean.mean(0), model.encode(x)) <= 1e-10


def test_encodings_are_the_published_formulas():
    c = torch.tensor([[0.5, -0.25]])
    nerf = CoordinateEncoding(2, "nerf", size=3)(c)
    angles = math.pi * torch.tensor([0.5, 1.0, 2.0, -0.25, -0.5, -1.0])  # pi 2^j c, per coordinate
    torch.testing.assert_close(nerf, torch.cat([angles.sin(), angles.cos()])[None])
    torch.manual_seed(0)
    fixed, learnt = CoordinateEncoding(2, "gaussian", 4, 2.0), CoordinateEncoding(2, "gaussian-learnt", 4, 2.0)
    assert "projection" in dict(fixed.named_buffers()) and "projection" in dict(learnt.named_parameters())
    angles = 2 * math.pi * c @ fixed.projection
    torch.testing.assert_close(fixed(c), torch.cat([angles.sin(), angles.cos()], -1))


def test_bce_is_the_inner_and_outer_loss_of_both_gons():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 32, 32)
    model = GON(latent_dim=4, width=4, loss="bce")
    z = model.encode(x)
    with torch.enable_grad():
        z0 = torch.zeros(2, 4, requires_grad=True)
        (grad,) = torch.autograd.grad(
            torch.nn.functional.binary_cross_entropy(model.decode(z0), x, reduction="sum"), z0
        )
    torch.testing.assert_close(z, -grad)
    bce = torch.nn.functional.binary_cross_entropy(model.decode(z), x, reduction="none").flatten(1).sum(1).mean()
    torch.testing.assert_close(model.loss(x), bce)
    implicit = ImplicitGON(**TINY, loss="bce", coord_fraction=1.0)
    y = implicit.decode(implicit.encode(torch.rand(2, 1, 28, 28)))
    assert 0 < y.min() and y.max() < 1  # sigmoid outputs


# -- recipes, gon fit and the inference commands --------------------------------------------------
def fit_config(*argv):
    import argparse

    from gon.cli.fit import config_from_args

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    return config_from_args(parser.parse_args(["fit", *argv]))


def test_a_recipe_sets_the_model_and_options_and_any_flag_wins():
    config = fit_config("--recipe", "functa", "--steps", "2", "--hidden", "16")
    assert config.model == "implicit"
    assert config.model_options["latent_mode"] == "shift" and config.model_options["learn_step_size"] is True
    assert config.model_options["steps"] == 2 and config.model_options["hidden"] == 16
    assert fit_config("--recipe", "gon", "--model", "gon").model_options["steps"] == 1  # the origin options apply
    with pytest.raises(GonError, match="recipe 'functa' sets option latent_mode .* use --model implicit"):
        fit_config("--recipe", "functa", "--model", "gon")


@pytest.mark.skipif(
    not FASHION_MNIST.is_dir(), reason="make_colour_folder.py needs apt-get install dataset-fashion-mnist"
)
def test_functa_trains_on_a_users_colour_folder_and_every_command_uses_it(tmp_path):
    folder = tmp_path / "colour"
    make = [
        sys.executable,
        str(ROOT / "scripts" / "make_colour_folder.py"),
        str(folder),
        "--count",
        "40",
        "--size",
        "12",
    ]
    subprocess.run(make, check=True, capture_output=True)
    run = tmp_path / "run"
    fit = ["fit", "--model", "implicit", "--recipe", "functa", "--dataset", f"folder:{folder}", "--max-steps", "2"]
    fit += ["--batch-size", "8", "--hidden", "8", "--depth", "2", "--latent-dim", "4", "--out", str(run)]
    assert main([*fit, "--picture-every", "1000", "--val-size", "4"]) == 0
    model = gon.load(run)
    assert model.config["latent_mode"] == "shift" and model.config["steps"] == 3 and model.step_sizes.shape == (3, 4)
    assert model.siren.layers[0].linear.weight.shape == (8, 2)  # functa's first layer sees the coordinates only
    for cmd, extra in [
        ("sample", ["-n", "2"]),
        ("interpolate", ["--pairs", "1", "--steps", "2"]),
        ("render", ["--resolution", "20", "-n", "1"]),
    ]:
        assert main([cmd, str(run), *extra, "--out", str(tmp_path / f"{cmd}.png")]) == 0, cmd
    explore = pytest.importorskip("gon.explore", reason="gon explore needs the explore extra")
    from gon.explore.media import medium_for

    medium = medium_for(model)
    explorer = explore.Explorer(model, explore.Examples(torch.rand(2, 3, *medium.size), ["a", "b"], "random"))
    z = explorer.latents(explorer.example(1))
    assert explorer.render(z, (20, 20)).shape == (1, 3, 20, 20)
