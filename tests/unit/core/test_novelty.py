"""The novelty threshold: calibrated on benign validation rows to a false-alarm rate, plain JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ids_lightning.core.errors import PreprocessStateError
from ids_lightning.core.novelty import Mahalanobis, Novelty, energy_scores, novelty_scores


@pytest.mark.parametrize("fpr", [0.01, 0.05, 0.2])
def test_the_threshold_flags_at_most_fpr_of_the_calibration_rows(fpr):
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet([5, 1, 1], size=5000)
    novelty = Novelty.calibrate(probabilities, fpr)
    flagged = novelty.flags(probabilities).mean()
    assert fpr - 0.005 <= flagged <= fpr
    assert novelty_scores(np.array([[0.9, 0.1], [0.5, 0.5]])).tolist() == pytest.approx([0.1, 0.5])


def test_novelty_state_round_trips_and_hostile_files_are_refused(tmp_path):
    novelty = Novelty.calibrate(np.eye(3)[[0, 1, 2, 0]] * 0.8 + 0.0667, 0.1)
    novelty.save(tmp_path / "novelty.json")
    assert Novelty.load(tmp_path / "novelty.json") == novelty
    for bad in ("{", "[]", json.dumps({"threshold": 2, "fpr": 0.01, "calibration_rows": 1, "score": "max_softmax"})):
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(PreprocessStateError):
            Novelty.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="strictly between"):
        Novelty.calibrate(np.eye(2), 0.0)


def test_energy_is_minus_logsumexp_and_one_logit_means_two_classes():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    assert energy_scores(logits).tolist() == pytest.approx((-np.log(np.exp(logits).sum(axis=1))).tolist())
    assert energy_scores(np.array([[3.0]])) == pytest.approx(energy_scores(np.array([[0.0, 3.0]])))
    assert energy_scores(np.array([[1000.0, 0.0]]))[0] == pytest.approx(-1000.0)  # no overflow


def test_mahalanobis_distance_is_to_the_nearest_class_mean_under_the_shared_covariance():
    rng = np.random.default_rng(0)
    scale = np.array([1.0, 10.0])  # the second dimension varies ten times as much
    features = np.concatenate([rng.normal(0, 1, (4000, 2)) * scale, rng.normal(0, 1, (4000, 2)) * scale + [20, 0]])
    labels = np.repeat([0, 1], 4000)
    density = Mahalanobis.fit(features, labels)
    assert density.means == pytest.approx(np.array([[0, 0], [20, 0]]), abs=0.5)
    near, far = density.scores(np.array([[0.0, 10.0], [0.0, 0.0], [5.0, 0.0], [19.0, 0.0]]))[[0, 2]]
    assert near == pytest.approx(1.0, rel=0.1) and far == pytest.approx(25.0, rel=0.1)  # 10 along y = 1 along x
    assert density.scores(np.array([[20.0, 0.0]]))[0] == pytest.approx(0.0, abs=0.01)


def test_mahalanobis_survives_dead_units():
    features = np.column_stack([np.random.default_rng(1).normal(size=100), np.zeros(100)])  # a ReLU always 0
    scores = Mahalanobis.fit(features, np.zeros(100, dtype=int)).scores(features)
    assert np.all(np.isfinite(scores))
