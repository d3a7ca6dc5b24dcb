"""gon fit with Lightning: ``fit`` (a checked, locked run directory, the Trainer and its callbacks).

gon.training.module   GonModule: any model, trained by the one training step (gon.training.graphed_training)
gon.training.data     GonDataModule: a named dataset's splits in memory
gon.training.outputs  logs, interval pictures, and the final figures, pictures, model and report (finish_run)

A run directory holds: config.yaml (the resolved settings), metrics.csv (train loss per
step, test loss at intervals), checkpoints/ (every N steps and last.ckpt), pictures/
(test reconstructions, samples, interpolations and latent histograms at intervals), recon.png,
samples.png, interpolation.png, loss_curves.png, latent_histogram.png, metrics.json (the final
test figures), model/ (the saved model, ``gon.load``-able) and report.html.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

from gon.core.errors import GonError, Stopped
from gon.data import load_dataset
from gon.models.registry import check_data, image_size, options_for
from gon.storage.atomic import write_text
from gon.storage.checkpoints import check_output_dir, read_checkpoint, run_space_needed
from gon.storage.runs import Replacement, check_run_dir, default_run_dir, last_checkpoint, open_run, write_metrics_csv
from gon.training.checkpoint_io import AtomicCheckpointIO
from gon.training.config import FitConfig
from gon.training.data import PICTURE_IMAGES, GonDataModule, IndexedDataset, describe_images
from gon.training.guards import GracefulStop, StopOnNonFiniteLoss
from gon.training.module import GonModule
from gon.training.outputs import CommitReplacement, RunPictures, finish_run, log_pictures, make_loggers
from gon.training.progress import TrainingClock, progress_bar, silence_advertising
from gon.training.provenance import record_session
from gon.training.threads_callback import ThreadChoice

__all__ = [
    "PICTURE_IMAGES",
    "CommitReplacement",
    "GonDataModule",
    "GonModule",
    "IndexedDataset",
    "RunPictures",
    "describe_images",
    "finish_run",
    "fit",
    "log_pictures",
    "make_loggers",
    "resume_module",
    "train",
]


def fit(config: FitConfig) -> Path:
    """Train a model as ``config`` says; returns the run directory.

    A signal before training started leaves the run directory as it was (:class:`gon.storage.runs.Replacement`); once
    it has started, training stops after the current step and saves a checkpoint (:class:`GracefulStop`).
    """
    run = Path(config.out) if config.out else default_run_dir(config.model, config.dataset)
    try:
        return start(config, run)
    except Stopped as e:
        if e.detail is not None:
            raise
        kept = f"; {run} is as it was" if run.exists() else ""
        raise Stopped(e.signum, f"stopped by {e.name} before training started; nothing was written{kept}") from None


def start(config: FitConfig, run: Path) -> Path:
    """:func:`fit`'s checks, data and model, then :func:`train` in the locked run directory."""
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
        module = resume_module(last_checkpoint(run), config)
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
    with lightning_refusals(config):
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
        saved = f"step {trainer.global_step}; checkpoint saved to {last_checkpoint(run)}"
        if stop.stopped:  # Ctrl-C / SIGTERM: the checkpoint is saved; skip the final evaluation
            if trainer.is_global_zero:
                write_metrics_csv(run)
            name = signal.Signals(stop.requested).name
            raise Stopped(
                stop.requested, f"training stopped by {name} at {saved}; resume with: gon fit --resume --out {run}"
            )
        if trainer.is_global_zero:
            try:
                finish_run(run, module.model, data, trainer, clock.seconds)
            except Stopped as e:
                raise Stopped(
                    e.signum,
                    f"stopped by {e.name} after training, at {saved}; the final evaluation and saved model were not "
                    f"finished: gon fit --resume --out {run} finishes them",
                ) from None
    except OSError as e:  # a write that fails mid-run (disk full, directory removed): name the file
        raise GonError(f"cannot write {e.filename or run}: {e.strerror or e}") from None
    return run


@contextmanager
def lightning_refusals(config: FitConfig) -> Iterator[None]:
    """Lightning's refusal of devices this machine lacks (--devices 0,1 on a CPU, --accelerator gpu without one) as
    one line naming the flags, not a traceback."""
    try:
        yield
    except (MisconfigurationException, TypeError, ValueError) as e:
        raise GonError(
            f"--accelerator {config.accelerator} --devices {config.devices} --strategy {config.strategy}: "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None


def resume_module(checkpoint: Path, config: FitConfig) -> GonModule:
    """The module a checkpoint was trained with, rebuilt from its hyperparameters, with this session's Adam settings
    (lr, weight decay, epsilon: :meth:`GonModule.on_train_start` puts them into the restored optimiser);
    ``trainer.fit`` then restores weights, optimiser and loops through :class:`AtomicCheckpointIO` (weights only)."""
    state = read_checkpoint(checkpoint)
    hparams = state.get("hyper_parameters")
    adam = dict(lr=config.lr, weight_decay=config.weight_decay, adam_eps=config.adam_eps)
    try:
        module = GonModule(**{**hparams, **adam})
    except TypeError:
        raise GonError(
            f"{checkpoint} is not a gon fit checkpoint (its hyperparameters do not describe a model)"
        ) from None
    if hparams.get("model") != config.model:  # a last.ckpt copied in from another run
        raise GonError(
            f"--resume: {checkpoint} holds a {hparams.get('model')!r} model but the run is a {config.model!r} "
            "(its config.yaml); it is another run's checkpoint"
        )
    for name, tensor in (state.get("state_dict") or {}).items():
        if torch.is_tensor(tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise GonError(
                f"--resume: {checkpoint}: weight {name} holds NaN or infinite values; training cannot continue from "
                "it (start a new run, or resume from an earlier checkpoint copied to last.ckpt)"
            )
    return module
