"""Writes the test-time figures and ``evaluation.json`` into the run folder and TensorBoard."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import matplotlib.pyplot as plt
from lightning.pytorch.loggers import TensorBoardLogger

from ids_lightning.core.fileio import atomic_path, atomic_write_json
from ids_lightning.evaluation.plots import (
    confusion_matrix_figure,
    learning_curves_figure,
    precision_recall_figure,
    roc_figure,
)
from ids_lightning.models.module import best_epoch

log = logging.getLogger(__name__)


class RunReport(L.Callback):
    """At test end: ``confusion_matrix.png``, ``roc.png``, ``precision_recall.png``, ``curves.png``
    and ``evaluation.json``.

    The learning curves come from the module's per-epoch ``history``; the confusion matrix, ROC
    and precision-recall curves from its ``test_report``.
    """

    def __init__(self, output_dir: str):
        self.output_dir = Path(output_dir)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not pl_module.test_report:
            return
        report = pl_module.test_report
        figures = {
            "confusion_matrix": confusion_matrix_figure(report["confusion_matrix"], pl_module.class_names),
            "roc": roc_figure(report["roc"]),
            "precision_recall": precision_recall_figure(report["pr"]),
            "curves": learning_curves_figure(pl_module.history, best_epoch(pl_module.history), stopped_epoch(trainer)),
        }
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name, fig in figures.items():
            with atomic_path(self.output_dir / f"{name}.png") as tmp:
                fig.savefig(tmp, dpi=120)
            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):
                    logger.experiment.add_figure(f"test/{name}", fig, global_step=trainer.global_step)
            plt.close(fig)
        atomic_write_json(
            self.output_dir / "evaluation.json",
            {"class_names": pl_module.class_names, "history": pl_module.history, **report},
        )
        log.info("wrote figures and evaluation.json to %s", self.output_dir)


def stopped_epoch(trainer: L.Trainer) -> int | None:
    """The epoch at which early stopping ended the fit, if it did (in this process)."""
    early = trainer.early_stopping_callback
    return early.stopped_epoch if early is not None and early.stopped_epoch > 0 else None
