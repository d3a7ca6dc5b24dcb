"""The baselines and task models: what each claims about its encoder, worked out exactly where possible."""

import pytest
import torch
import torch.nn.functional as F

import gon
from gon.metrics import classification_accuracy, elbo_bits_per_dim
from gon.models import GLO, VAE, AutoEncoder, ClassifierGON, ConversionAE, ConversionGON, TiedAutoEncoder, degrade
from gon.nets import ConvEncoder

SMALL = {"latent_dim": 8, "width": 4, "image_size": 16}


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_autoencoder_is_the_gons_decoder_plus_a_mirrored_encoder():
    assert count(AutoEncoder()) == count(gon.GON()) + count(ConvEncoder()) == 148_673  # twice the GON's 74,321
    ae, g = AutoEncoder(**SMALL), gon.GON(**SMALL)
    assert [p.shape for p in ae.decoder.parameters()] == [p.shape for p in g.decoder.parameters()]


def test_tied_autoencoder_encodes_with_the_decoders_transposed_weights():
    torch.manual_seed(0)
    tied = TiedAutoEncoder(latent_dim=4, width=2, image_size=8, norm="none")
    assert (
        count(tied) - count(gon.GON(latent_dim=4, width=2, image_size=8, norm="none")) == 4 + 2
    )  # encoder biases only
    # the encoder's first map is the adjoint of the decoder's output layer: <A x, y> = <x, A^T y>
    out_conv = tied.decoder.main[-2]
    x, y = torch.rand(3, 1, 8, 8), torch.rand(3, 2, 4, 4)
    with torch.no_grad():
        decoded = out_conv(y) - out_conv.bias.view(1, -1, 1, 1)  # A^T y, the bias removed
        encoded = F.conv2d(x, out_conv.weight, stride=2, padding=1)  # A x, as the encoder computes it
    torch.testing.assert_close((encoded * y).sum(), (x * decoded).sum())
    # and the weights really are shared: encoding trains the decoder's weights
    tied.encode(x).sum().backward()
    assert all(m.weight.grad is not None for m in tied.decoder.main if isinstance(m, torch.nn.ConvTranspose2d))


def test_glo_trains_one_code_per_image_and_fits_codes_for_unseen_images(fashion_subset):
    torch.manual_seed(0)
    x = F.interpolate(fashion_subset.images[:32], size=16, mode="bilinear")
    glo = GLO(num_images=32, **SMALL, fit_steps=60)
    opt = torch.optim.Adam(glo.parameters(), lr=1e-2)
    index = torch.arange(32)
    before = glo.loss(x, index).item()
    for _ in range(60):
        loss = glo.loss_terms(x[:16], index[:16])["loss"]  # only codes 0..15 are trained
        opt.zero_grad()
        loss.backward()
        assert glo.codes.grad[16:].abs().sum() == 0
        opt.step()
    assert glo.loss(x[:16], index[:16]).item() < 0.6 * before
    glo.eval()
    fitted = glo.reconstruct(x[16:])  # unseen images: codes fitted with the decoder frozen
    from_origin = glo.decode(torch.zeros(16, 8))
    assert (fitted - x[16:]).pow(2).sum() < 0.8 * (from_origin - x[16:]).pow(2).sum()
    torch.testing.assert_close(glo.loss(x[16:]), (fitted - x[16:]).pow(2).flatten(1).sum(1).mean())


def test_vae_shares_the_variational_gons_heads_decoder_and_elbo():
    vae, vgon = VAE(**SMALL), gon.VariationalGON(**SMALL)
    assert count(vae) == count(vgon) + count(ConvEncoder(8, 4, 1, 16))
    terms = vae.loss_terms(torch.rand(4, 1, 16, 16))
    torch.testing.assert_close(terms["loss"], terms["bce"] + terms["kl"])
    assert vae.sample(3).shape == (3, 1, 16, 16)


@pytest.mark.parametrize("name", ["vgon", "vae"])
def test_elbo_bits_per_dim_matches_a_hand_computed_case(name):
    """Decoder output 0.5 everywhere: BCE = ln 2 per pixel = 1 bit/dim; posterior N(m, s^2): KL by formula."""
    model = gon.MODELS[name](**SMALL)
    out = model.decoder.main[-2]
    m, s2 = 0.5, 0.25
    with torch.no_grad():
        out.weight.zero_()
        out.bias.zero_()  # sigmoid(0) = 0.5 for every pixel, whatever z is
        for head, value in ((model.heads.mu, m), (model.heads.logvar, torch.tensor(s2).log().item())):
            head.weight.zero_()
            head.bias.fill_(value)
    x = torch.rand(10, 1, 16, 16)
    result = elbo_bits_per_dim(model, x, samples=2, batch_size=4)
    kl = 0.5 * 8 * (m**2 + s2 - 1 - torch.tensor(s2).log().item())  # nats per image
    assert result["bce_bpd"] == pytest.approx(1.0, rel=1e-5)
    assert result["kl_bpd"] == pytest.approx(kl / (256 * torch.tensor(2.0).log().item()), rel=1e-5)
    assert result["elbo_bpd"] == pytest.approx(result["bce_bpd"] + result["kl_bpd"])


def test_elbo_needs_a_variational_model():
    with pytest.raises(TypeError, match="variational"):
        elbo_bits_per_dim(gon.GON(**SMALL), torch.rand(2, 1, 16, 16))


def test_classifier_gon_losses_and_accuracy():
    torch.manual_seed(0)
    x, y = torch.rand(6, 1, 16, 16), torch.tensor([0, 1, 2, 3, 3, 3])
    alone, joint = ClassifierGON(**SMALL, recon_weight=0.0), ClassifierGON(**SMALL, recon_weight=0.5)
    terms = alone.loss_terms(x, y)
    torch.testing.assert_close(terms["loss"], terms["ce"])
    terms = joint.loss_terms(x, y)
    torch.testing.assert_close(terms["loss"], terms["ce"] + 0.5 * terms["sse"])
    assert alone.logits(x).shape == (6, 10) and alone.classify(x).shape == (6,)
    with torch.no_grad():  # a classifier that always answers 3
        alone.classifier.weight.zero_()
        alone.classifier.bias.copy_(torch.arange(10.0) == 3)
    assert classification_accuracy(alone, x, y, batch_size=4) == pytest.approx(0.5)


def test_classifier_gon_learns_from_the_gradient_latent_alone(fashion_subset):
    torch.manual_seed(0)
    x = F.interpolate(fashion_subset.images[:256], size=16, mode="bilinear")
    y = fashion_subset.labels[:256]
    model = ClassifierGON(**SMALL, recon_weight=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(60):
        batch = slice((step * 64) % 256, (step * 64) % 256 + 64)
        loss = model.loss(x[batch], y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert classification_accuracy(model, x, y) > 0.4  # 10 classes: chance is 0.1


@pytest.mark.parametrize("cls", [ConversionGON, ConversionAE])
@pytest.mark.parametrize("source", ["mask", "downsample"])
def test_conversion_models_see_only_the_source_signal(cls, source):
    torch.manual_seed(0)
    model = cls(**SMALL, source=source)
    x = torch.rand(3, 1, 16, 16)
    hidden = torch.zeros_like(x)
    if source == "mask":
        hidden[..., 4:12, 4:12] = torch.rand(3, 1, 8, 8)  # changes only the masked centre
    else:
        hidden[..., ::2, :] = 0.1  # changes every 4x4 block without changing its mean
        hidden[..., 1::2, :] = -0.1
    x2 = x + hidden
    torch.testing.assert_close(degrade(x, source), degrade(x2, source))
    torch.testing.assert_close(model.encode(x), model.encode(x2))
    assert not torch.allclose(model.encode(x), model.encode(torch.rand_like(x)))
    assert model.reconstruct(x).shape == x.shape


def test_conversion_rejects_an_unknown_source():
    with pytest.raises(ValueError, match="mask, downsample"):
        ConversionGON(**SMALL, source="blur")


def test_glo_through_gon_fit_gets_one_code_per_training_image(tmp_path, fashion_subset):
    from gon.cli import main
    from gon.models.loading import load

    run, config = tmp_path / "glo", tmp_path / "glo.yaml"
    config.write_text("model_options: {fit_steps: 2}\n")  # the final evaluation fits codes for 10,000 test images
    assert (
        main(
            [
                "fit",
                "--model",
                "glo",
                "--config",
                str(config),
                "--max-steps",
                "3",
                "--limit-train",
                "96",
                "--batch-size",
                "32",
                "--val-size",
                "16",
                "--image-size",
                "16",
                "--latent-dim",
                "8",
                "--width",
                "4",
                "--out",
                str(run),
                "--checkpoint-every",
                "100",
                "--picture-every",
                "100",
            ]
        )
        == 0
    )
    model = load(run)
    assert isinstance(model, GLO) and model.codes.shape == (96, 8)
