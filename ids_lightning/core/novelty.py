"""A novelty score with a threshold calibrated on validation: "the model has not seen this".

The score is the max-softmax novelty, ``1 - max class probability`` (Hendrycks & Gimpel 2017):
it needs only the model's probabilities, so the ONNX model and the torch-free detector compute
it alike. Its threshold is the ``1 - fpr`` quantile of the scores of validation rows of benign
classes: on validation, at most ``fpr`` of benign traffic is flagged. Stored as plain JSON
(``novelty.json``) beside the model; never fitted on test rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import PreprocessStateError
from ids_lightning.core.fileio import atomic_write_json

SCORE = "max_softmax"


def novelty_scores(probabilities: np.ndarray) -> np.ndarray:
    return 1.0 - np.asarray(probabilities).max(axis=1)


@dataclass(frozen=True)
class Novelty:
    """A calibrated threshold: a record whose score exceeds it is flagged as unknown."""

    threshold: float
    fpr: float
    calibration_rows: int
    score: str = SCORE

    @classmethod
    def calibrate(cls, benign_probabilities: np.ndarray, fpr: float) -> Novelty:
        if not 0 < fpr < 1:
            raise ValueError(f"novelty.fpr must lie strictly between 0 and 1, not {fpr}")
        scores = novelty_scores(benign_probabilities)
        if len(scores) == 0:
            raise ValueError("no benign validation rows to calibrate the novelty threshold on")
        return cls(float(np.quantile(scores, 1 - fpr, method="higher")), fpr, len(scores))

    def flags(self, probabilities: np.ndarray) -> np.ndarray:
        return novelty_scores(probabilities) > self.threshold

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> Novelty:
        try:
            state = json.loads(Path(path).read_text(encoding="utf-8"))
            novelty = cls(
                float(state["threshold"]), float(state["fpr"]), int(state["calibration_rows"]), str(state["score"])
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise PreprocessStateError(f"{path}: not a novelty state ({type(err).__name__}: {err})") from err
        if novelty.score != SCORE or not (0 <= novelty.threshold <= 1 and 0 < novelty.fpr < 1):
            raise PreprocessStateError(f"{path}: not a {SCORE} novelty state this project wrote")
        return novelty
