"""What ``gon fit`` prints while it trains, and how long it has trained.

In a terminal: Lightning's tqdm bar, without its ``v_num`` field. In a log file (output not a
terminal): one plain line every few seconds instead of a bar redrawn with carriage returns at every
step. Lightning's advertising tips are filtered out of its log. :class:`TrainingClock` keeps the
training time in the checkpoints, so that it adds up across ``--resume`` sessions.
"""

from __future__ import annotations

import logging
import math
import sys
import time

from lightning.pytorch.callbacks import Callback, ProgressBar, TQDMProgressBar

LINE_SECONDS = 10.0  # between two progress lines in a log file


class TerminalProgress(TQDMProgressBar):
    """Lightning's bar, without the logger's version number (``v_num``) that means nothing to a gon user."""

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class LineProgress(ProgressBar):
    """One line per ``LINE_SECONDS`` (and at the first and last step): step, total, loss, speed, time left."""

    def __init__(self, seconds: float = LINE_SECONDS):
        super().__init__()
        self.seconds, self.enabled = seconds, True
        self._last = self._start = 0.0
        self._start_step = 0

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer, pl_module):
        self._start = self._last = time.perf_counter()
        self._start_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now, step = time.perf_counter(), trainer.global_step
        total = trainer.max_steps if trainer.max_steps > 0 else self._epoch_steps(trainer)
        if not self.enabled or (now - self._last < self.seconds and step != total and step != self._start_step + 1):
            return
        self._last = now
        rate = (step - self._start_step) / max(now - self._start, 1e-9)
        parts = [f"step {step:,}" + (f"/{total:,}" if total else "")]
        parts += [f"{k} {_number(v)}" for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"]
        parts.append(f"{rate:.2f} steps/s")
        if total and rate > 0:
            parts.append(f"{(total - step) / rate:.0f} s left")
        print("gon fit: " + ", ".join(parts), file=sys.stderr, flush=True)

    @staticmethod
    def _epoch_steps(trainer) -> int | None:
        batches = trainer.num_training_batches
        if trainer.max_epochs is None or trainer.max_epochs < 0 or not math.isfinite(batches):
            return None
        return int(batches) * trainer.max_epochs


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def progress_bar(refresh_every: int) -> ProgressBar:
    """The bar in a terminal, periodic lines otherwise (tqdm writes to stderr, so that is what is checked)."""
    return TerminalProgress(refresh_rate=refresh_every) if sys.stderr.isatty() else LineProgress()


class TrainingClock(Callback):
    """Seconds spent in ``trainer.fit`` over every session of a run (saved in and restored from checkpoints)."""

    state_key = "gon_training_clock"

    def __init__(self):
        self.before = 0.0  # the earlier sessions' time, from the checkpoint resumed
        self._started: float | None = None

    def on_fit_start(self, trainer, pl_module):
        self._started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.before + (time.perf_counter() - self._started if self._started is not None else 0.0)

    def state_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.before = float(state_dict.get("seconds", 0.0))


class _NoAdvertising(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


def silence_advertising() -> None:
    """Drop Lightning's tips about its cloud products (logged at INFO level by its rank-zero logger)."""
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoAdvertising) for f in log.filters):
        log.addFilter(_NoAdvertising())
