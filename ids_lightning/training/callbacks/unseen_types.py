"""How the test attacks of types training never saw fare against the types it saw.

KDDTest+ holds 17 attack names that KDDTrain+ lacks; a held-out IoT-23 capture brings a family
training never saw. One accuracy hides them among the rest; this callback adds to
``metrics.json`` the share of those attacks detected (called any attack class) and recalled
(called their own class), beside the same for the known types
(:func:`ids_lightning.evaluation.unseen.unseen_scores_of`).
"""

from __future__ import annotations

import logging

import lightning as L
import torch

from ids_lightning.evaluation.unseen import unseen_scores_of

log = logging.getLogger(__name__)


class UnseenAttackTypes(L.Callback):
    def __init__(self):
        self.summary: dict = {}
        self._predicted: list[torch.Tensor] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._predicted = []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._predicted.append(outputs.argmax(dim=1).cpu())

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None or not self._predicted:
            return
        self.summary = unseen_scores_of(datamodule, torch.cat(self._predicted).numpy())
        if self.summary.get("test/novel_types/records"):
            known = self.summary.get("test/known_types/detected")
            log.info(
                "attack types training never saw: %d test records, %.1f%% detected, %.1f%% in their class%s",
                self.summary["test/novel_types/records"],
                100 * self.summary["test/novel_types/detected"],
                100 * self.summary["test/novel_types/recall"],
                "" if known is None else f" (seen types: {100 * known:.1f}% detected)",
            )
