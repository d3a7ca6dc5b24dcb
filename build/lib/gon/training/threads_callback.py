"""``gon fit``'s CPU thread count: fixed by ``--threads``, or chosen by :class:`gon.training.threads.ThreadTuner`."""

from __future__ import annotations

import time

import torch
from lightning.pytorch.callbacks import Callback

from gon.training.threads import ThreadTuner, log_line


class ThreadChoice(Callback):
    """On a CPU: ``threads`` for the whole run, or (None) the count a :class:`ThreadTuner` measures as fastest,
    timed on the run's own training steps. Torch's previous count is restored when training ends."""

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self.tuner: ThreadTuner | None = None
        self._previous: int | None = None
        self._started = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        if pl_module.device.type != "cpu":
            return
        self._previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        else:
            self.tuner = ThreadTuner(log=log_line if trainer.is_global_zero else None)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.tuner is not None:
            self.tuner.before_step()
            self._started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.tuner is not None:
            self.tuner.after_step(time.perf_counter() - self._started)

    def _restore(self) -> None:
        if self._previous is not None:
            torch.set_num_threads(self._previous)
            self._previous = None

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore()
