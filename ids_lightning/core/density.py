"""A model of benign traffic only: "this flow looks like no benign flow seen in training".

The classifier's own scores (max-softmax, energy, Mahalanobis on its penultimate layer) judge a
flow by the classes it knows; an attack of a kind training never saw can sit confidently in
the benign class. The benign density looks at the flow itself: benign training rows (model
inputs, one flow each) are grouped by k-means, and a row's score is its squared Mahalanobis
distance to the nearest group's mean under the groups' shared covariance (a Gaussian mixture
with one tied covariance, scored by its nearest component). Its threshold is the ``1 - fpr``
quantile of the scores of benign validation rows. The detector flags a flow ``unknown`` when
the classifier calls it benign and its score passes the threshold.

Plain numpy, stored as JSON (``density.json``): the torch-free detector applies it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import DataError, PreprocessStateError
from ids_lightning.core.fileio import atomic_write_json, read_json_state
from ids_lightning.core.formats import check_format
from ids_lightning.core.novelty import Mahalanobis, threshold_at

DENSITY_FILE = "density.json"
FORMAT = 1
CLUSTERS = 16
ITERATIONS = 25


def kmeans(rows: np.ndarray, clusters: int, seed: int = 0, iterations: int = ITERATIONS) -> np.ndarray:
    """Each row's group (k-means++ start, Lloyd's iterations, seeded); fewer groups where
    there are fewer distinct rows."""
    rows = np.asarray(rows, dtype=np.float64)
    clusters = max(1, min(clusters, len(np.unique(rows, axis=0))))
    rng = np.random.default_rng(seed)
    centres = [rows[rng.integers(len(rows))]]
    nearest = ((rows - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, clusters):
        centres.append(rows[rng.choice(len(rows), p=nearest / nearest.sum())])
        nearest = np.minimum(nearest, ((rows - centres[-1]) ** 2).sum(axis=1))
    centres = np.stack(centres)
    for _ in range(iterations):
        distances = (rows**2).sum(1)[:, None] - 2 * rows @ centres.T + (centres**2).sum(1)[None, :]
        groups = distances.argmin(axis=1)
        moved = np.stack(
            [rows[groups == c].mean(axis=0) if (groups == c).any() else centres[c] for c in range(clusters)]
        )
        if np.allclose(moved, centres):
            break
        centres = moved
    return groups


@dataclass(frozen=True)
class BenignDensity:
    """The benign groups' means and shared precision, and the threshold calibrated on benign
    validation rows at ``fpr``."""

    density: Mahalanobis
    threshold: float
    fpr: float
    benign_rows: int

    @classmethod
    def fit(cls, benign_train: np.ndarray, benign_val: np.ndarray, fpr: float, clusters: int = CLUSTERS,
            seed: int = 0) -> BenignDensity:  # fmt: skip
        if not len(benign_train) or not len(benign_val):
            raise DataError("the benign density needs benign training and validation rows")
        density = Mahalanobis.fit(benign_train, kmeans(benign_train, clusters, seed))
        return cls(density, threshold_at(density.scores(benign_val), fpr), fpr, len(benign_train))

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.density.scores(rows)

    def flags(self, rows: np.ndarray) -> np.ndarray:
        return self.scores(rows) > self.threshold

    def save(self, path: str | Path) -> None:
        atomic_write_json(
            path,
            {
                "format": FORMAT,
                "score": "benign_density",
                "means": self.density.means.tolist(),
                "precision": self.density.precision.tolist(),
                "threshold": self.threshold,
                "fpr": self.fpr,
                "benign_rows": self.benign_rows,
            },
        )

    @classmethod
    def load(cls, path: str | Path, num_features: int) -> BenignDensity:
        """The density a run saved for inputs of ``num_features``; a newer format, other
        inputs or anything but finite numbers is refused."""
        state = read_json_state(path)
        try:
            check_format(state, path, FORMAT)
            means = np.asarray(state["means"], dtype=np.float64)
            precision = np.asarray(state["precision"], dtype=np.float64)
            loaded = cls(Mahalanobis(means, precision), float(state["threshold"]), float(state["fpr"]),
                         int(state["benign_rows"]))  # fmt: skip
        except DataError:  # a newer format says so itself
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise PreprocessStateError(f"{path}: not a benign density this project wrote ({err})") from err
        shapes_ok = means.ndim == 2 and means.shape[1] == num_features and precision.shape == (num_features,) * 2
        if not shapes_ok or not (np.isfinite(means).all() and np.isfinite(precision).all()):
            raise PreprocessStateError(f"{path}: not a benign density of {num_features} finite inputs")
        return loaded
