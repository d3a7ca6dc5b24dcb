"""What a ``gon fit`` run writes besides checkpoints: logs, pictures at intervals, and the final figures, pictures,
saved model and report (:func:`finish_run`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from tqdm.auto import tqdm

from gon.core.errors import GonError
from gon.metrics import reconstruction_metrics
from gon.models import GradientOriginModel
from gon.models.loading import TRAINING_DATA_KEYS
from gon.report import final_pictures, interval_pictures, reconstruction_grid, save_grid, write_report
from gon.report.pictures import INTERVAL_FIT_IMAGES
from gon.sampling import GAUSSIAN_FIT_IMAGES, LatentGaussian, encode_images
from gon.storage.atomic import write_text
from gon.storage.runs import Replacement, read_metrics, write_metrics_csv
from gon.training.config import FitConfig
from gon.training.data import GonDataModule, describe_images


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


class CommitReplacement(Callback):
    """``--overwrite``: the old run, moved aside, is removed once the new run's first step is done."""

    def __init__(self, replacement: Replacement):
        self.replacement = replacement

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.replacement.commit()


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
    model.save_pretrained(run / "model", latent_gaussian=gaussian, training_data=training_data, steps=steps)
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
