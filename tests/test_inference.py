"""Using a trained model: latent Gaussian, slerp, rendering, grids, and every inference command end to end."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import gon
from gon.cli import main
from gon.core.errors import GonError
from gon.report.images import MAX_SIDE, upscale
from gon.report.pictures import interpolation_grid, reconstruction_grid, render_grid, sample_grid
from gon.sampling import LatentGaussian, decode, encode_images, render, sample, slerp
from tests.helpers import FASHION_MNIST, tiny_model

needs_data = pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")


# -- Python API ---------------------------------------------------------------------------------
def test_slerp_by_hand():
    a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    path = slerp(a, b, 3)  # t = 0, 0.5, 1
    assert path.shape == (1, 3, 2)
    torch.testing.assert_close(path[0], torch.tensor([[2.0, 0.0], [math.sqrt(2), math.sqrt(2)], [0.0, 2.0]]))
    # equal angles between steps, on the circle of radius 2
    quarter = slerp(a, b, torch.tensor([0.25]))[0, 0]
    torch.testing.assert_close(quarter, 2 * torch.tensor([math.cos(math.pi / 8), math.sin(math.pi / 8)]))


def test_slerp_interpolates_the_norm_linearly_even_for_nearly_opposite_latents():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 2.0], [-3.0, 0.5]])  # a right angle; 170.5 degrees apart, norms 1 and 3.04
    path = slerp(a, b, 5)
    t = torch.linspace(0, 1, 5)
    torch.testing.assert_close(path.norm(dim=-1), (1 - t) * a.norm(dim=-1)[:, None] + t * b.norm(dim=-1)[:, None])
    torch.testing.assert_close(path[:, [0, -1]], torch.stack([a, b], dim=1))
    cos = torch.nn.functional.cosine_similarity(path[:, :-1], path[:, 1:], dim=-1)
    torch.testing.assert_close(cos, cos[:, :1].expand_as(cos))  # equal angles between steps


def test_slerp_parallel_latents_fall_back_to_a_straight_line():
    a = torch.tensor([[1.0, 1.0, 0.0]])
    path = slerp(a, 3 * a, torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(path[0], torch.stack([a[0], 2 * a[0], 3 * a[0]]))
    assert torch.isfinite(slerp(torch.zeros(1, 3), a, 4)).all()


def test_latent_gaussian_fits_samples_and_saves(tmp_path):
    g = torch.Generator().manual_seed(0)
    mix = torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [-1.0, 0.3, 0.2]])
    z = torch.randn(20000, 3, generator=g) @ mix.T + torch.tensor([1.0, -2.0, 0.5])
    fitted = LatentGaussian.fit(z)
    torch.testing.assert_close(fitted.mean, torch.tensor([1.0, -2.0, 0.5]), atol=0.05, rtol=0)
    torch.testing.assert_close(fitted.covariance, mix @ mix.T, atol=0.1, rtol=0.05)
    draws = fitted.sample(20000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(torch.cov(draws.T), mix @ mix.T, atol=0.15, rtol=0.05)
    assert torch.equal(fitted.sample(4, temperature=0.0), fitted.mean.expand(4, 3))
    assert torch.equal(
        fitted.sample(5, generator=torch.Generator().manual_seed(3)),
        fitted.sample(5, generator=torch.Generator().manual_seed(3)),
    )
    loaded = LatentGaussian.load(fitted.save(tmp_path / "g.safetensors"))
    assert torch.equal(loaded.mean, fitted.mean) and torch.equal(loaded.scale_tril, fitted.scale_tril)


def test_latent_gaussian_of_fewer_latents_than_dimensions_still_samples():
    fitted = LatentGaussian.fit(torch.randn(3, 10))
    assert torch.isfinite(fitted.sample(7)).all()


def test_chunked_rendering_equals_one_pass():
    model = tiny_model("implicit").eval()
    z = torch.randn(5, 8)
    with torch.no_grad():
        whole = model.decode(z, size=(40, 30))
    torch.testing.assert_close(decode(model, z, (40, 30), chunk_pixels=1300), whole)  # one image a chunk
    torch.testing.assert_close(decode(model, z, (40, 30), chunk_pixels=2500), whole)  # two images a chunk


def test_render_at_the_training_size_is_the_reconstruction_and_any_size_works():
    model = tiny_model("implicit").eval()
    x = torch.rand(3, 1, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(render(model, x, 12), model.reconstruct(x).clamp(0, 1))
    big = render(model, x, (48, 40))
    assert big.shape == (3, 1, 48, 40) and big.min() >= 0 and big.max() <= 1


@pytest.mark.parametrize("name", ["gon", "vgon"])
def test_only_an_implicit_model_renders_at_another_size(name):
    with pytest.raises(GonError, match="implicit GON"):
        render(tiny_model(name), torch.rand(2, 1, 16, 16), 64)


def test_sampling_needs_statistics_except_for_the_variational_gon():
    with pytest.raises(GonError, match="no latent statistics"):
        sample(tiny_model("gon"), 4)
    vgon = tiny_model("vgon")
    assert sample(vgon, 4, seed=1).shape == (4, 1, 16, 16)
    assert torch.equal(sample(vgon, 4, seed=1), sample(vgon, 4, seed=1))
    implicit = tiny_model("implicit")
    implicit.latent_gaussian = LatentGaussian.fit(encode_images(implicit, torch.rand(32, 1, 12, 12)))
    assert torch.equal(sample(implicit, 6, seed=2), sample(implicit, 6, seed=2))
    assert not torch.equal(sample(implicit, 6, seed=2), sample(implicit, 6, seed=3))
    with pytest.raises(GonError, match="samples must be >= 1"):
        sample(vgon, 0)


def test_grids_are_pil_images_of_the_right_layout():
    model = tiny_model("implicit")
    model.latent_gaussian = LatentGaussian.fit(torch.randn(16, 8))
    x = torch.rand(6, 1, 12, 12)
    cell = 12 + 2
    assert holds_grid(reconstruction_grid(model, x, nrow=3), 3 * cell + 2, 4 * cell + 2)
    assert holds_grid(sample_grid(model, 9), 3 * cell + 2, 3 * cell + 2)
    grid = interpolation_grid(model, x[:3], x[3:], steps=5)  # 3 rows: image, 5 steps, image
    assert isinstance(grid, Image.Image) and holds_grid(grid, 7 * cell + 2, 3 * cell + 2)
    assert holds_grid(render_grid(model, x[:4], 30, pairs_per_row=2), 4 * 32 + 2, 2 * 32 + 2)


def holds_grid(picture: Image.Image, width: int, height: int) -> bool:
    """Whether a labelled picture holds a grid of width x height pixels (enlarged as gon.report.images.labelled does)
    under a header strip (the picture may be wider: row labels, a long title)."""
    scale = max(1, min(4, MAX_SIDE // max(width, height)))
    return 20 <= picture.height - scale * height <= 60 and picture.width >= scale * width


def test_bicubic_upscale_keeps_a_flat_image_flat():
    x = torch.full((2, 3, 5, 5), 0.25)
    up = upscale(x, (20, 15))
    assert up.shape == (2, 3, 20, 15)
    torch.testing.assert_close(up, torch.full_like(up, 0.25))


# -- the commands -------------------------------------------------------------------------------
def gon_cli(*args):
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny implicit GON trained for 4 steps on 64 Fashion-MNIST images (drawn with seed 3) by `gon fit`."""
    if not FASHION_MNIST.is_dir():
        pytest.skip("needs apt-get install dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("infer") / "run"
    assert (
        gon_cli(
            "fit",
            "--model",
            "implicit",
            "--max-steps",
            4,
            "--out",
            out,
            "--limit-train",
            64,
            "--batch-size",
            16,
            "--val-size",
            32,
            "--hidden",
            16,
            "--depth",
            2,
            "--latent-dim",
            8,
            "--picture-every",
            1000,
            "--seed",  # not 0: a latent Gaussian refit from the checkpoint must draw the seed's training images
            3,
        )
        == 0
    )
    return out


@needs_data
def test_every_command_accepts_a_run_a_saved_model_and_a_checkpoint(run, tmp_path):
    sources = [run, run / "model", run / "checkpoints" / "last.ckpt"]
    pictures = []
    for i, src in enumerate(sources):
        for cmd, extra in [
            ("reconstruct", ["-n", 8]),
            ("sample", ["-n", 9]),
            ("interpolate", ["--pairs", 2, "--steps", 3]),
            ("render", ["--resolution", 40, "-n", 2]),
        ]:
            out = tmp_path / f"{cmd}{i}.png"
            assert gon_cli(cmd, src, *extra, "--out", out) == 0, (cmd, src)
            pictures.append(out.read_bytes())
        assert gon_cli("encode", src, "--limit", 20, "--out", tmp_path / f"z{i}.npz") == 0
    assert pictures[:4] == pictures[4:8]  # the run directory is its saved model
    # a checkpoint has no latent statistics: sampling refits them on the 64 training images (same result)
    assert pictures[9] == pictures[1]
    assert holds_grid(Image.open(tmp_path / "render0.png"), 4 * 42 + 2, 42 + 2)

    with np.load(tmp_path / "z0.npz") as f:
        latents, labels = f["latents"], f["labels"]
    assert latents.shape == (20, 8) and latents.dtype == np.float32 and labels.shape == (20,)
    from gon.data import load_dataset

    x = load_dataset("fashion-mnist", "test", image_size=28, limit=20)
    model = gon.load(run)
    np.testing.assert_array_equal(latents, encode_images(model, x.images).numpy())
    np.testing.assert_array_equal(labels, x.labels.numpy())


def test_sample_seed_and_temperature(tmp_path):
    model = tiny_model("implicit")
    with torch.no_grad():
        [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1].bias.fill_(
            0.5
        )  # mid-grey outputs, so that different draws show as different pixels
    model.save_pretrained(tmp_path / "m", latent_gaussian=LatentGaussian.fit(5 * torch.randn(50, 8)))
    outs = [tmp_path / f"{k}.png" for k in "abcd"]
    for out, extra in zip(outs, [["--seed", 1], ["--seed", 1], ["--seed", 2], ["--seed", 1, "--temperature", 0]]):
        assert gon_cli("sample", tmp_path / "m", "-n", 4, "--out", out, *extra) == 0
    a, b, c, d = (np.asarray(Image.open(o)) for o in outs)
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, d)
    loaded = gon.load(tmp_path / "m")
    expected = sample_grid(loaded, 4, seed=1)
    assert np.array_equal(a, np.asarray(expected.resize(Image.open(outs[0]).size, Image.NEAREST)))


@needs_data
def test_export_from_a_checkpoint_fits_statistics_and_loads_identically(run, tmp_path):
    assert gon_cli("export", run / "checkpoints" / "last.ckpt", tmp_path / "exp") == 0
    exported, saved = gon.load(tmp_path / "exp"), gon.load(run / "model")
    for key, value in saved.state_dict().items():
        assert torch.equal(value, exported.state_dict()[key])
    assert torch.equal(exported.latent_gaussian.mean, saved.latent_gaussian.mean)  # the same 64 training latents
    assert exported.training_data["dataset"] == "fashion-mnist"
    assert gon_cli("export", run, tmp_path / "exp") == 2  # not over an existing one by accident
    assert gon_cli("export", run, tmp_path / "exp", "--overwrite") == 0


@needs_data
def test_a_run_whose_checkpoint_is_newer_than_its_saved_model_loads_the_checkpoint(run, tmp_path, capsys):
    """A --resume stopped before it finished leaves RUN/model at the older step: RUN loads last.ckpt and says so."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert json.loads((copy / "model" / "config.json").read_text())["steps"] == 4
    ckpt = torch.load(copy / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt["global_step"] += 2  # what a resumed session stopped at step 6 leaves
    key = next(k for k in ckpt["state_dict"] if k.startswith("model."))
    ckpt["state_dict"][key] += 1
    torch.save(ckpt, copy / "checkpoints" / "last.ckpt")

    def loaded_weight():
        return gon.load(copy).state_dict()[key.removeprefix("model.")]

    assert torch.equal(loaded_weight(), ckpt["state_dict"][key])
    assert "(step 6) is newer than" in capsys.readouterr().err
    config = json.loads((copy / "model" / "config.json").read_text())
    del config["steps"]  # a saved model of an older gon: metrics.json, written with it, has its step
    (copy / "model" / "config.json").write_text(json.dumps(config))
    assert torch.equal(loaded_weight(), ckpt["state_dict"][key])
    assert "(step 6) is newer than" in capsys.readouterr().err
    ckpt["global_step"] -= 2  # the saved model is as new as the checkpoint: it is used (with its latent Gaussian)
    torch.save(ckpt, copy / "checkpoints" / "last.ckpt")
    assert not torch.equal(loaded_weight(), ckpt["state_dict"][key]) and gon.load(copy).latent_gaussian is not None
    assert "newer" not in capsys.readouterr().err


@pytest.fixture
def saved_gon(tmp_path):
    model = tiny_model("gon", image_size=32)
    return model.save_pretrained(tmp_path / "gon", training_data={"dataset": "fashion-mnist"})


@needs_data
@pytest.mark.parametrize(
    "case,culprit",
    [
        ("render_gon", "super-resolution needs an implicit GON"),
        ("tampered", "model.safetensors does not match"),
        ("missing_weights", "model.safetensors is missing"),
        ("unknown_class", "unknown model class 'Mystery'"),
        ("n_zero", "(-n) must be >= 1"),
        ("missing_folder", "folder"),
        ("not_a_model", "is not a saved model"),
        ("pickle_ckpt", "x.ckpt is not readable"),
        ("bad_dataset", "unknown dataset 'imagenet'"),
        ("steps_one", "(--steps) must be >= 2"),
    ],
)
def test_bad_input_is_one_line_naming_the_culprit(saved_gon, tmp_path, capsys, case, culprit):
    out = tmp_path / "o.png"
    args = {
        "render_gon": ["render", saved_gon, "--out", out],
        "n_zero": ["sample", saved_gon, "-n", 0, "--out", out],
        "missing_folder": ["reconstruct", saved_gon, "--out", tmp_path / "nowhere" / "r.png"],
        "not_a_model": ["sample", saved_gon / "config.json", "--out", out],
        "bad_dataset": ["reconstruct", saved_gon, "--dataset", "imagenet", "--out", out],
        "steps_one": ["interpolate", saved_gon, "--steps", 1, "--out", out],
    }.get(case)
    if case == "tampered":
        (saved_gon / "model.safetensors").write_bytes((saved_gon / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    elif case == "missing_weights":
        (saved_gon / "model.safetensors").unlink()
    elif case == "unknown_class":
        record = json.loads((saved_gon / "config.json").read_text())
        (saved_gon / "config.json").write_text(json.dumps({**record, "class": "Mystery"}))
    elif case == "pickle_ckpt":
        (tmp_path / "x.ckpt").write_bytes(b"\x80\x02junk")
        args = ["encode", tmp_path / "x.ckpt", "--out", tmp_path / "z.npz"]
    code = gon_cli(*(args or ["reconstruct", saved_gon, "--out", out]))
    err = capsys.readouterr().err.strip()
    assert code == 2 and culprit in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists()
