"""Calibrate the novelty threshold on validation and score it on the test set.

At test end (the tested checkpoint loaded) the validation rows of benign classes give the
threshold at ``fpr`` (:mod:`ids_lightning.core.novelty`), saved as ``novelty.json`` in the run
folder for the detector. ``metrics.json`` gets the threshold, the benign false-alarm rate of the
unknown flag on the test set, and the share of test attacks of types training never saw that are
flagged, as an attack class or as unknown, beside the same for the seen types.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch

from ids_lightning.core.novelty import Novelty

log = logging.getLogger(__name__)
NOVELTY_FILE = "novelty.json"


class NoveltyCalibration(L.Callback):
    def __init__(self, output_dir: str, fpr: float = 0.01, batch_rows: int = 4096):
        if not 0 < fpr < 1:
            raise ValueError(f"novelty.fpr must lie strictly between 0 and 1, not {fpr}")
        self.output_dir, self.fpr, self.batch_rows = Path(output_dir), fpr, batch_rows
        self.summary: dict = {}
        self._tested: list[torch.Tensor] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._tested = []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._tested.append(outputs.cpu())  # the test pass's probabilities: no second pass over test

    @torch.no_grad()
    def _probabilities(self, pl_module, x) -> np.ndarray:
        pl_module.eval()
        parts = [
            pl_module.probabilities(pl_module.net(x[i : i + self.batch_rows].to(pl_module.device))).cpu()
            for i in range(0, len(x), self.batch_rows)
        ]
        return torch.cat(parts).numpy()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "unseen_type_scores") or not self._tested:
            return
        benign = [i for i, name in enumerate(datamodule.class_names) if datamodule.spec.is_benign(name)]
        x_val, y_val = datamodule.tensors["val"]
        val_probabilities = self._probabilities(pl_module, x_val)
        benign_val = np.isin(y_val.cpu().numpy(), benign)
        if not benign_val.any():
            log.warning("no benign validation rows: novelty threshold not calibrated")
            return
        novelty = Novelty.calibrate(val_probabilities[benign_val], self.fpr)
        novelty.save(self.output_dir / NOVELTY_FILE)
        probabilities = torch.cat(self._tested).numpy()  # the rows tested (all, unless the test was limited)
        unknown = novelty.flags(probabilities)
        predicted = probabilities.argmax(1)
        y = datamodule.tensors["test"][1].cpu().numpy()[: len(probabilities)]
        benign_test = np.isin(y, benign)
        self.summary = {
            "novelty/score": novelty.score,
            "novelty/fpr": self.fpr,
            "novelty/threshold": novelty.threshold,
            "val/novelty/benign_flagged": float(novelty.flags(val_probabilities[benign_val]).mean()),
            "test/novelty/benign_flagged": float(unknown[benign_test].mean()) if benign_test.any() else None,
        }
        # flagged: called an attack class, or unknown
        flagged = datamodule.unseen_type_scores(np.where(unknown & np.isin(predicted, benign), -1, predicted))
        called = datamodule.unseen_type_scores(predicted)
        for group in ("novel", "known"):
            if f"test/{group}_types/detected" in flagged:
                detected, caught = called[f"test/{group}_types/detected"], flagged[f"test/{group}_types/detected"]
                self.summary[f"test/{group}_types/flagged"] = caught
                # of those the classifier calls benign, the share the unknown flag catches
                self.summary[f"test/{group}_types/missed_flagged_unknown"] = (
                    (caught - detected) / (1 - detected) if detected < 1 else None
                )
        log.info(
            "novelty threshold %.4f (%.1f%% of benign validation rows flagged); test: %s",
            novelty.threshold,
            100 * self.summary["val/novelty/benign_flagged"],
            ", ".join(f"{k} {v:.3f}" for k, v in self.summary.items() if k.startswith("test/") and v is not None),
        )
