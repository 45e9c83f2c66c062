"""Balancing on the real NSL-KDD splits touches only the training split."""

from __future__ import annotations

import pytest

from tests.helpers import datamodule


@pytest.mark.parametrize("method", ["smote_under", "under", "class_weight"])
def test_balancing_touches_only_the_training_split(data_dir, method):
    plain = datamodule("nsl_kdd", data_dir)
    dm = datamodule("nsl_kdd", data_dir, balance=method)
    for stage in ("val", "test"):
        assert all(a.equal(b) for a, b in zip(dm.tensors[stage], plain.tensors[stage]))
    assert dm.stats["class_counts_before_balance"]["train"] == plain.stats["class_counts"]["train"]
    if method == "class_weight":
        assert dm.class_weights[4] > 100 * dm.class_weights[0]  # U2R is rare
    else:
        assert len(set(dm.stats["class_counts"]["train"].values())) == 1
