"""The Hugging Face Hub, offline: huggingface_hub's own cache layout filled with a saved model, then loaded by repo id
with HF_HUB_OFFLINE=1; the model card's content; a tampered or pickled repo refused like a local folder."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import huggingface_hub
import pytest
import torch
import yaml
from huggingface_hub import constants as hub_constants

import gon
from gon.core.errors import GonError
from gon.models import GON
from gon.models.pretrained import CONFIG, LATENTS, WEIGHTS
from gon.sampling import LatentGaussian
from gon.storage.hub import CARD, download, is_hub_source, model_card, parse, save_for_hub
from tests.helpers import GON as GON_COMMAND
from tests.helpers import tiny_model

REPO = "someone/tiny-gon"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fill_cache(cache, repo_id, folder, ref="main", commit=COMMIT):
    """Lay ``folder``'s files out as huggingface_hub's cache does after a download: content-addressed blobs,
    a snapshot of symlinks to them, and the ref naming the commit."""
    storage = cache / ("models--" + repo_id.replace("/", "--"))
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    (storage / "refs").mkdir(exist_ok=True)
    snapshot = storage / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in folder.iterdir():
        blob = storage / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copyfile(f, blob)
        (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))
    (storage / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty Hub cache with offline mode on, as HF_HUB_OFFLINE=1 HF_HUB_CACHE=... would set them at import."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def run(tmp_path):
    """A run directory's files as gon fit writes them (metrics, provenance, settings) and its model."""
    model = tiny_model("gon").eval()
    model.latent_gaussian = LatentGaussian.fit(torch.randn(64, model.latent_dim))
    run = tmp_path / "run"
    run.mkdir()
    metrics = {"test_mse": 0.0123, "test_psnr": 19.1, "steps": 3, "test_measured_on": "all 10,000 test images"}
    (run / "metrics.json").write_text(json.dumps(metrics))
    command = "gon fit --model gon --dataset fashion-mnist --max-steps 3 --limit-train 64"
    provenance = {"sessions": [{"command": command, "versions": {"gon": "0.1.0", "torch": "2.13.0"}}]}
    (run / "provenance.json").write_text(json.dumps(provenance))
    settings = {"dataset": "fashion-mnist", "limit_train": 64, "seed": 5, "split_seed": 0, "data_dir": None}
    (run / "config.yaml").write_text(yaml.safe_dump(settings))
    return model, run


def test_a_model_round_trips_through_the_offline_cache_by_repo_id(tmp_path, offline_cache, run):
    model, run_dir = run
    folder = save_for_hub(model, tmp_path / "upload", run_dir)
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG, WEIGHTS, LATENTS, CARD])
    fill_cache(offline_cache, REPO, folder)
    x = torch.rand(2, 1, 16, 16)

    for loaded in (gon.load(f"hf://{REPO}"), GON.from_pretrained(REPO), gon.load(f"hf://{REPO}@main")):
        assert isinstance(loaded, GON)
        torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)
        torch.testing.assert_close(loaded.latent_gaussian.mean, model.latent_gaussian.mean, rtol=0, atol=0)


def test_a_revision_picks_its_own_snapshot(tmp_path, offline_cache):
    old, new = tiny_model("gon", latent_dim=8), tiny_model("gon", latent_dim=6)
    fill_cache(offline_cache, REPO, save_for_hub(old, tmp_path / "old"), ref="v1", commit="1" * 40)
    fill_cache(offline_cache, REPO, save_for_hub(new, tmp_path / "new"), ref="main", commit="2" * 40)
    assert gon.load(f"hf://{REPO}@v1").latent_dim == 8
    assert gon.load(f"hf://{REPO}").latent_dim == 6
    assert gon.load(f"hf://{REPO}@{'1' * 40}").latent_dim == 8


def test_the_model_card_says_what_was_trained_on_what(run):
    model, run_dir = run
    card = model_card(model, run_dir, repo_id=REPO)
    meta = card.data.to_dict()
    assert meta["library_name"] == "gon"
    assert meta["license"] == "mit"
    assert {"gon", "gradient-origin-networks", "GON"} <= set(meta["tags"])
    assert meta["datasets"] == ["zalando-datasets/fashion_mnist"]
    assert meta["metrics"] == ["mse", "psnr"]
    text = card.text
    assert f'gon.load("hf://{REPO}")' in text
    assert "- dataset: `fashion-mnist`" in text
    assert "training split: 64 images (seeded random, stratified, seed 5)" in text
    assert "test figures measured on all 10,000 test images" in text
    assert "| test_mse | 0.0123 |" in text and "| test_psnr | 19.1 |" in text
    assert "gon fit --model gon --dataset fashion-mnist --max-steps 3 --limit-train 64" in text
    assert f"gon {gon.__version__} wrote this card; trained with gon 0.1.0." in text
    assert f"{sum(p.numel() for p in model.parameters()):,} parameters" in text
    # the card is valid Hub metadata: huggingface_hub reads it back from the file
    assert huggingface_hub.ModelCard(str(card)).data.library_name == "gon"


def test_a_card_without_a_run_still_names_the_data(tmp_path):
    model = tiny_model("gon")
    model.training_data = {"dataset": "folder:/data/cats", "limit_train": None, "split_seed": 3}
    text = model_card(model).text
    assert "- dataset: `folder:/data/cats`" in text and "the whole training split; held-out split seed 3" in text
    assert "datasets:" not in str(model_card(model)).split("---")[1]


def test_offline_without_the_files_is_one_line_naming_the_repo(offline_cache):
    with pytest.raises(GonError) as e:
        gon.load(f"hf://{REPO}@v2")
    message = str(e.value)
    assert "\n" not in message
    assert f"hf://{REPO}@v2 is not in the Hugging Face cache and HF_HUB_OFFLINE is set" in message
    assert f"hf download {REPO}" in message


def test_a_tampered_repo_is_refused_like_a_local_folder(tmp_path, offline_cache):
    folder = save_for_hub(tiny_model("gon"), tmp_path / "upload")
    weights = folder / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    fill_cache(offline_cache, REPO, folder)
    with pytest.raises(GonError, match="does not match its SHA-256"):
        gon.load(f"hf://{REPO}")


def test_only_gon_files_are_taken_from_a_repo(tmp_path, offline_cache):
    """A repo that also holds a pickle: the snapshot gon asks for lists only its four files, and a repo that has a
    pickle instead of config.json is not a gon model."""
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(b"not for us")
    fill_cache(offline_cache, REPO, folder)
    with pytest.raises(GonError, match=f"hf://{REPO} is not a gon model: its repository has no config.json"):
        download(f"hf://{REPO}")


@pytest.mark.parametrize("bad", ["hf://noslash", "hf://a/b/c", "hf://a/b@", "hf://../x"])
def test_a_bad_repo_id_is_named(bad):
    with pytest.raises(GonError, match="is not a Hub model"):
        parse(bad)


def test_a_local_path_wins_over_a_repo_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "name").mkdir(parents=True)
    assert not is_hub_source("owner/name")
    assert is_hub_source("owner/other") and is_hub_source("hf://owner/name")


def test_the_cli_loads_by_repo_id_with_the_environment_variable(tmp_path):
    """The real switch: HF_HUB_OFFLINE=1 and HF_HUB_CACHE in the environment of a `gon sample` process."""
    cache = tmp_path / "cache"
    model = tiny_model("gon")
    model.latent_gaussian = LatentGaussian.fit(torch.randn(64, model.latent_dim))
    fill_cache(cache, REPO, save_for_hub(model, tmp_path / "upload"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    done = subprocess.run(
        [str(GON_COMMAND), "sample", f"hf://{REPO}", "-n", "4", "--out", str(tmp_path / "s.png")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s.png").is_file()
    done = subprocess.run(
        [str(GON_COMMAND), "evaluate", f"hf://{REPO}@main", "--dataset", "fashion-mnist", "--limit", "8"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "someone--tiny-gon@main-evaluation-fashion-mnist-test.json").read_text())
    assert written["class"] == "GON" and written["model"] == f"hf://{REPO}@main"


def test_without_the_hub_extra_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # what `import huggingface_hub` meets when missing
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GonError, match=r"^runs/typo is not a local folder; as a Hub model it needs the hub extra"):
        GON.from_pretrained("runs/typo")
    with pytest.raises(GonError, match=r"^the Hugging Face Hub needs the hub extra: pip install 'gon\[hub\]'$"):
        gon.load(f"hf://{REPO}")
