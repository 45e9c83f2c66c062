"""The novelty threshold: calibrated on benign validation rows to a false-alarm rate, plain JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ids_lightning.core.errors import PreprocessStateError
from ids_lightning.core.novelty import Novelty, novelty_scores


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
