"""Training with Lightning: one LightningModule and one DataModule for every model, and ``fit``.

A run directory holds: config.yaml (the resolved settings), metrics.csv (train loss per
step, test loss at intervals), checkpoints/ (every N steps and last.ckpt), pictures/
(test reconstructions, samples, interpolations and latent histograms at intervals), recon.png,
samples.png, interpolation.png, loss_curves.png, latent_histogram.png, metrics.json (the final
test figures), model/ (the saved model, ``gon.load``-able) and report.html.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from gon.atomic import write_text
from gon.checkpointing import AtomicCheckpointIO, check_output_dir, read_checkpoint, run_space_needed
from gon.config import FitConfig
from gon.data import ImageDataset, load_dataset
from gon.errors import GonError
from gon.graphed_training import GraphedTraining
from gon.graphs import TrainingAdam
from gon.guards import GracefulStop, StopOnNonFiniteLoss
from gon.loading import TRAINING_DATA_KEYS
from gon.loop import loss_arguments
from gon.metrics import reconstruction_metrics
from gon.models import GradientOriginModel, per_image_sse
from gon.progress import TrainingClock, progress_bar, silence_advertising
from gon.provenance import record_session
from gon.registry import build, check_data, image_size, options_for
from gon.report import final_pictures, interval_pictures, reconstruction_grid, save_grid, write_report
from gon.report.pictures import INTERVAL_FIT_IMAGES
from gon.runs import (
    Replacement,
    check_run_dir,
    default_run_dir,
    last_checkpoint,
    open_run,
    read_metrics,
    write_metrics_csv,
)
from gon.sampling import GAUSSIAN_FIT_IMAGES, LatentGaussian, encode_images
from gon.threads_callback import ThreadChoice

PICTURE_IMAGES = 32  # test images in the reconstruction grids (a seeded, class-stratified choice)


class GonModule(L.LightningModule):
    """Trains any gon model on its own ``loss_terms``; evaluates test reconstructions.

    cuda_graphs: on a single CUDA device, each training step is one replayed CUDA graph under manual
    optimisation (:mod:`gon.graphed_training`); elsewhere, and with False, Lightning's automatic optimisation.
    weight_decay, adam_eps: Adam's L2 penalty and epsilon, as the Lightning fork of the original code exposes them.
    """

    def __init__(
        self,
        model: str,
        model_options: dict[str, Any],
        lr: float = 1e-4,
        cuda_graphs: bool = True,
        weight_decay: float = 0.0,
        adam_eps: float = 1e-8,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = build(model, **model_options)
        self.lr, self.weight_decay, self.adam_eps = lr, weight_decay, adam_eps
        self.cuda_graphs = cuda_graphs
        self.graphed: GraphedTraining | None = None
        self.last_checkpoint: Path | None = None  # named by the non-finite-loss error of graphed steps

    def training_step(self, batch, batch_idx):
        x, label, index = batch
        fields = loss_arguments(self.model, {"x": x, "label": label, "index": index})  # GLO: index
        if self.graphed is not None:
            return self.graphed.training_step(x, fields)
        terms = self.model.loss_terms(x, **fields)
        self.log("train/loss", terms["loss"], prog_bar=True, sync_dist=True)  # DDP: the mean over all processes
        for name, value in terms.items():
            if name != "loss":
                self.log(f"train/{name}", value, sync_dist=True)
        return terms["loss"]

    def validation_step(self, batch, batch_idx):
        x = batch[0]
        terms = self.model.loss_terms(x)
        sse = per_image_sse(self.model.reconstruct(x), x)
        self.log("test/loss", terms["loss"], sync_dist=True)
        self.log("test/mse", sse.mean() / x[0].numel(), prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        graphs = self.cuda_graphs and self.device.type == "cuda"
        if graphs and self.trainer.world_size > 1:
            graphs = False
            if self.trainer.is_global_zero:
                print(
                    "gon: cuda graphs: off under DDP (the gradient all-reduce is not captured); training eagerly",
                    file=sys.stderr,
                )
        self.automatic_optimization = not graphs
        self.graphed = GraphedTraining(self, self.last_checkpoint) if graphs else None
        return TrainingAdam(
            self.model.parameters(),
            lr=self.lr,
            capturable=graphs,
            update_in_closure=graphs,
            eps=self.adam_eps,
            weight_decay=self.weight_decay,
        )

    def on_save_checkpoint(self, checkpoint) -> None:
        if self.graphed is not None:  # never save the weights that followed a NaN
            self.graphed.check_finite()

    def on_train_start(self):
        # --resume --lr: the restored optimiser state carries the old rate; the rate given now is the one used
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.lr


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
            kw = dict(data_dir=c.data_dir, image_size=self.image_size, resize=c.resize, seed=c.seed)
            kw.update(sample_rate=c.sample_rate, audio_seconds=c.audio_seconds)
            self.train = load_dataset(c.dataset, "train", limit=c.limit_train, **kw)  # seeded, stratified
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


class RunPictures(Callback):
    """Every N steps: reconstructions, samples, interpolations and the latent histogram in pictures/, and
    loss_curves.png so far."""

    def __init__(self, run: Path, data: GonDataModule, every: int):
        self.run, self.data, self.every = run, data, every

    @rank_zero_only
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step % self.every == 0:
            trainer.logger.save()  # flush this session's metrics so that the curves include them
            pictures = interval_pictures(
                module.model,
                self.run / "pictures",
                trainer.global_step,
                self.data.fit_images(INTERVAL_FIT_IMAGES),
                self.data.shown,
                read_metrics(self.run),
                self.run / "loss_curves.png",
                self.data.validation_note(),
            )
            log_pictures(trainer.loggers, pictures, trainer.global_step)


def log_pictures(loggers, pictures: dict, step: int) -> None:
    """Picture grids (PIL images) into every TensorBoard log, beside its scalars."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            for name, image in pictures.items():
                logger.experiment.add_image(name, np.asarray(image.convert("RGB")), step, dataformats="HWC")
            logger.experiment.flush()


def make_loggers(run: Path, config: FitConfig) -> list:
    """The CSV log (always: metrics.csv and the report read it) and the others --logger asks for."""
    # a new version_K per session, merged by write_metrics_csv; flushed at least as often as checkpoints are
    # written, so that a killed session keeps the log of the steps its checkpoint holds
    loggers = [CSVLogger(run, name="logs", flush_logs_every_n_steps=min(100, config.checkpoint_every))]
    if "tensorboard" in config.logger:
        try:
            import tensorboard  # noqa: F401  (Lightning falls back to tensorboardX, which gon does not install)
        except ImportError:
            raise GonError(
                "--logger tensorboard needs the tensorboard package: pip install 'gon[tensorboard]'"
            ) from None
        loggers.append(TensorBoardLogger(run, name="tensorboard", version="", default_hp_metric=False))
    return loggers


def fit(config: FitConfig) -> Path:
    """Train a model as ``config`` says; returns the run directory."""
    run = Path(config.out) if config.out else default_run_dir(config.model, config.dataset)
    if rank_zero_only.rank == 0:  # under DDP every process runs fit(); only rank 0 checks and creates the run
        check_run_dir(run, config.resume, config.overwrite)  # nothing is touched before everything is checked
    L.seed_everything(config.seed, workers=True, verbose=False)

    probe = load_dataset(  # native size, channels and grid dimension
        config.dataset,
        "test",
        data_dir=config.data_dir,
        limit=1,
        sample_rate=config.sample_rate,
        audio_seconds=config.audio_seconds,
    )
    check_data(config.model, probe)
    if config.image_size is not None and probe.images.ndim == 3:
        raise GonError(
            "option image_size (--image-size) does not apply to audio: set --sample-rate and --audio-seconds"
        )
    size = image_size(config.model, probe.image_size, config.image_size) if probe.images.ndim == 4 else None
    data = GonDataModule(config, size or config.image_size)
    data.setup()
    if len(data.train) < config.batch_size:  # batches are full (drop_last): not one step could run
        raise GonError(
            f"option batch_size (--batch-size) is {config.batch_size}, more than the {len(data.train)} training "
            "images of the dataset: lower it"
        )
    options = options_for(config.model, data.train, **config.model_options)

    if config.resume:
        module = resume_module(last_checkpoint(run), config.lr)
        module.cuda_graphs = config.cuda_graphs
    else:
        module = GonModule(config.model, options, config.lr, config.cuda_graphs, config.weight_decay, config.adam_eps)
    module.last_checkpoint = last_checkpoint(run)
    if rank_zero_only.rank > 0:  # same initial weights everywhere, but each process its own noise (VGON, z0)
        torch.manual_seed(config.seed + rank_zero_only.rank)
        return train(config, run, data, module, Replacement(None))
    with open_run(run, config.resume, config.overwrite) as replacement:  # locked; an old run (--overwrite) moved aside
        return train(config, run, data, module, replacement)


def train(config: FitConfig, run: Path, data: GonDataModule, module: GonModule, replacement: Replacement) -> Path:
    """The training session of :func:`fit`, in a checked, locked run directory."""
    if rank_zero_only.rank == 0:  # a read-only or full output directory fails here, not hours in
        check_output_dir(run, run_space_needed(sum(p.numel() for p in module.parameters())))
        write_text(
            run / "config.yaml",
            yaml.safe_dump({**config.to_dict(), "model_options": module.hparams.model_options}, sort_keys=False),
        )
        write_text(run / "model_options.json", json.dumps(module.model.config, indent=2) + "\n")  # defaults too
        record_session(run)

    on_gpu = config.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()  # Lightning's choice too
    log_every = config.resolved_log_every(on_gpu)
    stop, clock = GracefulStop(), TrainingClock()
    callbacks = [
        ThreadChoice(config.threads),  # first: its step timing ends before the other callbacks' work
        StopOnNonFiniteLoss(last_checkpoint(run)),
        stop,
        ModelCheckpoint(
            dirpath=run / "checkpoints",
            filename="step{step:07d}",
            auto_insert_metric_name=False,
            every_n_train_steps=config.checkpoint_every,
            save_top_k=1,
            monitor="step",
            mode="max",
            save_last=True,
        ),
        RunPictures(run, data, config.picture_every),
        CommitReplacement(replacement),
        clock,
        progress_bar(log_every),
    ]
    silence_advertising()
    max_epochs = config.max_epochs if config.max_epochs is not None else (-1 if config.max_steps else 1)
    trainer = L.Trainer(
        default_root_dir=run,
        accelerator=config.accelerator,
        devices=int(config.devices) if str(config.devices).isdigit() else config.devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        max_steps=config.max_steps or -1,
        max_epochs=max_epochs,
        logger=make_loggers(run, config),
        callbacks=callbacks,
        # metrics.csv: the train loss every log_every steps (default: every step on a CPU, 50 on a GPU). Each
        # logged value is read off the device, a sync that on a GPU costs a launch-bound step ~2 ms
        # (docs/performance.md)
        log_every_n_steps=log_every,
        val_check_interval=config.val_every,
        check_val_every_n_epoch=None if config.val_every else 1,
        num_sanity_val_steps=0,
        inference_mode=False,  # a GON takes a gradient to encode, even when evaluating
        enable_model_summary=False,
        deterministic="warn",  # CPU kernels are deterministic; on CUDA, warn about the ones that are not
        plugins=[AtomicCheckpointIO()],  # atomic writes; loads never unpickle arbitrary objects
    )
    if config.batch_size % trainer.world_size:
        raise GonError(
            f"--batch-size {config.batch_size} is the global batch; it must divide evenly among the "
            f"{trainer.world_size} processes"
        )
    try:
        trainer.fit(module, datamodule=data, ckpt_path=last_checkpoint(run) if config.resume else None)
        trainer.save_checkpoint(last_checkpoint(run), weights_only=False)  # the full state, for --resume
        if stop.stopped:  # Ctrl-C / SIGTERM: the checkpoint is saved; skip the final evaluation
            if trainer.is_global_zero:
                write_metrics_csv(run)
                print(
                    f"gon: training stopped at step {trainer.global_step}; checkpoint saved to {last_checkpoint(run)}; "
                    f"resume with: gon fit --resume --out {run}",
                    file=sys.stderr,
                    flush=True,
                )
            raise KeyboardInterrupt
        if trainer.is_global_zero:
            finish_run(run, module.model, data, trainer, clock.seconds)
    except OSError as e:  # a write that fails mid-run (disk full, directory removed): name the file
        raise GonError(f"cannot write {e.filename or run}: {e.strerror or e}") from None
    return run


class CommitReplacement(Callback):
    """``--overwrite``: the old run, moved aside, is removed once the new run's first step is done."""

    def __init__(self, replacement: Replacement):
        self.replacement = replacement

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.replacement.commit()


def resume_module(checkpoint: Path, lr: float) -> GonModule:
    """The module a checkpoint was trained with, rebuilt from its hyperparameters, at learning rate ``lr``;
    ``trainer.fit`` then restores weights, optimiser and loops through :class:`AtomicCheckpointIO` (weights only)."""
    hparams = read_checkpoint(checkpoint).get("hyper_parameters")
    try:
        return GonModule(**{**hparams, "lr": lr})
    except TypeError:
        raise GonError(
            f"{checkpoint} is not a gon fit checkpoint (its hyperparameters do not describe a model)"
        ) from None


def finish_run(run: Path, model: GradientOriginModel, data: GonDataModule, trainer: L.Trainer, seconds: float) -> None:
    """Final pictures and test figures of a run (rank zero only); ``seconds``: training time of every session."""
    steps = trainer.global_step
    write_metrics_csv(run)
    shown = describe_images(len(data.shown), len(data.test), "test")
    recon = reconstruction_grid(model, data.shown, source=f"{shown} (seed {data.config.seed})")
    save_grid(recon, run / "recon.png")
    results = reconstruction_metrics(model, data.test.images)
    results = {f"test_{k}": v for k, v in results.items()}
    results.update(
        steps=steps,
        train_seconds=round(seconds, 2),
        parameters=sum(p.numel() for p in model.parameters()),
        test_images=len(data.test),
        test_measured_on=describe_images(len(data.test), len(data.test), "test"),
        interval_evaluations_measured_on=data.validation_note(),
    )
    training = data.fit_images(GAUSSIAN_FIT_IMAGES)
    with tqdm(
        total=len(training), desc="encoding training latents", unit="img", leave=False, disable=not sys.stderr.isatty()
    ) as bar:
        latents = encode_images(model, training, progress=bar.update)
    gaussian = LatentGaussian.fit(latents)  # for sampling the saved model
    training_data = {k: getattr(data.config, k) for k in TRAINING_DATA_KEYS}
    model.save_pretrained(run / "model", latent_gaussian=gaussian, training_data=training_data)
    stats, pictures = final_pictures(
        model,
        run,
        latents,
        gaussian,
        data.shown,
        read_metrics(run),
        data.config.sample_rate,
        validation_note=data.validation_note(),
    )
    results.update(stats)
    log_pictures(trainer.loggers, {"recon": recon, **pictures}, steps)
    write_text(run / "metrics.json", json.dumps(results, indent=2) + "\n")
    write_report(run)
    print(
        f"test per-pixel MSE {results['test_mse']:.5f} (PSNR {results['test_psnr']:.2f} dB) after {steps} steps, "
        f"{seconds:.1f} s; run written to {run}"
    )
