"""The implicit GON's exact shared-origin pass against the naive double backward, and its Monte
Carlo coordinates: same latents and parameter gradients (relative error <= 1e-4), and integrals
that are unbiased in expectation (checked exactly, by enumerating every pixel subset)."""

import itertools
import warnings

import pytest
import torch

from gon import ImplicitGON
from gon.nets import Siren
from gon.origin import shared_origin_gradient, sum_squared_error

TINY = dict(latent_dim=6, hidden=16, depth=2)
TOL = 1e-4


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


def twins(channels, size, **options):
    """A shared-pass model and a naive-pass model with the same weights (full grid unless told)."""
    options.setdefault("coord_fraction", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shared = ImplicitGON(channels=channels, image_size=size, origin_pass="shared", **TINY, **options)
        naive = ImplicitGON(channels=channels, image_size=size, origin_pass="naive", **TINY, **options)
    naive.load_state_dict(shared.state_dict())
    return shared, naive


def latents_and_gradients(model, x, seed=1, **loss_kw):
    torch.manual_seed(seed)  # the same z0 draws (z0_std > 0) for both passes
    z = model.encode(x)
    torch.manual_seed(seed)
    loss = model.loss_terms(x, **loss_kw)["loss"]
    return z, loss, torch.autograd.grad(loss, list(model.parameters()))


def assert_same(shared, naive, x, **loss_kw):
    z_s, loss_s, grads_s = latents_and_gradients(shared, x, **loss_kw)
    z_n, loss_n, grads_n = latents_and_gradients(naive, x, **loss_kw)
    assert rel_error(z_s, z_n) <= TOL
    assert rel_error(loss_s, loss_n) <= TOL
    names = [name for name, _ in shared.named_parameters()]
    for name, g_s, g_n in zip(names, grads_s, grads_n):
        assert rel_error(g_s, g_n) <= TOL, name


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [4, (7, 5), 12])
def test_shared_pass_gives_the_naive_latents_and_gradients(channels, size):
    shared, naive = twins(channels, size)
    s = (size, size) if isinstance(size, int) else size
    assert_same(shared, naive, torch.rand(5, channels, *s))


@pytest.mark.parametrize("options", [dict(steps=3, step_size=0.1), dict(detach=True), dict(keep_z0=False)])
def test_shared_pass_with_other_origin_options(options):
    shared, naive = twins(3, 6, **options)
    assert_same(shared, naive, torch.rand(4, 3, 6, 6))


def test_z0_noise_falls_back_to_the_naive_pass_and_says_so():
    with pytest.warns(UserWarning, match="naive pass is used"):
        ImplicitGON(z0_std=0.5, **TINY)
    shared, naive = twins(1, 6, z0_std=0.5)
    assert_same(shared, naive, torch.rand(4, 1, 6, 6))


def test_several_steps_warn_that_only_the_first_is_shared():
    with pytest.warns(UserWarning, match="only the first of the 3"):
        ImplicitGON(steps=3, **TINY)


def test_the_naive_pass_warns_about_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImplicitGON(origin_pass="naive", steps=3, z0_std=0.1, **TINY)


def test_batches_smaller_than_the_channel_count_still_match():
    shared, naive = twins(3, 5)
    assert_same(shared, naive, torch.rand(1, 3, 5, 5))


def test_inference_latents_match_without_a_graph():
    shared, naive = twins(3, 6)
    x = torch.rand(4, 3, 6, 6)
    with torch.no_grad():
        z_s, z_n = shared.encode(x), naive.encode(x)
    assert not z_s.requires_grad
    assert rel_error(z_s, z_n) <= TOL


def test_shared_origin_gradient_matches_autograd_on_a_plain_siren():
    """The function alone: a SIREN F(c, z) over n coordinates, every sample at z = 0."""
    siren = Siren(2 + 4, 2, hidden=12, depth=2)
    coords, x = torch.rand(9, 2) * 2 - 1, torch.rand(3, 9, 2)
    z = torch.zeros(3, 4, requires_grad=True)
    inputs = torch.cat([coords.expand(3, -1, -1), z[:, None].expand(-1, 9, -1)], dim=-1)
    (expected,) = torch.autograd.grad(sum_squared_error(siren(inputs), x), z)
    grad = shared_origin_gradient(
        siren.trunk,
        siren.first_linear(coords),
        siren.first_weight(start=2),
        lambda y: sum_squared_error(y, x),
        batch=3,
        create_graph=False,
    )
    assert rel_error(grad, expected) <= TOL


def test_siren_split_first_layer_is_its_forward_pass():
    siren = Siren(2 + 5, 3, hidden=8, depth=3)
    c, z = torch.rand(7, 2), torch.rand(7, 5)
    split = siren.trunk(siren.first_linear(c) + siren.first_linear(z, start=2, bias=False))
    torch.testing.assert_close(split, siren(torch.cat([c, z], dim=-1)))


# -- Monte Carlo coordinates ------------------------------------------------------------------


@pytest.mark.parametrize("origin_pass", ["shared", "naive"])
def test_monte_carlo_latents_are_unbiased_over_every_subset(origin_pass):
    """E[z] over all C(9, 3) pixel subsets of a 3x3 image equals the full-grid latent (the gradient is linear in
    the inner loss, and each subset's loss is scaled by 9 / 3)."""
    torch.manual_seed(0)
    model = ImplicitGON(channels=1, image_size=3, origin_pass=origin_pass, **TINY).double()
    x = torch.rand(4, 1, 3, 3, dtype=torch.float64)
    subsets = [torch.tensor(s) for s in itertools.combinations(range(9), 3)]
    with torch.no_grad():
        mean = torch.stack([model.encode(x, pixels=s) for s in subsets]).mean(0)
        full = model.encode(x)
    assert rel_error(mean, full) <= 1e-10


def test_monte_carlo_outer_loss_is_unbiased_for_given_latents():
    """With the inner integral over all pixels, the outer estimate averages to the full loss over all subsets."""
    torch.manual_seed(0)
    model = ImplicitGON(channels=3, image_size=(2, 3), coord_fraction=0.5, **TINY).double()
    x = torch.rand(3, 3, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        full = model.loss_terms(x, subsets=(None, None))["loss"]
        estimates = [
            model.loss_terms(x, subsets=(None, torch.tensor(s)))["loss"] for s in itertools.combinations(range(6), 3)
        ]
    assert rel_error(torch.stack(estimates).mean(), full) <= 1e-10


def test_monte_carlo_gradients_match_between_the_passes():
    shared, naive = twins(3, 6, coord_fraction=0.25)
    inner, outer = torch.randperm(36)[:9], torch.randperm(36)[:9]
    assert_same(shared, naive, torch.rand(4, 3, 6, 6), subsets=(inner, outer))


def test_subsets_are_fresh_sized_and_uniform_and_only_in_training():
    model = ImplicitGON(coord_fraction=0.25, **TINY)
    inner, outer = model.coordinate_subsets(40)
    assert inner is outer and len(inner) == 10 and len(set(inner.tolist())) == 10
    counts = torch.zeros(40)
    for _ in range(2000):
        counts[model.coordinate_subsets(40)[0]] += 1
    assert (counts / 2000 - 0.25).abs().max() < 0.05  # each pixel drawn with probability p
    independent = ImplicitGON(coord_fraction=0.25, coord_sampling="independent", **TINY)
    inner, outer = independent.coordinate_subsets(40)
    assert not torch.equal(inner, outer)
    assert model.eval().coordinate_subsets(40) == (None, None)
    assert ImplicitGON(coord_fraction=1, **TINY).coordinate_subsets(40) == (None, None)


def test_evaluation_uses_the_full_grid():
    model = ImplicitGON(coord_fraction=0.1, image_size=8, **TINY).eval()
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(model.loss(x), model.loss_terms(x, subsets=(None, None))["loss"])


def test_monte_carlo_training_step_runs_and_changes_the_loss():
    torch.manual_seed(0)
    model = ImplicitGON(coord_fraction=0.25, image_size=8, **TINY)
    x = torch.rand(4, 1, 8, 8)
    before = model.eval().loss(x).item()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(30):
        opt.zero_grad()
        model.loss(x).backward()
        opt.step()
    assert model.eval().loss(x).item() < before


@pytest.mark.parametrize(
    "options,match",
    [
        (dict(origin_pass="fast"), "origin_pass"),
        (dict(coord_fraction=0.0), "coord_fraction"),
        (dict(coord_fraction=1.5), "coord_fraction"),
        (dict(coord_sampling="mixed"), "coord_sampling"),
    ],
)
def test_options_are_validated(options, match):
    with pytest.raises(ValueError, match=match):
        ImplicitGON(**TINY, **options)
