"""Seeded, stratified splits that never fail on rare classes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split row indices into parts with the given fractions, class by class.

    Parts after the first get ``floor(fraction * n)`` rows of each class and the first part the
    rest, so a class too rare to share stays whole in the first (training) part. Each part's
    indices come back sorted, in file order.
    """
    if not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"split fractions must sum to 1, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in sorted(set(labels.tolist())):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        sizes = [int(np.floor(f * len(rows))) for f in fractions[1:]]
        bounds = np.cumsum([len(rows) - sum(sizes), *sizes])[:-1]
        for part, chunk in zip(parts, np.split(rows, bounds)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) if p else np.empty(0, np.int64) for p in parts]
