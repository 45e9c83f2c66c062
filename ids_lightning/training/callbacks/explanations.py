"""What the run relies on, written at test end with the occlusion the sensor explains alerts
with (:mod:`ids_lightning.core.explain`):

- ``explain.json``: the reference flow (a typical benign training flow) the sensor occludes
  against;
- ``importance.json`` and ``importance.png`` (also in TensorBoard): per class, the mean
  contribution of each feature to that class's probability over up to ``rows_per_class`` test
  rows of the class, and its top features;
- a shortcut check: per capture of the validation and test rows (datasets with captures), each
  feature's share of the attributions; a feature holding at least ``dominant`` of one capture's
  and under ``elsewhere`` of every other's is listed as a possible shortcut (a port or protocol
  only one capture uses), and warned about.

A smoke or limited test (``fast_dev_run``, ``limit_test_batches`` below all) explains at most
:data:`LIMITED_ROWS` rows per class and capture: the run only checks that everything works.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import matplotlib.pyplot as plt
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from ids_lightning.core.explain import Explainer, features_of, reference_row, save_reference
from ids_lightning.core.fileio import atomic_path, atomic_write_json
from ids_lightning.evaluation.plots import importance_figure
from ids_lightning.models.batches import WindowedFeatures
from ids_lightning.models.nets import to_probabilities

log = logging.getLogger(__name__)
IMPORTANCE_FILE = "importance.json"
TOP = 5
MIN_CAPTURE_ROWS = 50
LIMITED_ROWS = 50


class Explanations(L.Callback):
    def __init__(
        self,
        output_dir: str,
        rows_per_class: int = 200,
        reference_rows: int = 20_000,
        capture_rows: int = 100,
        dominant: float = 0.5,
        elsewhere: float = 0.1,
        seed: int = 0,
    ):
        self.output_dir = Path(output_dir)
        self.rows_per_class, self.reference_rows, self.capture_rows = rows_per_class, reference_rows, capture_rows
        self.dominant, self.elsewhere, self.seed = dominant, elsewhere, seed
        self.summary: dict = {}

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if not trainer.is_global_zero or datamodule is None or "test" not in datamodule.tensors:
            return
        pre, spec = datamodule.preprocessor, datamodule.spec
        limited = bool(trainer.fast_dev_run) or trainer.limit_test_batches != 1.0
        per_class = min(self.rows_per_class, LIMITED_ROWS) if limited else self.rows_per_class
        per_capture = min(self.capture_rows, LIMITED_ROWS) if limited else self.capture_rows
        benign = [i for i, name in enumerate(pre.class_names) if spec.is_benign(name)]
        x_train, y_train = datamodule.train_sample(self.reference_rows, seed=self.seed)
        flows = x_train.current_flows() if isinstance(x_train, WindowedFeatures) else x_train
        benign_rows = np.isin(y_train.cpu().numpy(), benign)
        if not benign_rows.any():
            log.warning("no benign training rows: no reference flow, so no explanations")
            return
        reference = reference_row(pre, flows.cpu().numpy()[benign_rows])
        save_reference(self.output_dir, reference, int(benign_rows.sum()))
        explainer = Explainer(features_of(pre, spec.feature_groups), reference, pre.window)
        score = _scorer(pl_module)
        rng = np.random.default_rng(self.seed)
        x_test, y_test = datamodule.tensors["test"]
        y_test = y_test.cpu().numpy()
        importance = {
            "method": "occlusion against the reference flow of explain.json (contribution to the class's probability)",
            "features": [f.name for f in explainer.features],
            "classes": {},
        }
        for c, name in enumerate(pre.class_names):
            rows = np.flatnonzero(y_test == c)
            rows = np.sort(rng.permutation(rows)[:per_class])
            contributions = (
                explainer.attribute(score, _rows(x_test, rows), np.full(len(rows), c)).features
                if len(rows)
                else np.zeros((0, len(explainer.features)))
            )
            mean = contributions.mean(axis=0) if len(rows) else np.zeros(len(explainer.features))
            ranked = np.argsort(-mean, kind="stable")[:TOP]
            importance["classes"][name] = {
                "rows": len(rows),
                "mean_contribution": {f.name: round(float(v), 6) for f, v in zip(explainer.features, mean)},
                "top": [explainer.features[g].name for g in ranked if mean[g] > 0],
            }
        shares = self._capture_shares(datamodule, explainer, score, rng, per_capture)
        names = [f.name for f in explainer.features]
        importance["captures"] = {
            capture: {names[g]: round(float(share[g]), 4) for g in np.argsort(-share, kind="stable")[:3]}
            for capture, share in shares.items()
        }
        importance["possible_shortcuts"] = self._shortcuts(shares, names)
        atomic_write_json(self.output_dir / IMPORTANCE_FILE, importance)
        fig = importance_figure(importance)
        with atomic_path(self.output_dir / "importance.png") as tmp:
            fig.savefig(tmp, dpi=120)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure("test/importance", fig, global_step=trainer.global_step)
        plt.close(fig)
        for shortcut in importance["possible_shortcuts"]:
            log.warning(
                "possible shortcut: %s holds %.0f%% of the attributions on capture %s and at most %.0f%% elsewhere",
                shortcut["feature"], 100 * shortcut["share"], shortcut["capture"], 100 * shortcut["share_elsewhere"],
            )  # fmt: skip
        self.summary = {"importance/possible_shortcuts": len(importance["possible_shortcuts"])}

    def _capture_shares(self, datamodule, explainer: Explainer, score, rng, rows_each: int) -> dict[str, np.ndarray]:
        """Per capture of the validation and test rows: each feature's share of the absolute
        attributions to the predicted class."""
        shares: dict[str, np.ndarray] = {}
        for stage, captures in datamodule.partitions.items():
            x = datamodule.tensors[stage][0]
            for capture in sorted(set(captures.tolist()), key=str):
                rows = np.flatnonzero(captures == capture)
                if len(rows) < MIN_CAPTURE_ROWS or str(capture) in shares:
                    continue
                rows = np.sort(rng.permutation(rows)[:rows_each])
                inputs = _rows(x, rows)
                probabilities = score(inputs)
                attribution = explainer.attribute(score, inputs, probabilities.argmax(axis=1), probabilities)
                weight = np.abs(attribution.features).mean(axis=0)
                shares[str(capture)] = weight / weight.sum() if weight.sum() > 0 else weight
        return shares

    def _shortcuts(self, shares: dict[str, np.ndarray], names: list[str]) -> list[dict]:
        """Features that dominate the attributions of one capture only."""
        found = []
        for capture, share in shares.items():
            others = [s for c, s in shares.items() if c != capture]
            if not others:
                break
            elsewhere = np.max(others, axis=0)
            for g in np.flatnonzero((share >= self.dominant) & (elsewhere < self.elsewhere)):
                share_elsewhere = round(float(elsewhere[g]), 4)
                found.append({"feature": names[g], "capture": capture, "share": round(float(share[g]), 4),
                              "share_elsewhere": share_elsewhere})  # fmt: skip
        return found


def _rows(x, rows: np.ndarray) -> np.ndarray:
    """Samples ``rows`` of a split as a numpy array (windows gathered)."""
    return x[torch.as_tensor(rows, device=x.device)].float().cpu().numpy()


def _scorer(pl_module: L.LightningModule):
    """Rows (numpy) to class probabilities (numpy) with the module's net, in batches."""

    @torch.no_grad()
    def score(inputs: np.ndarray, batch_rows: int = 8192) -> np.ndarray:
        pl_module.eval()
        parts = []
        for i in range(0, len(inputs), batch_rows):
            logits = pl_module.net(torch.from_numpy(inputs[i : i + batch_rows]).to(pl_module.device))
            parts.append(to_probabilities(logits, pl_module.binary).float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, len(pl_module.class_names)), dtype=np.float32)

    return score
