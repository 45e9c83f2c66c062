"""A novelty score with a threshold calibrated on validation: "the model has not seen this".

The score is the max-softmax novelty, ``1 - max class probability`` (Hendrycks & Gimpel 2017):
it needs only the model's probabilities, so the ONNX model and the torch-free detector compute
it alike. Its threshold is the ``1 - fpr`` quantile of the scores of validation rows of benign
classes: on validation, at most ``fpr`` of benign traffic is flagged. Stored as plain JSON
(``novelty.json``) beside the model; never fitted on test rows.

Two other scores are measured beside it in every run (:mod:`ids_lightning.training.callbacks.novelty`),
to compare, not deployed: the energy score ``-logsumexp(logits)`` (Liu et al. 2020) and a
feature-space score, the Mahalanobis distance of the penultimate layer's activations to the
nearest training class mean under one shared covariance (Lee et al. 2018).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import DataError, PreprocessStateError
from ids_lightning.core.fileio import atomic_write_json, read_json_state
from ids_lightning.core.formats import check_format

SCORE = "max_softmax"
FORMAT = 1  # novelty.json's format (none before 2026-12-05: format 0, the same fields)


def novelty_scores(probabilities: np.ndarray) -> np.ndarray:
    return 1.0 - np.asarray(probabilities).max(axis=1)


def energy_scores(logits: np.ndarray) -> np.ndarray:
    """``-logsumexp`` of the logits (one logit when binary: the other class's is 0); higher is
    more novel."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[1] == 1:
        logits = np.concatenate([np.zeros_like(logits), logits], axis=1)
    top = logits.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(logits - top).sum(axis=1)))


def threshold_at(benign_scores: np.ndarray, fpr: float) -> float:
    """The score above which at most ``fpr`` of ``benign_scores`` lie."""
    if not 0 < fpr < 1:
        raise ValueError(f"novelty.fpr must lie strictly between 0 and 1, not {fpr}")
    if len(benign_scores) == 0:
        raise ValueError("no benign validation rows to calibrate the novelty threshold on")
    return float(np.quantile(benign_scores, 1 - fpr, method="higher"))


@dataclass(frozen=True)
class Mahalanobis:
    """Class means of training activations and the inverse of their shared (tied) covariance;
    a row's score is its squared distance to the nearest class mean."""

    means: np.ndarray  # [classes seen in training, dims]
    precision: np.ndarray  # [dims, dims]

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, ridge: float = 1e-6) -> Mahalanobis:
        features = np.asarray(features, dtype=np.float64)
        classes = np.unique(labels)
        means = np.stack([features[labels == c].mean(axis=0) for c in classes])
        centred = features - means[np.searchsorted(classes, labels)]
        covariance = centred.T @ centred / max(len(features) - len(classes), 1)
        # a small ridge keeps dead units (ReLU activations that are always 0) invertible
        covariance += ridge * max(np.trace(covariance) / len(covariance), 1e-12) * np.eye(len(covariance))
        return cls(means, np.linalg.inv(covariance))

    def scores(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        projected = features @ self.precision
        squared = (
            (projected * features).sum(axis=1)[:, None]
            - 2 * projected @ self.means.T
            + ((self.means @ self.precision) * self.means).sum(axis=1)[None, :]
        )
        return np.maximum(squared.min(axis=1), 0.0)


@dataclass(frozen=True)
class Novelty:
    """A calibrated threshold: a record whose score exceeds it is flagged as unknown."""

    threshold: float
    fpr: float
    calibration_rows: int
    score: str = SCORE

    @classmethod
    def calibrate(cls, benign_probabilities: np.ndarray, fpr: float) -> Novelty:
        scores = novelty_scores(benign_probabilities)
        return cls(threshold_at(scores, fpr), fpr, len(scores))

    def flags(self, probabilities: np.ndarray) -> np.ndarray:
        return novelty_scores(probabilities) > self.threshold

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, {"format": FORMAT, **asdict(self)})

    @classmethod
    def load(cls, path: str | Path) -> Novelty:
        try:
            state = read_json_state(path)
            check_format(state, path, FORMAT)  # 0 (no key): the same fields, written before numbering
            novelty = cls(
                float(state["threshold"]), float(state["fpr"]), int(state["calibration_rows"]), str(state["score"])
            )
        except DataError:  # a folder, a link to nothing, a file too big: it says so itself
            raise
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise PreprocessStateError(f"{path}: not a novelty state ({type(err).__name__}: {err})") from err
        if novelty.score != SCORE or not (0 <= novelty.threshold <= 1 and 0 < novelty.fpr < 1):
            raise PreprocessStateError(f"{path}: not a {SCORE} novelty state this project wrote")
        return novelty
