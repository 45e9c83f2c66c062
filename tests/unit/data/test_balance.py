"""Class balancing: the training split only, SMOTE with tiny classes, class weights."""

from __future__ import annotations

import numpy as np
import pytest

from ids_lightning.data.balance import class_weights, resample


def toy(counts, seed=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    scaled = rng.random((len(y), 3)) + y[:, None]
    codes = rng.integers(0, 4, (len(y), 2))
    return scaled, codes, y


def test_smote_raises_every_class_to_the_largest_and_keeps_codes_valid():
    scaled, codes, y = toy([50, 10, 6])
    s2, c2, y2, notes = resample(scaled, codes, y, "smote", seed=1)
    assert np.bincount(y2).tolist() == [50, 50, 50] and not notes
    assert set(np.unique(c2)) <= set(np.unique(codes)) and c2.dtype == np.int64
    assert np.array_equal(s2[: len(y)], scaled)  # the original rows come first, unchanged


def test_smote_with_classes_smaller_than_k_does_not_crash_and_says_so():
    scaled, codes, y = toy([40, 3, 1])
    _, _, y2, notes = resample(scaled, codes, y, "smote", k_neighbors=5, seed=1)
    assert np.bincount(y2).tolist() == [40, 40, 1]
    assert any("one training row" in n for n in notes) and any("lowered from 5 to 2" in n for n in notes)


def test_smote_under_meets_at_the_median_and_under_at_the_minimum():
    scaled, codes, y = toy([60, 20, 8])
    assert np.bincount(resample(scaled, codes, y, "smote_under", seed=1)[2]).tolist() == [20, 20, 20]
    assert np.bincount(resample(scaled, codes, y, "under", seed=1)[2]).tolist() == [8, 8, 8]


def test_class_weights_are_balanced():
    weights = class_weights(np.array([0] * 6 + [1] * 2), 3)
    assert weights == pytest.approx([8 / 18, 8 / 6, 1.0])
