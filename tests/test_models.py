"""Every model: shapes, parameter counts, batch independence of encode, a falling loss, seeded determinism."""

import pytest
import torch
import torch.nn.functional as F

import gon
from gon.models.registry import MODELS
from tests.helpers import image_size_of, tiny_model

ALL = sorted(MODELS)


def images(name, n=6, channels=1):
    s = image_size_of(name)
    return torch.rand(n, channels, s, s)


@pytest.mark.parametrize("name", ALL)
def test_shared_api_shapes(name):
    model = tiny_model(name)
    x = images(name)
    z = model.encode(x)
    assert z.shape == (6, model.latent_dim)
    assert model.decode(z).shape == x.shape
    assert model.reconstruct(x).shape == x.shape
    loss = model.loss(x)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("training", [True, False])
def test_encode_of_one_image_equals_its_code_in_a_batch(name, training):
    model = tiny_model(name).train(training)
    x = images(name, n=8)
    alone = torch.cat([model.encode(x[i : i + 1]) for i in range(3)])
    together = model.encode(x)[:3]
    other_batch = model.encode(torch.cat([x[:3], torch.rand_like(x[:5])]))[:3]
    torch.testing.assert_close(alone, together, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(other_batch, together, rtol=1e-4, atol=1e-5)


def test_batchnorm_variant_couples_the_batch_as_documented():
    """The paper's BatchNorm: the same image gets another code when its batch changes (train mode)."""
    model = gon.GON(latent_dim=8, width=4, image_size=16, norm="batch").train()
    x = torch.rand(8, 1, 16, 16)
    assert not torch.allclose(model.encode(x[:4])[:2], model.encode(x)[:2], rtol=1e-3)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_paper_conv_gon_parameter_count(norm):
    assert sum(p.numel() for p in gon.GON(norm=norm).parameters()) == 74_321


def test_implicit_gon_parameter_counts():
    assert sum(p.numel() for p in gon.ImplicitGON().parameters()) == 206_593  # SIREN 4x256, latent 32
    assert sum(p.numel() for p in gon.ImplicitGON(hidden=32).parameters()) == 4_321


@pytest.mark.parametrize("size", [32, 64, 128])
def test_conv_gon_scales_by_powers_of_two(size):
    model = gon.GON(channels=3, image_size=size)
    assert model.decode(torch.zeros(2, 32)).shape == (2, 3, size, size)


def test_conv_gon_rejects_sizes_it_cannot_produce():
    with pytest.raises(ValueError, match="power of two"):
        gon.GON(image_size=28)


def test_implicit_gon_renders_any_resolution():
    model = tiny_model("implicit")
    z = model.encode(images("implicit", n=2))
    assert model.decode(z, size=(40, 24)).shape == (2, 1, 40, 24)
    assert model.reconstruct(images("implicit", n=2), size=(5, 7)).shape == (2, 1, 5, 7)
    # rectangular training images work too
    rect = gon.ImplicitGON(latent_dim=4, hidden=8, depth=1, channels=3, image_size=(6, 10))
    assert rect.reconstruct(torch.rand(2, 3, 6, 10)).shape == (2, 3, 6, 10)


def test_variational_gon_reports_its_elbo_parts_and_samples():
    model = tiny_model("vgon")
    terms = model.loss_terms(images("vgon"))
    torch.testing.assert_close(terms["loss"], terms["bce"] + terms["kl"])
    assert terms["kl"] >= 0
    assert model.sample(5).shape == (5, 1, 16, 16)


@pytest.mark.parametrize("activation", ["elu", "relu", "silu", "tanh", "sine"])
def test_activation_is_a_decoder_parameter(activation):
    model = gon.GON(latent_dim=8, width=4, image_size=16, activation=activation)
    assert torch.isfinite(model.loss(torch.rand(2, 1, 16, 16)))


@pytest.mark.parametrize("name,ratio", [("gon", 0.7), ("vgon", 0.8)])  # BCE has a floor: the pixels' entropy
def test_loss_falls_on_real_fashion_mnist(name, ratio, fashion_subset):
    torch.manual_seed(0)
    model = gon.models.registry.MODELS[name](latent_dim=16, width=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all = fashion_subset.images
    losses = []
    for step in range(40):
        x = x_all[(step * 32) % 512 : (step * 32) % 512 + 32]
        loss = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < ratio * first, (first, last)


@pytest.mark.parametrize("name", ALL)
def test_seeded_construction_and_loss_are_deterministic(name):
    def run():
        torch.manual_seed(123)
        model = tiny_model(name)
        return model.loss(images(name)).item(), [p.detach().clone() for p in model.parameters()]

    (loss_a, params_a), (loss_b, params_b) = run(), run()
    assert loss_a == loss_b
    assert all(torch.equal(a, b) for a, b in zip(params_a, params_b))


@pytest.mark.parametrize("origin_pass", ["shared", "naive"])
def test_implicit_encode_is_the_gradient_of_its_own_inner_loss(origin_pass):
    """encode goes through inner_loss (the shared pass is only an exact shortcut for its first gradient)."""
    model = tiny_model("implicit", origin_pass=origin_pass)
    x, pixels = torch.rand(3, 1, 12, 12), torch.randperm(144)[:40]
    for where in ({}, {"pixels": pixels}):
        z0 = torch.zeros(3, 8, requires_grad=True)
        (grad,) = torch.autograd.grad(model.inner_loss(z0, x, **where), z0)
        assert torch.allclose(model.encode(x, **where), -grad, rtol=1e-5, atol=1e-7)
    assert (model.first_gradient(z0, x) is None) == (origin_pass == "naive")


@pytest.mark.parametrize("name", ["vgon", "vae"])
def test_variational_test_loss_is_a_seeded_elbo_like_training(name):
    """Review finding 11: in evaluation loss_terms decoded the posterior mean, so the logged test loss was not the
    ELBO that training logs (a flattering 'test' curve beside the sampled train ELBO)."""
    model = tiny_model(name).train()
    with torch.no_grad():
        model.heads.logvar.bias.fill_(0.0)  # a wide posterior: a draw decodes far from the mean
    x = torch.rand(4, 1, 16, 16)
    assert torch.equal(model.gradient_latent(x), model.gradient_latent(x))  # the inner pass has no noise
    assert not torch.equal(model.loss_terms(x)["bce"], model.loss_terms(x)["bce"])  # training draws afresh
    model.eval()
    with torch.no_grad():
        terms, again = model.loss_terms(x), model.loss_terms(x)
        at_mean = F.binary_cross_entropy(model.decode(model.encode(x)), x, reduction="none").flatten(1).sum(1)
    assert torch.equal(terms["loss"], again["loss"])  # seeded: repeatable
    assert not torch.allclose(terms["bce"], at_mean.mean())  # a posterior draw, not the mean
    torch.testing.assert_close(terms["loss"], terms["bce"] + terms["kl"])


def test_capabilities_are_class_attributes():
    from gon.models.registry import MODELS, image_size

    assert [n for n, c in MODELS.items() if c.renders_any_size] == ["implicit"]
    assert [n for n, c in MODELS.items() if c.batch_fields] == ["glo"]
    assert {n: image_size(n, 28) for n in ("gon", "implicit", "vae")} == {"gon": 32, "implicit": 28, "vae": 32}
    assert image_size("gon", 28, requested=16) == 16 and image_size("gon", 64) == 64


def test_every_model_constructor_takes_options():
    """A model class that writes a constructor decorates it (@takes_options): without it, its options would be
    neither checked nor recorded in ``model.config`` (so not saved)."""
    classes = {klass for cls in MODELS.values() for klass in cls.__mro__ if issubclass(klass, gon.GradientOriginModel)}
    bare = [
        klass.__name__
        for klass in classes
        if "__init__" in vars(klass) and not hasattr(vars(klass)["__init__"], "__wrapped__")
    ]
    assert not bare, f"constructors without @takes_options: {bare}"


@pytest.mark.parametrize("name", ALL)
def test_calling_a_model_reconstructs_and_a_hook_sees_it(name):
    """model(x) is reconstruct(x), with the latent on request; a forward hook sees it. The evaluation's
    loss_and_reconstruction is loss_terms and reconstruct, the images encoded once where the loss allows."""
    model = tiny_model(name).eval()
    x = images(name)[:2]
    seen = []
    handle = model.register_forward_hook(lambda module, args, out: seen.append(out))
    x_hat, z = model(x, return_latent=True)
    handle.remove()
    assert z.shape == (2, model.latent_dim) and seen
    terms, recon = model.loss_and_reconstruction(x)
    assert torch.equal(x_hat, recon) and torch.equal(terms["loss"], model.loss_terms(x)["loss"])


def test_torch_compile_traces_a_gon_at_inference():
    """The gradient at the origin inside forward traces (dynamo, the eager backend: no C++ compiler needed)."""
    model, x = tiny_model("gon").eval(), images("gon")[:2]
    torch._dynamo.reset()
    assert torch.allclose(torch.compile(model, backend="eager")(x), model.reconstruct(x), atol=1e-5)
