"""One LightningModule for every net: loss, metrics, optimizer and the test-time report."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassROC,
)
from torchmetrics.utilities import dim_zero_cat

ROC_POINTS = 200  # enough for a smooth curve; keeps metrics and plots small
HISTORY_KEYS = ("train/loss", "train/acc", "val/loss", "val/acc", "val/f1_macro")


class PresentClassesAUROC(MulticlassAUROC):
    """Macro one-vs-rest AUROC over the classes that occur in the targets.

    torchmetrics scores a class without positives as 0 and averages it in, which drags the
    macro value down whenever a split lacks a rare class; such a class has no ROC curve at all.
    """

    def __init__(self, num_classes: int):
        super().__init__(num_classes, average=None)

    def compute(self) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No positive samples in targets")
            per_class = super().compute()
        present = torch.bincount(dim_zero_cat(self.target).long(), minlength=self.num_classes) > 0
        return per_class[present].mean()


def classification_metrics(num_classes: int) -> MetricCollection:
    """The scalar metrics of every stage, fed with class probabilities ``[batch, num_classes]``."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "precision_macro": MulticlassPrecision(num_classes, average="macro"),
            "recall_macro": MulticlassRecall(num_classes, average="macro"),
            "f1_macro": MulticlassF1Score(num_classes, average="macro"),
            "auroc": PresentClassesAUROC(num_classes),
        }
    )


class IDSLitModule(L.LightningModule):
    """Trains a plain net on flow features.

    Two classes use one logit and binary cross-entropy, more classes softmax and cross-entropy;
    metrics always see ``[batch, num_classes]`` probabilities, so one metric set serves both.
    ``optimizer`` (and ``scheduler``) are partials from the config, bound to the parameters here.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        class_names: list[str],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        monitor: str = "val/f1_macro",
    ):
        super().__init__()
        self.class_names = [str(name) for name in class_names]
        # Plain values only: checkpoints must load with torch.load(weights_only=True).
        self.save_hyperparameters({"class_names": self.class_names, "monitor": monitor}, logger=False)
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.num_classes = len(self.class_names)
        self.binary = self.num_classes == 2
        metrics = classification_metrics(self.num_classes)
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.val_f1_best = MaxMetric()
        self.test_confusion = MulticlassConfusionMatrix(self.num_classes)
        self.test_roc = MulticlassROC(self.num_classes)
        self.test_report: dict = {}
        self.history: list[dict[str, float | None]] = []
        self._last_val_epoch = -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        if self.binary:
            positive = torch.sigmoid(logits.squeeze(-1))
            return torch.stack([1 - positive, positive], dim=1)
        return logits.softmax(dim=-1)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.binary:
            return F.binary_cross_entropy_with_logits(logits.squeeze(-1), y.float())
        return F.cross_entropy(logits, y)

    def _step(
        self, batch: tuple[torch.Tensor, torch.Tensor], stage: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x)
        loss = self.loss(logits, y)
        probs = self.probabilities(logits.detach())
        getattr(self, f"{stage}_metrics").update(probs, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss, probs

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        _, probs = self._step(batch, "test")
        self.test_confusion.update(probs, batch[1])
        self.test_roc.update(probs, batch[1])

    # Metrics are computed once per epoch here rather than logged as objects on every step:
    # on two CPU cores the per-step logging cost is a sizeable share of a batch-64 step.
    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()
        logged = self.trainer.callback_metrics
        row: dict[str, float | None] = {"epoch": self.current_epoch}
        for key in HISTORY_KEYS:
            fresh = key.startswith("train/") or self._last_val_epoch == self.current_epoch
            row[key] = float(logged[key]) if fresh and key in logged else None
        self.history.append(row)

    def on_train_start(self) -> None:
        self.val_f1_best.reset()  # forget the sanity-check batches

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values)
        if not self.trainer.sanity_checking:
            self.val_f1_best.update(values["val/f1_macro"])
            self._last_val_epoch = self.current_epoch
            self.log("val/f1_macro_best", self.val_f1_best.compute())

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()
        confusion = self.test_confusion.compute().cpu()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No positive samples in targets")
            fpr, tpr, _ = self.test_roc.compute()
        self.test_confusion.reset()
        self.test_roc.reset()
        per_class = per_class_scores(confusion)
        for metric, values in per_class.items():
            for name, value in zip(self.class_names, values):
                if value is not None:
                    self.log(f"test/{metric}/{name}", value)
        self.test_report = {
            "confusion_matrix": confusion.tolist(),
            "per_class": {m: dict(zip(self.class_names, v)) for m, v in per_class.items()},
            # A class without test rows has no ROC curve.
            "roc": {
                name: {"fpr": _thin(f), "tpr": _thin(t)}
                for name, f, t, n in zip(self.class_names, fpr, tpr, confusion.sum(1))
                if n > 0
            },
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["history"] = self.history

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Resuming a fit continues the curves; testing a best checkpoint must not cut them short.
        if self._trainer is not None and self.trainer.state.fn == TrainerFn.FITTING:
            self.history = list(checkpoint.get("history", []))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.monitor},
        }


def per_class_scores(confusion: torch.Tensor) -> dict[str, list[float | None]]:
    """Recall, precision and F1 per class from a confusion matrix (rows = true class).

    A score whose denominator is zero (no such rows, or never predicted) is ``None``.
    """
    confusion = confusion.double()
    hits = confusion.diag()
    support, predicted = confusion.sum(1), confusion.sum(0)

    def ratio(num: torch.Tensor, den: torch.Tensor) -> list[float | None]:
        return [float(n / d) if d > 0 else None for n, d in zip(num, den)]

    recall, precision = ratio(hits, support), ratio(hits, predicted)
    f1 = [
        (2 * p * r / (p + r) if p + r > 0 else 0.0) if p is not None and r is not None else None
        for p, r in zip(precision, recall)
    ]
    return {"recall": recall, "precision": precision, "f1": f1}


def _thin(curve: torch.Tensor) -> list[float]:
    """At most ``ROC_POINTS`` points of a curve, keeping both ends."""
    curve = curve.detach().cpu()
    if len(curve) > ROC_POINTS:
        curve = curve[torch.linspace(0, len(curve) - 1, ROC_POINTS).round().long()]
    return [round(float(v), 6) for v in curve]
