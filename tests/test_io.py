"""Saved models: every registered class round-trips exactly; runs and checkpoints load; bad files are refused."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

import gon
from gon.core.errors import GonError
from gon.models.loading import load
from gon.models.pretrained import CONFIG, LATENTS, WEIGHTS, construct, save_pretrained, sha256
from gon.models.registry import MODELS, TASK_MODELS
from gon.sampling import LatentGaussian
from tests.helpers import image_size_of, tiny_model

ALL = sorted(MODELS)


def trained_a_little(name):
    """A tiny model whose weights moved off their initialisation (and BatchNorm-like buffers, if any, too)."""
    model = tiny_model(name)
    s = image_size_of(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        model.loss(torch.rand(4, 1, s, s)).backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("name", ALL)
def test_every_tensor_and_output_identical_after_save_and_load(tmp_path, name):
    model = trained_a_little(name)
    gaussian = LatentGaussian.fit(torch.randn(64, model.latent_dim) * 3 + 1)
    model.save_pretrained(tmp_path / "m", latent_gaussian=gaussian, training_data={"dataset": "mnist"})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted([CONFIG, WEIGHTS, LATENTS])

    loaded = gon.load(tmp_path / "m")
    assert type(loaded) is type(model) and not loaded.training
    before, after = model.state_dict(), loaded.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert torch.equal(loaded.latent_gaussian.mean, gaussian.mean)
    assert torch.equal(loaded.latent_gaussian.scale_tril, gaussian.scale_tril)
    assert loaded.training_data == {"dataset": "mnist"}

    s = image_size_of(name)
    x, z = torch.rand(5, 1, s, s), torch.randn(5, model.latent_dim)
    with torch.no_grad():
        assert torch.equal(model.encode(x), loaded.encode(x))
        assert torch.equal(model.decode(z), loaded.decode(z))
        assert torch.equal(model.reconstruct(x), loaded.reconstruct(x))
        torch.manual_seed(1)
        a = model.loss_terms(x)
        torch.manual_seed(1)
        b = loaded.loss_terms(x)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert type(loaded).from_pretrained(tmp_path / "m").config == json.loads(json.dumps(model.config))


@pytest.mark.parametrize("name", sorted(TASK_MODELS))
def test_task_models_round_trip(tmp_path, name):
    """Models trained by `gon reproduce` (their loss needs labels) are saved and rebuilt by name too."""
    model = TASK_MODELS[name](latent_dim=8, width=4, image_size=16).eval()
    loaded = gon.load(model.save_pretrained(tmp_path))
    assert type(loaded) is type(model)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(model.reconstruct(x), loaded.reconstruct(x))


def test_weights_file_is_plain_safetensors_and_config_is_json(tmp_path):
    model = tiny_model("gon")
    model.save_pretrained(tmp_path)
    record = json.loads((tmp_path / CONFIG).read_text())
    assert record["class"] == "GON" and record["config"]["width"] == 4
    assert record["latents_sha256"] is None and not (tmp_path / LATENTS).exists()
    tensors = load_file(tmp_path / WEIGHTS)
    assert set(tensors) == set(model.state_dict())


def test_from_pretrained_checks_the_class(tmp_path):
    tiny_model("gon").save_pretrained(tmp_path)
    with pytest.raises(GonError, match="holds a GON, not a ImplicitGON"):
        gon.ImplicitGON.from_pretrained(tmp_path)


def test_resaving_without_statistics_removes_stale_ones(tmp_path):
    model = tiny_model("implicit")
    model.save_pretrained(tmp_path, latent_gaussian=LatentGaussian.fit(torch.randn(20, 8)))
    fresh = tiny_model("implicit")
    fresh.save_pretrained(tmp_path)
    assert not (tmp_path / LATENTS).exists() and load(tmp_path).latent_gaussian is None


def test_resaving_a_model_keeps_the_other_files_in_its_folder(tmp_path):
    """A finishing gon fit or gon export --overwrite replaces the model, not the user's files beside it."""
    tiny_model("gon").save_pretrained(tmp_path)
    (tmp_path / "my-notes.txt").write_text("keep me")
    (tmp_path / "evaluations").mkdir()
    (tmp_path / "evaluations" / "old.json").write_text("{}")
    (tmp_path / "link").symlink_to("my-notes.txt")
    fresh = trained_a_little("gon")
    fresh.save_pretrained(tmp_path)
    assert (tmp_path / "my-notes.txt").read_text() == "keep me"
    assert (tmp_path / "evaluations" / "old.json").read_text() == "{}"
    assert (tmp_path / "link").is_symlink() and (tmp_path / "link").read_text() == "keep me"
    assert torch.equal(
        load(tmp_path).state_dict()["decoder.main.0.weight"], fresh.state_dict()["decoder.main.0.weight"]
    )


def _checkpoint(tmp_path, name="implicit"):
    """A checkpoint shaped as GonModule writes it: hyperparameters and a ``model.`` state dict."""
    model = trained_a_little(name)
    options = {k: v for k, v in model.config.items()}
    path = tmp_path / "last.ckpt"
    torch.save(
        {
            "hyper_parameters": {"model": name, "model_options": options, "lr": 1e-4},
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "global_step": 3,
        },
        path,
    )
    return model, path


def test_load_a_checkpoint_and_a_run_directory(tmp_path):
    model, ckpt = _checkpoint(tmp_path)
    x = torch.rand(3, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(load(ckpt).reconstruct(x), model.reconstruct(x))

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt.rename(run / "checkpoints" / "last.ckpt")
    (run / "config.yaml").write_text("model: implicit\ndataset: mnist\ndata_dir: /data\nresize: pad\nlimit_train: 64\n")
    from_run = load(run)  # no model/ export: the last checkpoint, with the run's training data
    assert from_run.training_data["dataset"] == "mnist" and from_run.training_data["resize"] == "pad"
    with torch.no_grad():
        assert torch.equal(from_run.reconstruct(x), model.reconstruct(x))

    model.save_pretrained(run / "model", latent_gaussian=LatentGaussian.fit(torch.randn(30, 8)))
    assert load(run).latent_gaussian is not None  # model/ wins over the checkpoint


def _message(fn) -> str:
    with pytest.raises(GonError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_or_tampered_weights_are_named(tmp_path):
    tiny_model("gon").save_pretrained(tmp_path / "m", latent_gaussian=LatentGaussian.fit(torch.randn(20, 8)))
    weights = tmp_path / "m" / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert "model.safetensors does not match its SHA-256" in _message(lambda: load(tmp_path / "m"))
    weights.unlink()
    assert "model.safetensors is missing" in _message(lambda: load(tmp_path / "m"))

    tiny_model("gon").save_pretrained(tmp_path / "n", latent_gaussian=LatentGaussian.fit(torch.randn(20, 8)))
    (tmp_path / "n" / LATENTS).write_bytes(b"junk")
    assert "latents.safetensors does not match" in _message(lambda: load(tmp_path / "n"))


def test_weights_that_do_not_fit_the_config_are_named(tmp_path):
    tiny_model("gon").save_pretrained(tmp_path)
    record = json.loads((tmp_path / CONFIG).read_text())
    record["config"]["width"] = 8
    (tmp_path / CONFIG).write_text(json.dumps(record))
    assert "model.safetensors does not fit the GON" in _message(lambda: load(tmp_path))


@pytest.mark.parametrize(
    "edit,culprit",
    [
        (lambda s: s.pop("model.decoder.main.0.weight"), "missing decoder.main.0.weight"),
        (lambda s: s.update({"model.extra": torch.zeros(1)}), "unexpected extra"),
        (
            lambda s: s.update({"model.decoder.main.0.weight": torch.zeros(3, 3)}),
            "decoder.main.0.weight is [3, 3], the",
        ),
        (lambda s: [s.pop(k) for k in list(s)[:3]], "missing decoder.main.0.weight (+2 more)"),
    ],
)
def test_checkpoint_weights_that_do_not_fit_name_the_first_culprit(tmp_path, edit, culprit):
    """torch's message starts with a header line ('Error(s) in loading state_dict for GON:') that said nothing."""
    model = tiny_model("gon")
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    edit(state)
    hparams = {"model": "gon", "model_options": model.config}
    torch.save({"hyper_parameters": hparams, "state_dict": state}, tmp_path / "h.ckpt")
    message = _message(lambda: load(tmp_path / "h.ckpt"))
    assert message.startswith(f"{tmp_path / 'h.ckpt'}: weights do not fit GON: {culprit}"), message


def test_saved_weights_that_do_not_fit_name_the_first_culprit(tmp_path):
    model = tiny_model("gon")
    model.save_pretrained(tmp_path)
    weights = dict(model.state_dict())
    weights["renamed"] = weights.pop("decoder.main.0.weight")
    save_file(weights, tmp_path / WEIGHTS)
    record = json.loads((tmp_path / CONFIG).read_text())
    record["weights_sha256"] = sha256(tmp_path / WEIGHTS)
    (tmp_path / CONFIG).write_text(json.dumps(record))
    assert _message(lambda: load(tmp_path)).endswith("missing decoder.main.0.weight (+1 more)")


def test_a_model_too_big_to_build_is_named_once(tmp_path):
    """check_model_fits' message already names the file: construct does not prefix it a second time."""
    with pytest.raises(GonError) as e:
        construct(gon.GON, {"image_size": 12}, tmp_path / "h5.ckpt")
    assert str(e.value).count("h5.ckpt") == 1 and str(e.value).count("cannot build") == 1


@pytest.mark.parametrize(
    "edit,culprit",
    [
        (lambda r: r.update({"class": "Transformer"}), "unknown model class 'Transformer'"),
        (lambda r: r["config"].update({"heads": 3}), "cannot build GON"),
        (lambda r: r.update({"format": "other"}), "not a gon saved-model config"),
        (lambda r: r.update({"format_version": 99}), "format version 99"),
    ],
)
def test_a_bad_config_is_named(tmp_path, edit, culprit):
    tiny_model("gon").save_pretrained(tmp_path)
    record = json.loads((tmp_path / CONFIG).read_text())
    edit(record)
    (tmp_path / CONFIG).write_text(json.dumps(record))
    message = _message(lambda: load(tmp_path))
    assert culprit in message and "config.json" in message


def test_not_a_model_is_refused(tmp_path):
    assert "does not exist" in _message(lambda: load(tmp_path / "nothing"))
    assert "not a saved model" in _message(lambda: load(tmp_path))  # an empty folder
    (tmp_path / "model.pt").write_bytes(b"x")
    assert "not a saved model" in _message(lambda: load(tmp_path / "model.pt"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / CONFIG).write_text("{not json")
    assert "not readable JSON" in _message(lambda: load(tmp_path / "c"))
    (tmp_path / "junk.ckpt").write_bytes(b"\x00" * 64)
    assert "junk.ckpt is not readable" in _message(lambda: load(tmp_path / "junk.ckpt"))
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    assert "other.ckpt is not a gon checkpoint" in _message(lambda: load(tmp_path / "other.ckpt"))


class _Payload:
    """Unpickling this would create a file: proof that the loader ran pickled code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickled_payload_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(
        pickle.dumps({"hyper_parameters": {"model": "gon"}, "state_dict": _Payload(str(marker))}, protocol=2)
    )
    assert "refusing to load checkpoint" in _message(lambda: load(evil))
    assert not marker.exists()


def test_an_unregistered_class_round_trips_through_its_own_class(tmp_path):
    """The format needs no registry (``cls(**config)``); only the auto-loader ``gon.load`` needs a name."""

    class Unregistered(gon.GON):
        pass

    model = Unregistered(latent_dim=4, width=2, image_size=8).eval()
    save_pretrained(model, tmp_path)
    loaded = Unregistered.from_pretrained(tmp_path)
    assert type(loaded) is Unregistered and torch.equal(loaded.decode(torch.ones(1, 4)), model.decode(torch.ones(1, 4)))
    assert "names unknown model class 'Unregistered'" in _message(lambda: load(tmp_path))
