"""Every kind of dataset draws its "N images" (--limit, --limit-train, --val-size, evaluate --limit, pictures) by one
seeded random choice, stratified where there are labels (gon.data.subsets.Choice), never the first N of the split.

Each kind is written as small synthetic files in its real format, its items sorted so that the first N would be
one class (or one end of the split).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from gon.data import load_dataset
from gon.data.idx import IDX_FILES
from gon.data.subsets import Choice, choose
from tests import test_data, test_paper_datasets, test_signals

isolated = test_data.isolated


def mnist_like(root):
    """A fake MNIST with labels sorted 0,0,0,...,9,9,9: the first N are zeros."""
    root.mkdir()
    for split, n in (("train", 30), ("test", 30)):
        images = np.arange(n, dtype=np.uint8)[:, None, None].repeat(28, 1).repeat(28, 2)
        test_data.write_idx(root / IDX_FILES[split][0], images)
        test_data.write_idx(root / IDX_FILES[split][1], np.arange(n) // 3)
    return "mnist", {"data_dir": root, "download": False}


def cifar(root):
    test_data.write_fake_cifar(root / "cifar-10-batches-py")
    return "cifar10", {"data_dir": root, "download": False}


def smallnorb(root):
    test_paper_datasets.write_fake_norb(root, n=20)
    return "smallnorb", {"data_dir": root, "download": False}


def coil20(root):
    test_paper_datasets.write_fake_coil(root / "coil-20-proc.zip")
    return "coil20", {"data_dir": root, "download": False, "split": "test", "image_size": 8}


def celeba(root):
    test_paper_datasets.write_fake_celeba(root, zipped=True)
    return "celeba", {"data_dir": root, "download": False, "image_size": 8}


def lsun(root):
    root.mkdir()
    ids = [hashlib.sha1(bytes([i])).hexdigest().encode() for i in range(8)]
    items = {k: test_paper_datasets._webp((30 * i, 0, 0), (16, 16)) for i, k in enumerate(ids)}
    test_paper_datasets.write_lmdb(root / "bedroom_train_lmdb", items)
    test_paper_datasets.write_lmdb(root / "bedroom_val_lmdb", items)
    return "lsun-bedroom", {"data_dir": root, "download": False, "image_size": 8}


def lmdb_path(root):
    root.mkdir()
    frames = {f"clip/{i:08d}".encode(): test_paper_datasets._jpeg((10 * i, 0, 0), (16, 16)) for i in range(20)}
    return f"lmdb:{test_paper_datasets.write_lmdb(root / 'frames.lmdb', frames)}", {"image_size": 8}


def audio(root):
    root.mkdir()
    for i in range(12):
        test_signals.wav_bytes(root / f"{i:02d}.wav", test_signals.tone(100 + 50 * i, 4000, 0.02), 4000)
    return f"audio:{root}", {"sample_rate": 4000, "audio_seconds": 0.02}


def volume(root):
    root.mkdir()
    for i in range(12):
        np.save(root / f"{i:02d}.npy", np.full((4, 4, 4), i / 12, np.float32))
    return f"volume:{root}", {}


def folder(root):
    for c in range(3):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(6):
            test_data.Image.new("L", (8, 8), 40 * c + i).save(root / f"class{c}" / f"{i}.png")
    return f"folder:{root}", {"image_size": 8}


KINDS = [mnist_like, cifar, smallnorb, coil20, celeba, lsun, lmdb_path, audio, volume, folder]


@pytest.mark.parametrize("kind", KINDS, ids=[k.__name__ for k in KINDS])
def test_limit_is_a_seeded_random_choice_for_every_kind_of_dataset(isolated, kind):
    name, options = kind(isolated / "data")
    whole = load_dataset(name, **options)
    k = max(2, min(len(whole) // 2, 6))
    few = load_dataset(name, limit=k, **options)
    assert len(few) == k and (whole.index is None or torch.equal(whole.index, torch.arange(len(whole))))
    assert torch.equal(few.images, whole.images[few.index])  # the chosen images, read as the whole split reads them
    assert torch.equal(load_dataset(name, limit=k, **options).index, few.index)  # same seed, same images
    others = [load_dataset(name, limit=k, limit_seed=s, **options).index for s in (1, 2, 3)]
    assert any(not torch.equal(o, few.index) for o in others)  # another seed, others
    assert any(o.max() >= k for o in [few.index, *others])  # from the whole split, not its first k
    if whole.labels is not None:  # stratified: k images of k classes or more show k classes
        assert torch.equal(few.labels, whole.labels[few.index])
        assert len(few.labels.unique()) == min(k, len(whole.labels.unique()))
    if whole.paths is not None:
        assert few.paths == [whole.paths[i] for i in few.index.tolist()]


def test_choice_is_choose_and_takes_everything_in_order_without_k():
    labels = torch.arange(30) // 10
    assert torch.equal(Choice(7, 3)(30, labels), choose(30, 7, 3, labels))
    assert torch.equal(Choice()(5), torch.arange(5)) and torch.equal(Choice(9)(5), torch.arange(5))
