"""Encoders and scalers: fitted on training rows only, unknown categories, JSON state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ids_lightning.core.errors import PreprocessStateError
from ids_lightning.core.preprocess import UNKNOWN, Preprocessor
from ids_lightning.core.table import RawTable


def table(numeric, categorical, labels=None):
    numeric = np.asarray(numeric, dtype=np.float64)
    categorical = np.asarray(categorical, dtype=object).reshape(len(numeric), -1)
    n = len(numeric)
    return RawTable(
        numeric=numeric,
        categorical=categorical,
        labels=np.asarray(labels if labels is not None else ["a"] * n, dtype=object),
        numeric_names=[f"n{i}" for i in range(numeric.shape[1])],
        categorical_names=[f"c{i}" for i in range(categorical.shape[1])],
        line=np.arange(1, n + 1),
        source=np.full(n, "mem", dtype=object),
    )


TRAIN = table([[0, 10], [5, 20], [10, 30]], [["tcp"], ["udp"], ["tcp"]])
OTHER = table([[20, 10], [-10, 25]], [["icmp"], ["udp"]])


def fit(encoding="label", scaler="minmax", clip=True, train=TRAIN):
    return Preprocessor.fit(
        train, dataset="toy", task="t", class_names=["a", "b"], encoding=encoding, scaler=scaler, clip=clip
    )


def test_scaler_uses_training_rows_only():
    pre = fit()
    assert pre.numeric_min == [0, 10] and pre.numeric_max == [10, 30]
    x, _ = pre.transform(OTHER)
    assert x[:, 0].tolist() == [1.0, 0.0]  # 20 and -10 saturate at the training range
    unclipped, _ = fit(clip=False).transform(OTHER)
    assert unclipped[:, 0].tolist() == [2.0, -1.0]


def test_unseen_category_maps_to_unknown_code_zero():
    pre = fit()
    assert pre.categories == {"c0": ["tcp", "udp"]}
    x, unknown = pre.transform(OTHER)
    assert unknown.tolist() == [True, False]
    assert x[:, 2].tolist() == [0.0, 1.0]  # unknown -> 0, udp -> 2/2


def test_onehot_has_an_explicit_unknown_column():
    pre = fit(encoding="onehot")
    assert pre.feature_names == ["n0", "n1", f"c0={UNKNOWN}", "c0=tcp", "c0=udp"]
    assert pre.categorical_mask == [False, False, True, True, True]
    x, _ = pre.transform(OTHER)
    assert x[:, 2:].tolist() == [[1, 0, 0], [0, 0, 1]]


def test_log_minmax_compresses_heavy_tails():
    heavy = table([[0.0], [10.0], [1e6]], [["x"], ["x"], ["x"]])
    linear, _ = fit(train=heavy).transform(heavy)
    logged, _ = fit(scaler="log_minmax", train=heavy).transform(heavy)
    assert linear[1, 0] < 1e-4 < 0.1 < logged[1, 0] < 0.3
    assert logged[:, 0].min() == 0 and logged[:, 0].max() == 1


def test_quantile_scaler_spreads_heavy_tails_by_rank():
    counts = table([[0.0]] * 60 + [[1.0], [2.0], [10.0], [1e6]], [["x"]] * 64)
    pre = fit(scaler="quantile", train=counts)
    x, _ = pre.transform(counts)
    assert x[0, 0] == pytest.approx(0.5 * (60 - 1) / 63, abs=0.01)  # the tie of zeros sits at its mean level
    assert x[-1, 0] == 1.0 and np.all(np.diff(x[59:, 0]) > 0)  # order kept, the maximum at the top
    unseen, _ = pre.transform(table([[-5.0], [0.5], [1e9]], [["x"]] * 3))
    assert unseen[0, 0] == x[0, 0] and x[0, 0] < unseen[1, 0] < x[60, 0] and unseen[2, 0] == 1.0


def test_quantile_scaler_of_a_constant_column_is_a_single_knot():
    pre = fit(scaler="quantile", train=table([[3.0], [3.0]], [["x"], ["x"]]))
    assert pre.numeric_quantiles == [[3.0]] and pre.numeric_levels == [[0.5]]
    assert pre.transform(table([[0.0], [9.0]], [["x"], ["x"]]))[0][:, 0].tolist() == [0.5, 0.5]


def test_integer_columns_are_recorded():
    mixed = table([[1.0, 0.5], [2.0, 1.0]], [["x"], ["x"]])
    assert fit(train=mixed).numeric_integer == [True, False]


@pytest.mark.parametrize("scaler", ["log_minmax", "quantile"])
def test_json_round_trip(tmp_path, scaler):
    pre = fit(encoding="onehot", scaler=scaler)
    pre.save(tmp_path / "preprocess.json")
    loaded = Preprocessor.load(tmp_path / "preprocess.json")
    assert loaded == pre
    assert np.array_equal(loaded.transform(OTHER)[0], pre.transform(OTHER)[0])


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda s: s.pop("scaler"), "missing key 'scaler'"),
        (lambda s: s.update(numeric_min=[0]), "'numeric_min' has 1 entries for 2 numeric columns"),
        (lambda s: s.update(numeric_max=["x", 1]), "must hold numbers"),
        (lambda s: s.update(encoding="pickle"), "encoding 'pickle'"),
        (lambda s: s.update(class_names=["a"]), "at least two distinct"),
        (lambda s: s.update(categories={"zz": []}), "one entry per categorical column"),
        (lambda s: s.update(feature_names=["n0"]), "feature_names do not match"),
        (lambda s: s.update(version=99), "is format 99, written by a newer ids-lightning"),
        (lambda s: s.update(clip="yes"), "'clip' must be of type bool"),
        (lambda s: s.update(window=0), "window must be a whole number from 1"),
        (lambda s: s.update(window=10**9), "window must be a whole number from 1"),
        (lambda s: s.update(window=True), "window must be a whole number from 1"),
        (lambda s: s.update(numeric_quantiles=[[0.0]]), "must hold 0 lists under scaler 'minmax'"),
    ],
)
def test_tampered_state_is_refused_with_a_clear_error(tmp_path, tamper, message):
    assert_refused_when_tampered(fit().to_dict(), tamper, message, tmp_path)


def assert_refused_when_tampered(state, tamper, message, tmp_path):
    tamper(state)
    path = tmp_path / "preprocess.json"
    path.write_text(json.dumps(state))
    with pytest.raises(PreprocessStateError, match=message) as info:
        Preprocessor.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda s: s.update(numeric_quantiles=[[0.0]]), "must hold 2 lists under scaler 'quantile'"),
        (lambda s: s["numeric_quantiles"][0].reverse(), "finite and increasing"),
        (lambda s: s["numeric_levels"][1].__setitem__(0, -1.0), "increase within"),
        (lambda s: s["numeric_levels"][1].pop(), "two lists of equal length"),
        (lambda s: s["numeric_quantiles"][0].__setitem__(0, "0"), "must hold numbers"),
    ],
)
def test_tampered_quantile_knots_are_refused(tmp_path, tamper, message):
    assert_refused_when_tampered(fit(scaler="quantile").to_dict(), tamper, message, tmp_path)


def test_invalid_json_is_refused(tmp_path):
    path = tmp_path / "preprocess.json"
    path.write_text("{not json")
    with pytest.raises(PreprocessStateError, match="not valid JSON"):
        Preprocessor.load(path)


def test_a_state_from_before_windows_reads_as_one_flow(tmp_path):
    state = fit().to_dict()
    state.pop("window")
    path = tmp_path / "preprocess.json"
    path.write_text(json.dumps(state))
    loaded = Preprocessor.load(path)
    assert loaded.window == 1 and loaded.input_shape == (loaded.num_features,)


def test_site_statistics_refuse_quantiles_and_mismatched_sites():
    from ids_lightning.core.preprocess import site_statistics

    with pytest.raises(ValueError, match="merge exactly under minmax or log_minmax"):
        site_statistics(TRAIN, "quantile")
    other = table([[1.0]], [["tcp"]])  # one numeric column, not two
    with pytest.raises(ValueError, match="sites differ in numeric_names"):
        Preprocessor.merge(
            [site_statistics(TRAIN), site_statistics(other)], dataset="d", task="t", class_names=["a", "b"]
        )
