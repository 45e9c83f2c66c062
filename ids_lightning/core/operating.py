"""Operating points: the attack-score thresholds a run calibrates on its validation rows, one per
benign false-alarm rate, saved as ``operating_points.json`` beside the model; the sensor takes
one (``ids detect --fpr``) and never a threshold chosen on test rows.

The attack score of a flow is one minus the probability the model gives its benign classes; a
flow is an alert when its score is above the threshold. At each rate the file also says the
share of validation attacks above it (the detection rate to expect on traffic like validation's).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.fileio import atomic_write_json, read_json_state
from ids_lightning.core.novelty import threshold_at

OPERATING_POINTS_FILE = "operating_points.json"
RATES = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1)  # benign false-alarm rates calibrated
DEFAULT_RATE = 0.01
SCORE = "1 - p(benign classes)"


def attack_scores(probabilities: np.ndarray, benign: list[int]) -> np.ndarray:
    """One minus the benign classes' probability (without a benign class: the top probability)."""
    score = 1.0 - probabilities[:, benign].sum(axis=1) if benign else probabilities.max(axis=1)
    return np.clip(score, 0.0, 1.0)


def calibrate(scores: np.ndarray, benign_rows: np.ndarray) -> dict:
    """The thresholds at :data:`RATES` from validation ``scores``: the benign rows set each one,
    and the share of attack rows above it is its detection rate."""
    benign_scores, attack = scores[benign_rows], scores[~benign_rows]
    points = []
    for rate in RATES:
        threshold = threshold_at(benign_scores, rate)
        points.append(
            {
                "fpr": rate,
                "threshold": threshold,
                "validation_fpr": float((benign_scores > threshold).mean()),
                "detection_rate": float((attack > threshold).mean()) if len(attack) else None,
            }
        )
    return {"score": SCORE, "benign_rows": int(benign_rows.sum()), "attack_rows": int((~benign_rows).sum()),
            "points": points}  # fmt: skip


def save(points: dict, folder: Path) -> None:
    atomic_write_json(folder / OPERATING_POINTS_FILE, points)


def chosen_point(folder: Path, fpr: float | None) -> tuple[float | None, dict]:
    """The threshold for ``fpr`` (default :data:`DEFAULT_RATE`) from ``folder``'s file, and what
    the sensor's summary says of it; without the file no threshold: an alert is a flow whose
    predicted class is not benign."""
    path = folder / OPERATING_POINTS_FILE
    if not os.path.lexists(path):
        if fpr is not None:
            raise DataError(f"{folder}: no {OPERATING_POINTS_FILE}, so --fpr cannot be chosen (train the run again)")
        return None, {"rule": "predicted class is not benign"}
    try:
        state = read_json_state(path)
        by_rate = {float(p["fpr"]): p for p in state["points"]}
        for point in by_rate.values():
            float(point["threshold"])
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: not the operating points this project wrote ({err})") from err
    rate = DEFAULT_RATE if fpr is None else fpr
    if rate not in by_rate:
        raise ConfigError(f"--fpr {rate} is not among the run's calibrated rates {sorted(by_rate)}")
    point = by_rate[rate]
    return float(point["threshold"]), {
        "rule": "attack score above the threshold",
        "fpr": rate,
        "threshold": float(point["threshold"]),
        "expected_false_alarms_per_10000_benign": round(rate * 10_000, 1),
        "validation_detection_rate": point.get("detection_rate"),
    }
