"""The classical baselines see the rows a deep run sees and write comparable metrics."""

from __future__ import annotations

import json

import pytest

from ids_lightning.analysis.baseline import BASELINES, baseline, scores
from ids_lightning.analysis.report import summarise


@pytest.mark.parametrize("model", BASELINES)
def test_each_baseline_writes_the_keys_of_a_deep_run_and_beats_chance(model, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("IDS_DATA_DIR", str(data_dir))
    [metrics] = baseline(["dataset=bot_iot", "seed=3"], tmp_path, models=(model,))
    assert json.loads((tmp_path / model / "metrics.json").read_text()) == metrics
    assert metrics["model"] == model and metrics["dataset"] == "bot_iot" and metrics["seed"] == 3
    majority = max(metrics["class_counts"]["test"].values()) / sum(metrics["class_counts"]["test"].values())
    assert metrics["test/acc"] > majority + 0.1 and metrics["test/auroc"] > 0.9
    assert {f"test/recall/{c}" for c in metrics["class_names"]} <= metrics.keys()
    row = summarise([{**metrics, "experiment": ""}], ["test/acc"])[0]
    assert row["model"] == model and row["test/acc_mean"] == metrics["test/acc"]


def test_scores_match_their_definitions():
    import numpy as np

    y = np.array([0, 0, 1, 1, 2])
    probabilities = np.eye(3)[[0, 1, 1, 1, 0]]
    out = scores(y, probabilities, ["a", "b", "c"], "test")
    assert out["test/acc"] == pytest.approx(3 / 5)
    assert out["test/recall/a"] == 0.5 and out["test/recall/b"] == 1.0 and out["test/recall/c"] == 0.0
