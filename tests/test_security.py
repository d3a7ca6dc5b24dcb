"""Hostile files: a pickle whose ``__reduce__`` creates a file is refused everywhere gon reads one.

Each test first shows the payload is live (plain ``pickle`` / ``torch.load(weights_only=False)``
does create the file), then that gon refuses it with a GonError and the file never appears.
"""

import hashlib
import io
import json
import pickle

import pytest
import torch
import yaml

from gon.cli import main
from gon.core.errors import GonError
from gon.storage.checkpoints import read_checkpoint
from gon.training.checkpoint_io import AtomicCheckpointIO
from tests.helpers import FASHION_MNIST


class CreatesFile:
    """Unpickling this calls open(path, "w"): arbitrary code, harmless here."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "pwned"


def evil_checkpoint(path, marker, *, zip_format=True):
    """A file that looks like a gon checkpoint and runs code when fully unpickled."""
    payload = {
        "hyper_parameters": {"model": "gon", "model_options": {}},
        "state_dict": {},
        "global_step": 3,
        "callbacks": CreatesFile(marker),
    }
    if zip_format:
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))  # the legacy, non-zip format
    return path


@pytest.mark.parametrize("zip_format", [True, False], ids=["torch-zip", "legacy-pickle"])
def test_the_payload_is_live_but_read_checkpoint_refuses_it(tmp_path, marker, zip_format):
    path = evil_checkpoint(tmp_path / "evil.ckpt", marker, zip_format=zip_format)
    with open(path, "rb") as f:
        torch.load(f, weights_only=False) if zip_format else pickle.load(f)
    assert marker.exists()  # the exploit works when loaded unsafely
    marker.unlink()

    with pytest.raises(GonError, match="refusing to load checkpoint"):
        read_checkpoint(path)
    with pytest.raises(GonError, match="refusing"):  # Lightning's hook refuses even when asked for a full unpickle
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)
    assert not marker.exists()


def test_gon_load_refuses_a_hostile_checkpoint(tmp_path, marker):
    import gon.models.loading
    import gon.models.pretrained

    path = evil_checkpoint(tmp_path / "evil.ckpt", marker)
    with pytest.raises(GonError):
        gon.models.loading.load(path)
    assert not marker.exists()


def test_saved_model_weights_that_are_a_pickle_are_refused(tmp_path, marker):
    import gon.models.loading
    import gon.models.pretrained
    from tests.helpers import tiny_model

    saved = tiny_model("gon").save_pretrained(tmp_path / "model")
    weights = saved / gon.models.pretrained.WEIGHTS
    weights.write_bytes(pickle.dumps(CreatesFile(marker)))
    record = json.loads((saved / gon.models.pretrained.CONFIG).read_text())
    record["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()  # even with a matching hash
    (saved / gon.models.pretrained.CONFIG).write_text(json.dumps(record))
    with pytest.raises(GonError):
        gon.models.loading.load(saved)
    assert not marker.exists()


def test_cifar_batches_are_unpickled_with_an_allow_list(tmp_path, marker):
    from gon.data import load_dataset

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": CreatesFile(marker), b"labels": [0]}, protocol=2))
    with pytest.raises(GonError, match="refusing to load"):
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False)
    assert not marker.exists()


def test_yaml_configs_cannot_construct_python_objects(tmp_path, marker, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"lr: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    yaml.unsafe_load(config.read_text())
    assert marker.exists()  # live under an unsafe loader
    marker.unlink()

    assert main(["fit", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "not readable YAML" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
@pytest.mark.parametrize("zip_format", [True, False], ids=["torch-zip", "legacy-pickle"])
def test_fit_resume_refuses_a_hostile_checkpoint(tmp_path, marker, capsys, zip_format):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    evil_checkpoint(run / "checkpoints" / "last.ckpt", marker, zip_format=zip_format)
    code = main(
        [
            "fit",
            "--resume",
            "--out",
            str(run),
            "--limit-train",
            "16",
            "--val-size",
            "8",
            "--image-size",
            "16",
            "--batch-size",
            "8",
            "--max-steps",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "refusing to load checkpoint" in err and len(err.splitlines()) == 1
    assert not marker.exists()


def test_a_truncated_or_random_checkpoint_is_a_clear_error(tmp_path):
    good = io.BytesIO()
    torch.save({"global_step": 1, "state_dict": {"w": torch.ones(100)}}, good)
    whole = good.getvalue()
    for name, data, why in [
        ("half.ckpt", whole[: len(whole) // 2], "truncated"),
        ("nearly.ckpt", whole[:-1], "truncated"),  # torch alone says "[Errno 22] Invalid argument" here
        ("random.ckpt", bytes(range(256)) * 4, "not a torch.save file"),  # nor a zip: the unpickler saw it
        ("empty.ckpt", b"", "the file is empty"),
    ]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(GonError, match=f"{name} is not readable: {why}") as caught:
            read_checkpoint(tmp_path / name)
        assert len(str(caught.value).splitlines()) == 1
