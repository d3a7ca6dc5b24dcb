"""A user's own data: folders with classes (like torchvision's ImageFolder), seeded and stratified subsets,
`gon encode` that traces each latent to its image, `gon evaluate` on a folder-trained model."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gon.cli import main
from gon.data import load_dataset
from gon.data.subsets import choose
from tests.helpers import tiny_model

CLASSES = {"cat": 12, "dog": 20, "owl": 4}  # unequal classes, sorted names


@pytest.fixture
def class_folder(tmp_path) -> Path:
    """One subfolder per class; each class has its own grey level, so an image's class can be read off it."""
    root = tmp_path / "pets"
    for c, (name, count) in enumerate(CLASSES.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("L", (16, 16), 40 + 80 * c).save(root / name / f"{name}{i:02d}.png")
    return root


def test_choose_is_seeded_stratified_and_takes_turns():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 5 + [3] * 1)
    picked = choose(len(labels), 12, seed=0, labels=labels)
    assert len(set(picked.tolist())) == 12
    assert labels[picked].bincount().tolist() == [6, 4, 1, 1]  # one each, the rest in proportion
    assert labels[picked][:4].tolist() == [0, 1, 2, 3]  # classes take turns: a grid row shows them all
    assert torch.equal(picked, choose(len(labels), 12, seed=0, labels=labels))
    assert not torch.equal(picked, choose(len(labels), 12, seed=1, labels=labels))
    assert choose(5, None).tolist() == choose(5, 9).tolist() == [0, 1, 2, 3, 4]  # all, in order
    flat = choose(100, 10, seed=3)
    assert len(set(flat.tolist())) == 10 and flat.tolist() != list(range(10))  # not the first ten


def test_folder_classes_labels_paths_and_a_stratified_split(class_folder):
    spec = f"folder:{class_folder}"
    train, test = load_dataset(spec, image_size=8), load_dataset(spec, "test", image_size=8)
    assert train.classes == test.classes == ["cat", "dog", "owl"]
    assert len(train) + len(test) == sum(CLASSES.values())
    assert test.labels.bincount(minlength=3).tolist() == [1, 2, 1]  # 10% of each class, at least one
    for data in (train, test):
        grey = (data.images.mean((1, 2, 3)) * 255).round()
        assert torch.equal(grey, 40 + 80 * data.labels.float())  # each label is its image's subfolder
        assert all(p.split("/")[0] == data.classes[y] for p, y in zip(data.paths, data.labels.tolist()))
    assert not set(train.paths) & set(test.paths)


def test_folder_limit_draws_every_class_and_flat_folders_have_no_labels(class_folder, tmp_path):
    spec = f"folder:{class_folder}"
    few = load_dataset(spec, limit=6, image_size=8)
    assert sorted(few.labels.tolist()) == [0, 0, 1, 1, 1, 2] and few.labels[:3].tolist() == [0, 1, 2]
    assert few.paths != load_dataset(spec, limit=6, image_size=8, limit_seed=5).paths  # --seed picks others
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(5):
        Image.new("RGB", (8, 8), (50 * i, 0, 0)).save(flat / f"{i}.png")
    data = load_dataset(f"folder:{flat}")
    assert data.labels is None and data.classes is None and len(data.paths) == 4


def saved_folder_model(tmp_path: Path, folder: Path) -> Path:
    model = tiny_model("gon", image_size=16)
    return model.save_pretrained(tmp_path / "model", training_data={"dataset": f"folder:{folder}", "seed": 0})


def test_encode_writes_labels_class_names_paths_and_positions(class_folder, tmp_path, capsys):
    model = saved_folder_model(tmp_path, class_folder)
    out = tmp_path / "z.npz"
    assert main(["encode", str(model), "--split", "train", "--limit", "9", "--seed", "2", "--out", str(out)]) == 0
    assert "\r" not in capsys.readouterr().err  # not a terminal: no progress bar redrawn into a log file
    saved = np.load(out)  # no pickle: plain numbers and text
    assert saved["latents"].shape == (9, 8) and saved["labels"].shape == saved["index"].shape == (9,)
    assert saved["classes"].tolist() == ["cat", "dog", "owl"]
    train = load_dataset(f"folder:{class_folder}", image_size=16)
    assert [train.paths[i] for i in saved["index"]] == saved["paths"].tolist()
    assert [saved["classes"][y] for y in saved["labels"]] == [p.split("/")[0] for p in saved["paths"]]


def test_evaluate_a_folder_trained_model_writes_its_file(class_folder, tmp_path, capsys):
    model = saved_folder_model(tmp_path, class_folder)
    assert main(["evaluate", str(model), "--limit", "3", "--seed", "1"]) == 0
    (written,) = model.parent.glob("*evaluation-*.json")  # beside the saved model: its folder holds only the model
    assert written.name == f"model-evaluation-folder-{str(class_folder).replace('/', '_')}-test.json"
    results = json.loads(written.read_text())
    assert results["images"] == 3 and "3 test images drawn with seed 1" in results["images_chosen"]
    assert "mse" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["reconstruct", "-n", "4"], ["interpolate", "--pairs", "2", "--steps", "3"]])
def test_picture_commands_draw_their_images_by_seed_and_show_every_class(tmp_path, command):
    root = tmp_path / "grey"  # class c's images have grey levels 40 + 80c + i: each image is told by its level
    for c in range(3):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(8):
            Image.new("L", (16, 16), 40 + 80 * c + i).save(root / f"class{c}" / f"{i}.png")
    model = saved_folder_model(tmp_path, root)
    shown = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1), ("d", 2)):
        out = tmp_path / f"{name}.png"
        args = [command[0], str(model), *command[1:], "--split", "train", "--seed", str(seed), "--out", str(out)]
        assert main(args) == 0
        levels, counts = np.unique(np.asarray(Image.open(out).convert("L")), return_counts=True)
        shown[name] = {v for v, n in zip(levels.tolist(), counts) if n >= 16 * 16 and 40 <= v < 248}  # whole cells
    assert shown["a"] == shown["b"]  # the same seed, the same images
    assert shown["c"] != shown["a"] or shown["d"] != shown["a"]  # other seeds, other images
    for c in range(3):  # every class is in the picture
        assert shown["a"] & set(range(40 + 80 * c, 48 + 80 * c))


def test_a_folder_is_split_the_same_for_every_seed_and_models_are_tested_on_their_split(class_folder, monkeypatch):
    """gon fit's --seed does not move a folder's held-out split (--split-seed does), and a model is evaluated on the
    split it was trained beside however the folder is spelled; an older run, which split by its seed, keeps its."""
    from argparse import Namespace

    from gon.cli.infer import load_images
    from gon.training.config import FitConfig
    from gon.training.data import GonDataModule

    spec = f"folder:{class_folder}"
    splits = {}
    for seed, split_seed in ((0, 0), (3, 0), (3, 3)):
        data = GonDataModule(FitConfig(dataset=spec, seed=seed, split_seed=split_seed, val_size=2), 16)
        data.setup()
        splits[seed, split_seed] = data.test.paths
    assert splits[0, 0] == splits[3, 0] != splits[3, 3]

    model = tiny_model("gon", image_size=16)
    monkeypatch.chdir(class_folder.parent)
    for record, split in (({"seed": 3, "split_seed": 0}, (0, 0)), ({"seed": 3}, (3, 3))):
        model.training_data = {"dataset": spec, **record}
        for spelled in (None, f"{spec}/", f"folder:{class_folder.name}", f"folder:./{class_folder.name}/"):
            args = Namespace(model="m", dataset=spelled, data_dir=None, split="test", seed=0)
            assert load_images(model, args).paths == splits[split], (record, spelled)
