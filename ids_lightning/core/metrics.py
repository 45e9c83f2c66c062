"""Classification scores from a confusion matrix, in numpy: the one definition that the detector,
the baselines, the ensembles, federation and the training module's epoch scores share (the
training steps themselves use torchmetrics, which defines them alike)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]``."""
    return np.bincount(num_classes * np.asarray(y) + np.asarray(predicted), minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def macro_scores(confusion: np.ndarray) -> dict[str, float]:
    """Accuracy and macro precision/recall/F1 (rows = true class); the macro means leave out a
    class with no rows and no predictions, as torchmetrics and scikit-learn's ``labels=`` do."""
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(confusion)
    support, predicted = confusion.sum(1), confusion.sum(0)
    present = (support + predicted) > 0
    return {
        "acc": float(hits.sum() / max(confusion.sum(), 1)),
        "precision_macro": float((hits / np.maximum(predicted, 1))[present].mean()) if present.any() else 0.0,
        "recall_macro": float((hits / np.maximum(support, 1))[present].mean()) if present.any() else 0.0,
        "f1_macro": float((2 * hits / np.maximum(support + predicted, 1))[present].mean()) if present.any() else 0.0,
    }


def per_class_scores(confusion: np.ndarray) -> dict[str, list[float | None]]:
    """Recall, precision and F1 per class (rows = true class). A score whose denominator is zero
    (no such rows, or never predicted) is ``None``; F1 is ``2 hits / (rows + predicted)``, so a
    class with rows that is never predicted scores 0."""
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(confusion)
    support, predicted = confusion.sum(1), confusion.sum(0)

    def ratio(num: np.ndarray, den: np.ndarray) -> list[float | None]:
        return [float(n / d) if d > 0 else None for n, d in zip(num, den)]

    return {
        "recall": ratio(hits, support),
        "precision": ratio(hits, predicted),
        "f1": ratio(2 * hits, support + predicted),
    }
