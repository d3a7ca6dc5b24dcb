"""Callbacks that stop training safely: on a loss that is NaN or infinite, and on Ctrl-C / SIGTERM.

Both decide together across processes (under DDP one rank's bad loss or signal stops every
rank at the same step), and neither ever writes over a good checkpoint with a bad state.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

from gon.core.errors import GonError, Stopped
from gon.storage.checkpoints import checkpoint_step


class NonFiniteLossError(GonError):
    """The training loss became NaN or infinite; the run stopped before the optimiser used it."""


def _any_rank(trainer, flag: bool) -> bool:
    """True on every rank when ``flag`` is True on at least one (a no-op without DDP)."""
    return bool(trainer.strategy.reduce_boolean_decision(flag, all=False))


def describe_checkpoint(path: Path) -> str:
    step = checkpoint_step(path) if path.is_file() else None
    return f"{path} (step {step})" if step is not None else "none (no checkpoint was written yet)"


class StopOnNonFiniteLoss(Callback):
    """Raises :class:`NonFiniteLossError` before the backward pass of a step whose loss is not finite.

    Checked before ``backward``, so the optimiser never applies that step and no checkpoint holds
    its weights; the message names the step and the last good checkpoint.
    """

    def __init__(self, last_checkpoint: Path):
        self.last_checkpoint = last_checkpoint

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        if _any_rank(trainer, not bool(torch.isfinite(loss.detach()).all())):
            value = loss.detach().float().reshape(-1)[0].item()
            raise NonFiniteLossError(
                f"loss became {value} at step {trainer.global_step}; training stopped before that step's update; "
                f"last good checkpoint: {describe_checkpoint(self.last_checkpoint)}; a lower --lr may help"
            )


class GracefulStop(Callback):
    """First SIGINT (Ctrl-C) or SIGTERM: finish the current step, then stop so that a final checkpoint is saved.

    A second signal aborts at once (the last checkpoint written stays valid). After ``trainer.fit``
    returns, ``stopped`` says whether training ended this way.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested: int | None = None  # the signal received
        self.stopped = False
        self._previous: dict[int, object] = {}
        self._global_zero = True

    def _handle(self, signum, frame) -> None:
        if self.requested is not None:  # asked twice: stop now
            self._restore()
            raise Stopped(
                signum,
                f"stopped by {signal.Signals(signum).name} again: aborted without saving; the last "
                "checkpoint written stays valid",
            )
        self.requested = signum
        if self._global_zero:  # under DDP every process gets the signal; one message is enough
            print(
                f"\ngon: {signal.Signals(signum).name} received: stopping after this step and saving a checkpoint "
                "(press Ctrl-C again to abort without saving)",
                file=sys.stderr,
                flush=True,
            )

    def on_train_start(self, trainer, pl_module) -> None:
        self.requested, self.stopped, self._global_zero = None, False, trainer.is_global_zero
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if _any_rank(trainer, self.requested is not None):
            self.stopped = True
            trainer.should_stop = True

    def _restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore()
