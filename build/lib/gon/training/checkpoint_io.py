"""Lightning's side of the crash-safe checkpoints (:mod:`gon.storage.checkpoints`): a CheckpointIO plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.fabric.plugins import TorchCheckpointIO

from gon.storage.checkpoints import read_checkpoint, save_checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic, fsynced writes and weights-only loads (pass as a Trainer plugin)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options")
        save_checkpoint(checkpoint, path)

    def load_checkpoint(self, path, map_location: Any = "cpu", weights_only: bool | None = None) -> dict[str, Any]:
        # weights_only is always True here, whatever the caller asks: checkpoints may come from anyone.
        return read_checkpoint(path, map_location if map_location is not None else "cpu")

    def remove_checkpoint(self, path) -> None:
        Path(path).unlink(missing_ok=True)
