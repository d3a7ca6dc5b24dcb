"""The training data of ``gon fit``: a named dataset's splits as in-memory tensors, in a LightningDataModule."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from gon.data import ImageDataset, load_dataset
from gon.training.config import FitConfig

PICTURE_IMAGES = 32  # test images in the reconstruction grids (a seeded, class-stratified choice)


class GonDataModule(L.LightningDataModule):
    """A named dataset's train and test splits as in-memory tensors."""

    def __init__(self, config: FitConfig, image_size: int | None):
        super().__init__()
        self.config = config
        self.image_size = image_size
        self.train = self.test = self.validation = self.shown = None

    def setup(self, stage: str | None = None):
        if self.train is None:
            c = self.config
            kw = dict(data_dir=c.data_dir, image_size=self.image_size, resize=c.resize, seed=c.split_seed)
            kw.update(sample_rate=c.sample_rate, audio_seconds=c.audio_seconds)
            self.train = load_dataset(c.dataset, "train", limit=c.limit_train, limit_seed=c.seed, **kw)  # stratified
            self.test = load_dataset(c.dataset, "test", **kw)
            self.validation = self.test.subset(c.val_size, c.seed)  # what the interval evaluations see
            self.shown = self.test.subset(PICTURE_IMAGES, c.seed).images  # the pictures' test images: every class

    def fit_images(self, n: int) -> torch.Tensor:
        """n training images whose latents fit a latent Gaussian: a seeded, stratified choice (a folder's first n
        would be its first classes)."""
        return self.train.subset(n, self.config.seed).images

    def validation_note(self) -> str:
        """Which images the interval evaluations were measured on, for every figure that shows them."""
        return describe_images(len(self.validation), len(self.test), "test")

    def per_process_batch(self) -> int:
        """--batch-size is the global batch: each of the ``world_size`` processes takes an equal share."""
        return self.config.batch_size // (self.trainer.world_size if self.trainer is not None else 1)

    def train_dataloader(self):  # under DDP, Lightning swaps in a DistributedSampler: each process its own images
        c = self.config
        return DataLoader(
            IndexedDataset(ImageDataset(self.train)),
            batch_size=self.per_process_batch(),
            shuffle=True,
            drop_last=True,
            num_workers=c.num_workers,
            persistent_workers=c.num_workers > 0,
        )

    def val_dataloader(self):
        return DataLoader(ImageDataset(self.validation), batch_size=self.per_process_batch(), num_workers=0)


def describe_images(used: int, total: int, split: str) -> str:
    """``all 10,000 test images`` or ``1,000 of 10,000 test images, random, stratified``."""
    return (
        f"all {total:,} {split} images"
        if used >= total
        else f"{used:,} of {total:,} {split} images, random, stratified"
    )


class IndexedDataset(torch.utils.data.Dataset):
    """(image, label, index): the index of each training image, for models with one latent per image (GLO)."""

    def __init__(self, dataset: ImageDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return (*self.dataset[index], index)
