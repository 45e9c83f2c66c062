"""Class balancing of the training split (never validation or test), with imbalanced-learn.

Resampling works on scaled numbers plus category codes (see ``Preprocessor.scale``): SMOTE-NC
gives a synthetic row one real category of each categorical column instead of a blend.
"""

from __future__ import annotations

import logging

import numpy as np

from ids_lightning.core.errors import ConfigError

log = logging.getLogger(__name__)

METHODS = ("none", "class_weight", "smote", "smote_under", "under")


def class_weights(y: np.ndarray, num_classes: int) -> list[float]:
    """``n / (classes * count)`` per class (scikit-learn's "balanced"); 1 for an absent class."""
    return weights_of_counts(np.bincount(y, minlength=num_classes))


def weights_of_counts(counts: np.ndarray) -> list[float]:
    """:func:`class_weights` from the rows per class."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 1.0).tolist()


def resample(
    scaled: np.ndarray, codes: np.ndarray, y: np.ndarray, method: str, k_neighbors: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Resample the training rows; returns ``(scaled, codes, y, notes)``.

    - ``smote``: every class up to the largest class, by SMOTE(-NC).
    - ``smote_under``: classes below the median count up to it by SMOTE, then classes above it
      down to it by random undersampling.
    - ``under``: every class down to the smallest class, by random undersampling.

    A class with a single row cannot be interpolated: it is left as is. ``k_neighbors`` is
    lowered to fit the smallest class that is oversampled. Both are said in ``notes``.
    """
    if method not in METHODS:
        raise ConfigError(f"dataset.balance must be one of {METHODS}, not {method!r}")
    notes: list[str] = []
    if method in ("none", "class_weight"):
        return scaled, codes, y, notes
    from imblearn.under_sampling import RandomUnderSampler

    rows = np.hstack([scaled, codes.astype(np.float64)])
    counts = {int(c): int(n) for c, n in zip(*np.unique(y, return_counts=True))}
    if method in ("smote", "smote_under"):
        goal = max(counts.values()) if method == "smote" else int(np.median(list(counts.values())))
        rows, y = _smote(rows, y, counts, goal, scaled.shape[1], k_neighbors, seed, notes)
        if method == "smote_under":
            counts = {int(c): int(n) for c, n in zip(*np.unique(y, return_counts=True))}
            strategy = {c: min(n, goal) for c, n in counts.items()}
            rows, y = RandomUnderSampler(sampling_strategy=strategy, random_state=seed).fit_resample(rows, y)
    else:
        rows, y = RandomUnderSampler(random_state=seed).fit_resample(rows, y)
    n_numeric = scaled.shape[1]
    return rows[:, :n_numeric], np.rint(rows[:, n_numeric:]).astype(np.int64), np.asarray(y), notes


def _smote(rows, y, counts, goal, n_numeric, k_neighbors, seed, notes):
    from imblearn.over_sampling import SMOTE, SMOTENC

    below = {c: n for c, n in counts.items() if n < goal}
    single = [c for c, n in below.items() if n < 2]
    if single:
        notes.append(f"classes {single} have one training row: not oversampled")
    eligible = {c: n for c, n in below.items() if n >= 2}
    if not eligible:
        return rows, y
    k = min(k_neighbors, min(eligible.values()) - 1)
    if k < k_neighbors:
        smallest = min(eligible, key=eligible.get)
        notes.append(f"k_neighbors lowered from {k_neighbors} to {k}: class {smallest} has {eligible[smallest]} rows")
    strategy = dict.fromkeys(eligible, goal)
    categorical = list(range(n_numeric, rows.shape[1]))
    sampler = (
        SMOTENC(categorical_features=categorical, k_neighbors=k, sampling_strategy=strategy, random_state=seed)
        if categorical
        else SMOTE(k_neighbors=k, sampling_strategy=strategy, random_state=seed)
    )
    return sampler.fit_resample(rows, y)
