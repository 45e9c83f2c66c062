"""One progress bar for the whole fit, counted in training batches (optimizer steps), not in the
chunks of steps that Lightning iterates over, so its ETA is that of the run and stays steady."""

from __future__ import annotations

from lightning.pytorch.callbacks import ProgressBar
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ids_lightning.models.batches import StepChunk


class StepProgress(ProgressBar):
    """``training ━━━━ 3,360/52,600 batches 0:00:31 • ETA 0:07:12`` (validation and test are short
    and not drawn; the epoch lines say how they went)."""

    def __init__(self):
        super().__init__()
        self._enabled, self._progress, self._task = True, None, None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def on_train_start(self, trainer, pl_module) -> None:
        if not self._enabled or not trainer.is_global_zero:
            return
        loader = trainer.train_dataloader
        steps = getattr(loader, "steps_per_epoch", None)
        per_epoch = steps(trainer.num_training_batches) if steps else trainer.num_training_batches
        epochs = max(trainer.max_epochs - trainer.current_epoch, 1) if trainer.max_epochs > 0 else 1
        self._progress = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("batches"),
            TimeElapsedColumn(),
            TextColumn("• ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            refresh_per_second=2,
        )
        self._task = self._progress.add_task("training", total=per_epoch * epochs)
        self._progress.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, len(batch.index) if isinstance(batch, StepChunk) else 1)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.on_train_end(trainer, pl_module)
