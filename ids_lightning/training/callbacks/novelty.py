"""Calibrate the novelty threshold on validation and score it on the test set.

At test end (the tested checkpoint loaded) the validation rows of benign classes give the
threshold at ``fpr`` (:mod:`ids_lightning.core.novelty`), saved as ``novelty.json`` in the run
folder for the detector, and the attack-score thresholds of the sensor's operating points
(``operating_points.json``, :mod:`ids_lightning.core.operating`). ``metrics.json`` gets the
threshold, the benign false-alarm rate of the unknown flag on the test set, and the share of
test attacks of types training never saw that are flagged, as an attack class or as unknown,
beside the same for the seen types.

One-flow runs also get the benign density (:mod:`ids_lightning.core.density`, fitted on up to
``fit_rows`` benign training rows, calibrated on benign validation rows at ``fpr``), saved as
``density.json``: the detector flags a flow the classifier calls benign as unknown when the
density finds it unlike benign traffic.

The deployed scores (max-softmax, the benign density) are compared with the energy score, a
feature-space score (Mahalanobis distance on the penultimate layer, fitted on up to
``fit_rows`` training rows), two other models of benign traffic only (an isolation forest on
the inputs, a benign-only mixture on the penultimate layer) and, for TabM, the members'
disagreement (mutual information of their predictions), each calibrated the same way:
``test/novelty/<score>/...`` (benign false alarms, novel attack types flagged, the share of
the novel attacks called benign that the flag catches, and the threshold-free ROC-AUC of novel
attacks against benign rows)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn

from ids_lightning.core import operating
from ids_lightning.core.density import DENSITY_FILE, BenignDensity, kmeans
from ids_lightning.core.novelty import Mahalanobis, Novelty, energy_scores, novelty_scores, threshold_at
from ids_lightning.evaluation.unseen import novel_type_rows, unseen_scores_of
from ids_lightning.models.nets import to_probabilities
from ids_lightning.models.tabular import member_logits

log = logging.getLogger(__name__)
NOVELTY_FILE = "novelty.json"
LIMITED_FIT_ROWS = 2000  # benign rows the benign models fit on in a smoke or limited test
# the scores compared in every run; the benign ones model benign traffic only (one-flow runs),
# member_spread is TabM's (the members' disagreement)
COMPARED = (
    "max_softmax",
    "energy",
    "mahalanobis",
    "benign_density",
    "isolation_forest",
    "benign_penultimate",
    "member_spread",
)


@dataclass
class BenignFit:
    """The benign density of a one-flow run and what it was fitted and scored on, computed once
    for the deployed flag and the comparison: the benign training rows drawn (indices and
    inputs), and the density's scores of the validation and test rows."""

    rows: np.ndarray
    sample: np.ndarray
    density: BenignDensity
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # stage -> scores


def _last_layer(net: nn.Module) -> nn.Module | None:
    """The head's final linear layer: its input is the penultimate activation."""
    head = getattr(net, "head", None)
    last = head[-1] if isinstance(head, nn.Sequential) and len(head) else None
    return last if isinstance(last, nn.Linear) else None


def _stacked(captured: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-batch (penultimate, logits) pairs as two arrays over all rows."""
    features, logits = (torch.cat(part).float().numpy() for part in zip(*captured))
    return features, logits


class NoveltyCalibration(L.Callback):
    def __init__(
        self,
        output_dir: str,
        fpr: float = 0.01,
        batch_rows: int = 4096,
        fit_rows: int = 20_000,
        incident_seconds: float = operating.INCIDENT_SECONDS,
        incident_budget: float = operating.INCIDENT_BUDGET,
    ):
        if not 0 < fpr < 1:
            raise ValueError(f"novelty.fpr must lie strictly between 0 and 1, not {fpr}")
        if not incident_seconds > 0 or not incident_budget >= 0:
            raise ValueError(
                f"callbacks.novelty.incident_seconds must be positive and incident_budget at least 0, "
                f"not {incident_seconds} and {incident_budget}"
            )
        self.output_dir, self.fpr, self.batch_rows, self.fit_rows = Path(output_dir), fpr, batch_rows, fit_rows
        self.incident_seconds, self.incident_budget = float(incident_seconds), float(incident_budget)
        self.summary: dict = {}
        self._tested: list[torch.Tensor] = []
        self._captured: list[tuple[torch.Tensor, torch.Tensor]] = []  # (penultimate, logits) per forward
        self._test_captured: list[tuple[torch.Tensor, torch.Tensor]] = []  # per test batch
        self._hook = None
        self._benign_rows = fit_rows

    def _capture(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        self._captured.append((inputs[0].detach().cpu(), output.detach().cpu()))

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._tested, self._captured, self._test_captured = [], [], []

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        last = _last_layer(pl_module.net)
        if last is not None:  # the test pass's own activations: no second pass over the test set
            self._hook = last.register_forward_hook(self._capture)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._tested.append(outputs.cpu())  # the test pass's probabilities: no second pass over test
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
            self._test_captured.append(self._captured[-1])
        self._captured = []

    def _test_activations(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(penultimate, logits) of the rows tested, when the net has a linear head."""
        if len(self._test_captured) != len(self._tested):
            return None
        return _stacked(self._test_captured)

    @torch.no_grad()
    def _forward(self, pl_module, x) -> tuple[np.ndarray, np.ndarray]:
        """(penultimate, logits) of rows ``x`` (the penultimate empty without a linear head)."""
        pl_module.eval()
        last = _last_layer(pl_module.net)
        hook = last.register_forward_hook(self._capture) if last is not None else None
        try:
            for i in range(0, len(x), self.batch_rows):
                logits = pl_module.net(x[i : i + self.batch_rows].to(pl_module.device))
                if hook is None:
                    self._captured.append((torch.zeros(len(logits), 0), logits.cpu()))
        finally:
            if hook is not None:
                hook.remove()
        stacked, self._captured = _stacked(self._captured), []
        return stacked

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        limited = bool(trainer.fast_dev_run) or trainer.limit_test_batches != 1.0  # a smoke test: fewer rows
        self._benign_rows = min(self.fit_rows, LIMITED_FIT_ROWS) if limited else self.fit_rows
        datamodule = trainer.datamodule
        tested = self._test_activations()
        if datamodule is None or not self._tested:
            return
        benign = [i for i, name in enumerate(datamodule.class_names) if datamodule.spec.is_benign(name)]
        x_val, y_val = datamodule.tensors["val"]
        val_features, val_logits = self._forward(pl_module, x_val)
        val_probabilities = to_probabilities(torch.from_numpy(val_logits), pl_module.binary).numpy()
        benign_val = np.isin(y_val.cpu().numpy(), benign)
        if not benign_val.any():
            log.warning("no benign validation rows: novelty threshold not calibrated")
            return
        novelty = Novelty.calibrate(val_probabilities[benign_val], self.fpr)
        novelty.save(self.output_dir / NOVELTY_FILE)
        benign_fit = self._benign_fit(datamodule, benign, x_val, benign_val)
        attack_scores = operating.attack_scores(val_probabilities, benign)
        points = operating.calibrate(attack_scores, benign_val)
        flows = getattr(datamodule, "host_flows", {})
        if "val" in flows:
            self._incident_thresholds(points, attack_scores, novelty.flags(val_probabilities), benign_val, flows["val"])
        operating.save(points, self.output_dir)  # the sensor's --fpr: thresholds from validation rows only
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
        for point in points["points"]:
            self.summary[f"val/operating/fpr_{point['fpr']}/detection_rate"] = point["detection_rate"]
        if "test" in flows:
            self.summary |= self._incident_metrics(points, probabilities, unknown, benign, y, flows["test"])
        # flagged: called an attack class, or unknown
        flagged = unseen_scores_of(datamodule, np.where(unknown & np.isin(predicted, benign), -1, predicted))
        called = unseen_scores_of(datamodule, predicted)
        for group in ("novel", "known"):
            if f"test/{group}_types/detected" in flagged:
                detected, caught = called[f"test/{group}_types/detected"], flagged[f"test/{group}_types/detected"]
                self.summary[f"test/{group}_types/flagged"] = caught
                # of those the classifier calls benign, the share the unknown flag catches
                self.summary[f"test/{group}_types/missed_flagged_unknown"] = (
                    (caught - detected) / (1 - detected) if detected < 1 else None
                )
        if benign_fit is not None:
            benign_fit.scores["test"] = benign_fit.density.scores(_rows(datamodule.tensors["test"][0][: len(y)]))
            self.summary |= self._fused(datamodule, benign_fit, novelty, benign, (val_probabilities, benign_val),
                                        (probabilities, unknown, benign_test), called)  # fmt: skip
        if tested is None:  # a net without a linear head (TabM): the test rows' logits, without activations
            tested = self._forward(pl_module, datamodule.tensors["test"][0][: len(probabilities)])
        if len(tested[1]) == len(probabilities):
            self.summary |= self._compare(
                pl_module, datamodule, (val_features, val_logits), tested, benign_val, y, benign, benign_fit
            )
        log.info(
            "novelty threshold %.4f (%.1f%% of benign validation rows flagged); test: %s",
            novelty.threshold,
            100 * self.summary["val/novelty/benign_flagged"],
            ", ".join(
                f"{k} {v:.3f}"
                for k, v in self.summary.items()
                if k.startswith("test/") and k.count("/") == 2 and v is not None
            ),
        )

    def _incident_thresholds(self, points: dict, scores, unknown, benign_val, flows) -> None:
        """Each operating point's incident threshold, calibrated on the validation captures'
        hosts (in place)."""
        for point in points["points"]:
            alerts = (scores > point["threshold"]) | unknown  # the sensor's alert: past the point, or novel
            point["incidents"] = operating.calibrate_incidents(
                alerts, ~benign_val, flows, self.incident_seconds, self.incident_budget
            )

    def _incident_metrics(self, points: dict, probabilities, unknown, benign, y, flows) -> dict:
        """The default point's calibrated incident threshold, and host-level detection on the
        test captures at that point and threshold, replayed on the tested rows: what ``ids
        detect`` would report on them (docs/sensor.md)."""
        point = next(p for p in points["points"] if p["fpr"] == operating.DEFAULT_RATE)
        calibrated = point.get("incidents") or {}
        needed = calibrated.get("alerts", operating.DEFAULT_INCIDENT_ALERTS)
        replay = operating.IncidentReplay(flows.head(len(probabilities)), self.incident_seconds)
        alerts = (operating.attack_scores(probabilities, benign) > point["threshold"]) | unknown
        outcome = replay.outcome(alerts, ~np.isin(y, benign), needed)
        infected = outcome["infected_hosts"]
        return {
            "val/incidents/alerts_needed": calibrated.get("alerts"),
            "val/incidents/false_incidents_per_host_day": calibrated.get("false_incidents_per_host_day"),
            "val/incidents/host_days": calibrated.get("host_days"),
            "test/incidents/incidents": outcome["incidents"],
            "test/incidents/false_incidents_per_host_day": outcome["false_incidents_per_host_day"],
            "test/incidents/infected_hosts": infected,
            "test/incidents/infected_detected": outcome["infected_detected"] / infected if infected else None,
            "test/incidents/time_to_detect_median_s": outcome["time_to_detect_median_s"],
            "test/incidents/time_to_detect_max_s": outcome["time_to_detect_max_s"],
        }

    def _fused(self, datamodule, benign_fit: BenignFit, novelty: Novelty, benign, val: tuple, test: tuple,
               called: dict) -> dict:  # fmt: skip
        """The deployed unknown flag with the benign density: max-softmax past its threshold, or
        called benign and unlike benign traffic. Its benign false alarms on validation and test,
        and the novel attack types it flags."""
        (val_probabilities, benign_val), (probabilities, unknown, benign_test) = val, test
        threshold = benign_fit.density.threshold
        val_fused = novelty.flags(val_probabilities) | (
            (benign_fit.scores["val"] > threshold) & np.isin(val_probabilities.argmax(1), benign)
        )
        predicted = probabilities.argmax(1)
        fused = unknown | ((benign_fit.scores["test"] > threshold) & np.isin(predicted, benign))
        out = {
            "density/threshold": threshold,
            "val/novelty/fused/benign_flagged": float(val_fused[benign_val].mean()),
            "test/novelty/fused/benign_flagged": float(fused[benign_test].mean()) if benign_test.any() else None,
        }
        flagged = unseen_scores_of(datamodule, np.where(fused & np.isin(predicted, benign), -1, predicted))
        if "test/novel_types/detected" in flagged:
            detected, caught = called["test/novel_types/detected"], flagged["test/novel_types/detected"]
            out["test/novel_types/flagged_fused"] = caught
            out["test/novel_types/missed_flagged_unknown_fused"] = (
                (caught - detected) / (1 - detected) if detected < 1 else None
            )
        return out

    def _benign_fit(self, datamodule, benign: list[int], x_val, benign_val) -> BenignFit | None:
        """The benign density of a one-flow run, fitted on up to ``fit_rows`` benign training rows
        (drawn with a fixed seed), scored on the validation rows and saved as density.json; None
        for windows or without benign training rows."""
        x_train, y_train = datamodule.tensors["train"]
        rows = np.flatnonzero(np.isin(y_train.cpu().numpy(), benign))
        if datamodule.preprocessor.window != 1 or not len(rows):
            return None
        rows = np.sort(np.random.default_rng(0).permutation(rows)[: self._benign_rows])
        sample, validation = _rows(x_train[torch.from_numpy(rows)]), _rows(x_val)
        density = BenignDensity.fit(sample, validation[benign_val], self.fpr)
        density.save(self.output_dir / DENSITY_FILE)
        return BenignFit(rows, sample, density, {"val": density.scores(validation)})

    @torch.no_grad()
    def _member_spread(self, pl_module, x) -> np.ndarray:
        """TabM's members' disagreement per row: the mutual information between the prediction
        and the member (entropy of the mean minus the mean entropy)."""
        pl_module.eval()
        spread = []
        for i in range(0, len(x), self.batch_rows):
            members = member_logits(pl_module.net, x[i : i + self.batch_rows].to(pl_module.device)).float()
            p = torch.sigmoid(members) if pl_module.binary else members.softmax(-1)
            p = torch.cat([1 - p, p], dim=-1) if pl_module.binary else p
            entropy = -(p * p.clamp_min(1e-12).log()).sum(-1)  # [batch, members]
            mean = p.mean(1)
            spread.append((-(mean * mean.clamp_min(1e-12).log()).sum(-1) - entropy.mean(1)).cpu())
        return torch.cat(spread).numpy()

    def _benign_scores(self, pl_module, datamodule, val: tuple, test: tuple, benign_fit: BenignFit | None) -> dict:
        """The models of benign traffic only, on validation and test rows: the deployed density,
        an isolation forest on the inputs, a benign-only mixture on the penultimate layer, all
        on the benign training rows the density was fitted on."""
        from sklearn.ensemble import IsolationForest

        if benign_fit is None:
            return {}
        x_val = _rows(datamodule.tensors["val"][0])
        x_test = _rows(datamodule.tensors["test"][0][: len(test[1])])
        forest = IsolationForest(n_estimators=200, random_state=0).fit(benign_fit.sample)
        scores = {
            "benign_density": [benign_fit.scores["val"], benign_fit.scores["test"]],
            "isolation_forest": [-forest.score_samples(x_val), -forest.score_samples(x_test)],
        }
        if val[0].shape[1]:
            x_train = datamodule.tensors["train"][0]
            features, _ = self._forward(pl_module, x_train[torch.from_numpy(benign_fit.rows)])
            penultimate = Mahalanobis.fit(features, kmeans(features, 16))
            scores["benign_penultimate"] = [penultimate.scores(val[0]), penultimate.scores(test[0])]
        return scores

    def _compare(self, pl_module, datamodule, val: tuple, test: tuple, benign_val, y_test, benign, benign_fit):
        """Each compared score, calibrated on benign validation rows at ``fpr``, on the test rows."""
        from sklearn.metrics import roc_auc_score

        (val_features, val_logits), (test_features, test_logits) = val, test
        scores = {
            "max_softmax": [
                novelty_scores(to_probabilities(torch.from_numpy(z), pl_module.binary).numpy())
                for z in (val_logits, test_logits)
            ],
            "energy": [energy_scores(val_logits), energy_scores(test_logits)],
        }
        if val_features.shape[1]:
            x_train, y_train = datamodule.tensors["train"]
            rows = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(0))[: self.fit_rows]
            train_features, _ = self._forward(pl_module, x_train[rows])
            density = Mahalanobis.fit(train_features, y_train[rows].cpu().numpy())
            scores["mahalanobis"] = [density.scores(val_features), density.scores(test_features)]
        scores |= self._benign_scores(pl_module, datamodule, val, test, benign_fit)
        if hasattr(pl_module.net, "member_logits"):
            x_val, x_test = datamodule.tensors["val"][0], datamodule.tensors["test"][0][: len(y_test)]
            scores["member_spread"] = [self._member_spread(pl_module, x_val), self._member_spread(pl_module, x_test)]
        predicted = test_logits.argmax(1) if not pl_module.binary else (test_logits[:, 0] > 0).astype(int)
        called_benign = np.isin(predicted, benign)
        benign_test = np.isin(y_test, benign)
        novel = novel_type_rows(datamodule.spec, datamodule.test_types, len(y_test))
        novel = novel if novel is not None and novel.any() else None
        out = {}
        for name, (val_scores, test_scores) in scores.items():
            unknown = test_scores > threshold_at(val_scores[benign_val], self.fpr)
            prefix = f"test/novelty/{name}"
            out[f"{prefix}/benign_flagged"] = float(unknown[benign_test].mean()) if benign_test.any() else None
            if novel is None:
                continue
            out[f"{prefix}/novel_types_flagged"] = float((~called_benign | unknown)[novel].mean())
            missed = novel & called_benign
            out[f"{prefix}/novel_missed_flagged_unknown"] = float(unknown[missed].mean()) if missed.any() else None
            both = novel | benign_test
            out[f"{prefix}/auroc_novel_vs_benign"] = float(roc_auc_score(novel[both], test_scores[both]))
        return out


def _rows(x) -> np.ndarray:
    """One-flow model inputs as a float64 array."""
    return np.asarray(x.numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
