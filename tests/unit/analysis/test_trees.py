"""LightGBM's ONNX export: every row, also those that sit on a split's threshold, gets
LightGBM's own probabilities; the search picks its best validation trial."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from ids_lightning.analysis import trees
from ids_lightning.core.errors import DataError
from ids_lightning.edge.runtime import CLASS_NAMES_KEY, session

PARAMS = {"num_leaves": 31, "learning_rate": 0.1, "min_child_samples": 5, "feature_fraction": 0.8}


def data(classes: int, rows: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((rows, 6)).astype(np.float32)
    y = (x[:, 0] * classes + x[:, 1]).astype(int) % classes
    noisy = rng.random(rows) < 0.1
    y[noisy] = rng.integers(0, classes, noisy.sum())
    return x, y


def at_thresholds(classifier, x: np.ndarray) -> np.ndarray:
    """Rows whose split feature is the float32 value just below, at, and just above each
    split's (double) threshold: where a threshold kept in float32 sends a row the wrong way."""
    splits = trees._tree_nodes(classifier.booster_, len(classifier.classes_))
    features = [f for f, mode in zip(splits["nodes_featureids"], splits["nodes_modes"]) if mode == "BRANCH_LEQ"]
    values = [v for v, mode in zip(splits["nodes_values"], splits["nodes_modes"]) if mode == "BRANCH_LEQ"]
    out = np.repeat(x[:1], 3 * len(values), axis=0)
    for i, (feature, value) in enumerate(zip(features, values)):
        low, exact = np.nextafter(np.float32(value), np.float32(-1)), np.float32(value)
        out[3 * i : 3 * i + 3, feature] = [low, exact, np.nextafter(exact, np.float32(2))]
    return out


@pytest.mark.parametrize("classes", [5, 2])
def test_export_gives_lightgbm_s_probabilities_also_on_the_thresholds(classes, tmp_path):
    x, y = data(classes)
    classifier = trees.fit(PARAMS, 80, x, y, seed=0)
    path = tmp_path / "model.onnx"
    trees.export_trees(classifier, 6, [f"c{i}" for i in range(classes)], path)
    rows = np.concatenate([x, at_thresholds(classifier, x)])
    exported = session(path).run(None, {"features": rows})[0]
    expected = trees.probabilities_of(classifier, rows, classes)
    assert exported.shape == (len(rows), classes) and exported.dtype == np.float32
    assert np.abs(exported - expected).max() <= trees.PARITY_TOLERANCE
    assert (exported.argmax(1) == expected.argmax(1)).all()
    names = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}[CLASS_NAMES_KEY])
    assert names == [f"c{i}" for i in range(classes)]


def test_export_refuses_trees_that_never_saw_a_class(tmp_path):
    x, y = data(3)
    classifier = trees.fit(PARAMS, 20, x[y < 2], y[y < 2], seed=0)
    with pytest.raises(DataError, match="saw classes"):
        trees.export_trees(classifier, 6, ["a", "b", "c"], tmp_path / "model.onnx")


def test_the_search_keeps_the_trial_with_the_best_validation_score():
    (x, y), (x_val, y_val) = data(3, seed=1), data(3, rows=800, seed=2)
    search = trees.TreeSearch(trials=3, max_rounds=60)
    params, rounds, trials = trees.tune((x, y), (x_val, y_val), 3, seed=0, search=search)
    best = max(trials, key=lambda t: t["val/f1_macro"])
    assert len(trials) == 3 and params == best["params"] and rounds == best["rounds"] <= 60
    refit = trees.fit(params, rounds, x, y, seed=0)
    assert trees.macro_f1(y_val, trees.probabilities_of(refit, x_val, 3), 3) == pytest.approx(best["val/f1_macro"])
