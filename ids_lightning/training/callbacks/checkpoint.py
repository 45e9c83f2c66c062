"""Checkpoints a killed run can trust: ``last.ckpt`` after every epoch, every file written
atomically, a resume that skips a checkpoint that does not load, and ``fit.json``, the record of
a finished fit that lets a re-run complete what a kill after the fit left undone."""

from __future__ import annotations

import io
import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from ids_lightning.core.fileio import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` follows every validation, improved or not.

    Lightning 2.6 rewrites ``last.ckpt`` only when a top-k checkpoint was saved in the same
    step, so a run killed after a few epochs without improvement would resume from the last
    improvement instead of the last epoch.
    """

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_every_epoch(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_every_epoch(trainer)

    def _save_last_every_epoch(self, trainer) -> None:
        """``last.ckpt`` now, unless this step was saved already (with an improvement)."""
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file in the same folder, fsynced, then renamed: a full
    disk or a kill leaves the previous file whole, never a truncated one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getvalue())


def loadable(path: Path) -> bool:
    """Whether ``path`` is a checkpoint that ``torch.load(weights_only=True)`` reads."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: any failure means "do not resume from it"
        log.warning("checkpoint %s does not load (%s: %s)", path, type(err).__name__, err)
        return False
    return True


def resumable(folder: Path) -> Path | None:
    """``last.ckpt`` if it loads, else the newest checkpoint of ``folder`` that does (with a
    warning), else None."""
    candidates = sorted(folder.glob("*.ckpt"), key=lambda p: (p.name == "last.ckpt", p.stat().st_mtime), reverse=True)
    for path in candidates:
        if loadable(path):
            if path.name != "last.ckpt":
                log.warning("resuming from %s instead", path)
            return path
    return None


class FitRecord(L.Callback):
    """Writes ``fit.json`` when the fit ends, before any other callback's fit-end work (the
    ONNX export): the fit's final metrics, epochs, seconds, best checkpoint and history."""

    def __init__(self, path: Path):
        self.path, self.record, self._started = Path(path), None, 0.0

    def on_fit_start(self, trainer, pl_module) -> None:
        self._started = time.perf_counter()

    def on_fit_end(self, trainer, pl_module) -> None:
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        self.record = {
            "metrics": fit_metrics(trainer, pl_module),
            "epochs_run": trainer.current_epoch,
            "fit_seconds": round(time.perf_counter() - self._started, 3),
            # relative to the run folder, so a moved folder still finds it
            "best_checkpoint": _relative(best, self.path.parent),
            "history": pl_module.history,
            "world_size": trainer.world_size,  # processes that trained together (DDP)
        }
        if trainer.is_global_zero:
            atomic_write_json(self.path, self.record)


def fit_metrics(trainer, pl_module) -> dict[str, float | None]:
    """The fit's final metrics: what the last epochs logged, over the module's history and its
    best validation macro-F1 (both restored from the checkpoint). A run killed after its last
    epoch's checkpoint resumes into a fit with no epoch left to run, which logs nothing: the
    history and the best are then all there is."""
    metrics: dict[str, float | None] = {}
    for row in getattr(pl_module, "history", []):
        metrics.update({k: v for k, v in row.items() if k != "epoch" and v is not None})
    best = getattr(pl_module, "val_f1_best", None)
    if best is not None and math.isfinite(float(best.max_value)):
        metrics["val/f1_macro_best"] = float(best.max_value)
    metrics.update(scalar_metrics(trainer.callback_metrics))
    return dict(sorted(metrics.items()))


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    """Lightning's logged values as plain floats (NaN becomes None so the JSON stays valid)."""
    out = {}
    for key, value in metrics.items():
        number = float(value)
        out[key] = None if math.isnan(number) else number
    return dict(sorted(out.items()))


def _relative(path: str, folder: Path) -> str:
    if not path:
        return ""
    try:
        return str(Path(path).relative_to(folder))
    except ValueError:  # checkpoints configured outside the run folder
        return path
