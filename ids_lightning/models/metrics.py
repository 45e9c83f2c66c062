"""Classification metrics of every stage: the torchmetrics collection, and the macro and
per-class scores computed from a confusion matrix (training epochs, attacks, test report)."""

from __future__ import annotations

import warnings

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchmetrics.utilities import dim_zero_cat

from ids_lightning.core.metrics import per_class_scores as numpy_per_class_scores


class _MeanOverPresentClasses:
    """A per-class curve metric's macro value over the classes that occur in the targets.

    torchmetrics scores a class without positives as 0 and averages it in, which drags the
    macro value down whenever a split lacks a rare class; such a class has no curve at all.
    """

    def __init__(self, num_classes: int):
        super().__init__(num_classes, average=None)

    def compute(self) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No positive samples in targets")
            per_class = super().compute()
        present = torch.bincount(dim_zero_cat(self.target).long(), minlength=self.num_classes) > 0
        return per_class[present].mean()


class PresentClassesAUROC(_MeanOverPresentClasses, MulticlassAUROC):
    """Macro one-vs-rest ROC-AUC over the classes that occur in the targets."""


class PresentClassesAveragePrecision(_MeanOverPresentClasses, MulticlassAveragePrecision):
    """Macro one-vs-rest average precision over the classes that occur in the targets."""


def average_precision(precision: torch.Tensor, recall: torch.Tensor) -> float:
    """The area under one class's precision-recall curve as a step function (torchmetrics' and
    scikit-learn's definition): the sum over thresholds of the recall gained times the
    precision there. ``recall`` falls along the curve, as torchmetrics returns it."""
    return float(-torch.sum((recall[1:] - recall[:-1]) * precision[:-1]))


def classification_metrics(num_classes: int) -> MetricCollection:
    """The scalar metrics of every stage, fed with class probabilities ``[batch, num_classes]``."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "precision_macro": MulticlassPrecision(num_classes, average="macro"),
            "recall_macro": MulticlassRecall(num_classes, average="macro"),
            "f1_macro": MulticlassF1Score(num_classes, average="macro"),
            "auroc": PresentClassesAUROC(num_classes),
            "ap_macro": PresentClassesAveragePrecision(num_classes),
        }
    )


def macro_scores(confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy and macro precision/recall/F1 from a confusion matrix (rows = true class) on the
    training device, as tensors to log: :func:`ids_lightning.core.metrics.macro_scores`'s
    definition, kept in torch so that an epoch's scores leave the device once."""
    confusion = confusion.double()
    hits = confusion.diag()
    support, predicted = confusion.sum(1), confusion.sum(0)
    present = (support + predicted) > 0
    precision = hits / predicted.clamp(min=1)
    recall = hits / support.clamp(min=1)
    f1 = 2 * hits / (support + predicted).clamp(min=1)
    return {
        "acc": hits.sum() / confusion.sum().clamp(min=1),
        "precision_macro": precision[present].mean(),
        "recall_macro": recall[present].mean(),
        "f1_macro": f1[present].mean(),
    }


def per_class_scores(confusion: torch.Tensor) -> dict[str, list[float | None]]:
    """Recall, precision and F1 per class of a confusion matrix on any device
    (:func:`ids_lightning.core.metrics.per_class_scores`)."""
    return numpy_per_class_scores(confusion.cpu().numpy())
