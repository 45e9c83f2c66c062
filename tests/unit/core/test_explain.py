"""Explanations by occlusion: a feature is what the user knows (one-hot and embedded columns
one feature, spec groups merged), the reference is a typical benign flow, and the batched
attribution equals a row-by-row numpy reimplementation, windows included."""

from __future__ import annotations

import numpy as np
import pytest

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.explain import (
    Attribution,
    Explainer,
    check_top,
    explanations,
    feature_values,
    features_of,
    reference_row,
)
from tests.unit.core.test_preprocess import fit, table

TWO_CATEGORIES = table(
    [[0, 10], [5, 20], [10, 30], [7, 30]], [["tcp", "http"], ["udp", "dns"], ["tcp", "http"], ["tcp", "ssh"]]
)


@pytest.mark.parametrize("encoding", ["label", "onehot", "embedding"])
def test_a_categorical_column_is_one_feature_whatever_its_encoding(encoding):
    pre = fit(encoding, train=TWO_CATEGORIES)
    features = features_of(pre)
    assert [f.name for f in features] == ["n0", "n1", "c0", "c1"]
    widths = [len(f.columns) for f in features]
    assert widths == ([1, 1, 3, 4] if encoding == "onehot" else [1, 1, 1, 1])  # unknown + categories
    assert sorted(c for f in features for c in f.columns) == list(range(pre.num_features))


def test_the_spec_s_groups_merge_derived_columns_into_the_feature_the_user_knows():
    pre = fit("onehot", train=TWO_CATEGORIES)
    features = features_of(pre, {"port": ("n1", "c1")})
    assert [f.name for f in features] == ["n0", "port", "c0"]
    assert features[1].columns == (1, 5, 6, 7, 8) and features[1].inputs == ("n1", "c1")


@pytest.mark.parametrize("encoding", ["label", "onehot", "embedding"])
def test_the_reference_is_the_benign_median_and_most_common_category(encoding):
    pre = fit(encoding, train=TWO_CATEGORIES)
    x, _ = pre.transform(TWO_CATEGORIES)
    reference = reference_row(pre, x)
    back = table([[np.median([0, 5, 10, 7]), 25]], [["tcp", "http"]])  # the mode of each category
    expected, _ = pre.transform(back)
    np.testing.assert_allclose(reference, expected[0], atol=1e-6)


def logistic(weights: np.ndarray):
    """A two-class model on flat rows or windows (the window's flows summed), in numpy."""

    def score(x: np.ndarray) -> np.ndarray:
        flat = x[..., :-1].sum(axis=1) if x.ndim == 3 else x
        p = 1 / (1 + np.exp(-(flat @ weights)))
        return np.column_stack([1 - p, p])

    return score


def test_batched_occlusion_equals_a_row_by_row_reimplementation():
    rng = np.random.default_rng(0)
    pre = fit("onehot", train=TWO_CATEGORIES)
    features = features_of(pre)
    reference = rng.random(pre.num_features).astype(np.float32)
    x = rng.random((7, pre.num_features)).astype(np.float32)
    score = logistic(rng.normal(size=pre.num_features))
    target = rng.integers(0, 2, len(x))
    got = Explainer(features, reference).attribute(score, x, target)
    for i in range(len(x)):
        base = score(x[i : i + 1])[0, target[i]]
        for g, feature in enumerate(features):
            occluded = x[i].copy()
            occluded[list(feature.columns)] = reference[list(feature.columns)]
            assert got.features[i, g] == pytest.approx(base - score(occluded[None])[0, target[i]], abs=1e-6)
    assert got.flows is None and got.probability == pytest.approx(score(x)[np.arange(7), target], abs=1e-6)


def test_windows_occlude_a_feature_in_every_flow_and_each_flow_whole_leaving_padding_alone():
    rng = np.random.default_rng(1)
    pre = fit("label", train=TWO_CATEGORIES)
    features, width, window = features_of(pre), pre.num_features, 4
    reference = rng.random(width).astype(np.float32)
    x = np.concatenate([rng.random((3, window, width)), np.ones((3, window, 1))], axis=2).astype(np.float32)
    x[0, :2] = 0.0  # the first window is padded twice on the left
    score = logistic(rng.normal(size=width))
    got = Explainer(features, reference, window).attribute(score, x, np.ones(3, dtype=int))
    for i in range(3):
        base = score(x[i : i + 1])[0, 1]
        present = x[i, :, -1] > 0
        for g, feature in enumerate(features):
            occluded = x[i].copy()
            occluded[np.ix_(present, list(feature.columns))] = reference[list(feature.columns)]
            assert got.features[i, g] == pytest.approx(base - score(occluded[None])[0, 1], abs=1e-6)
        for t in range(window):
            occluded = x[i].copy()
            if present[t]:
                occluded[t, :-1] = reference
            expected = base - score(occluded[None])[0, 1] if present[t] else 0.0
            assert got.flows[i, t] == pytest.approx(expected, abs=1e-6)
    assert (got.flows[0, :2] == 0).all()


def test_an_explanation_lists_the_strongest_features_with_their_values_and_a_reason():
    pre = fit("label", train=TWO_CATEGORIES)
    features = features_of(pre)
    attribution = Attribution(np.array([[0.5, -0.2, 0.0, 0.3]]), np.array([[0.0, 0.1, 0.4]]), np.array([0.9]))
    values = feature_values(TWO_CATEGORIES, features, np.array([1]))
    [entry] = explanations(attribution, features, values, top=3)
    assert [e["feature"] for e in entry["explanation"]] == ["n0", "c1", "n1"]  # c0 changes nothing
    assert entry["explanation"][0]["value"] == 5 and entry["explanation"][1]["value"] == "dns"
    assert entry["reason"] == "n0=5, c1=dns; flows of the window that weighed most: this flow, 1 back"
    assert entry["window_flows"] == [{"back": 0, "contribution": 0.4}, {"back": 1, "contribution": 0.1}]


@pytest.mark.parametrize("top", [0, -1, 2.5, True])
def test_fewer_than_one_feature_per_alert_is_refused(top):
    with pytest.raises(ConfigError, match="--explain"):
        check_top(top)


def test_a_reference_that_is_not_the_project_s_is_refused_and_a_missing_one_means_none(tmp_path):
    from ids_lightning.core.errors import DataError
    from ids_lightning.core.explain import EXPLAIN_FILE, load_reference

    pre = fit("label", train=TWO_CATEGORIES)
    assert load_reference(tmp_path, pre) is None
    (tmp_path / EXPLAIN_FILE).symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(DataError):
        load_reference(tmp_path, pre)
    (tmp_path / EXPLAIN_FILE).unlink()
    (tmp_path / EXPLAIN_FILE).write_text('{"reference": [1, 2]}')
    with pytest.raises(DataError, match="finite numbers"):
        load_reference(tmp_path, pre)
    (tmp_path / EXPLAIN_FILE).write_text('{"reference": [0.5, 0.5, 0.5, NaN]}')
    with pytest.raises(DataError):
        load_reference(tmp_path, pre)
