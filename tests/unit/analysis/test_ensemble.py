"""Seed ensembles: each member sees its own scaling, members must agree on the rest."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ids_lightning.analysis.ensemble import Rescale, check_members
from ids_lightning.core.errors import DataError
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.core.table import RawTable


def table(numeric: np.ndarray, categories: list[str]) -> RawTable:
    n = len(numeric)
    return RawTable(
        numeric=numeric,
        categorical=np.array(categories, dtype=object)[:, None],
        labels=np.array(["a", "b"] * (n // 2), dtype=object),
        numeric_names=["x", "y"],
        categorical_names=["c"],
        line=np.arange(1, n + 1),
        source=np.full(n, "f", dtype=object),
    )


def fit(rows: RawTable, scaler: str = "log_minmax", window: int = 1, encoding: str = "label") -> Preprocessor:
    return Preprocessor.fit(
        rows, dataset="d", task="t", class_names=["a", "b"], scaler=scaler, window=window, encoding=encoding
    )


@pytest.mark.parametrize("scaler", ["minmax", "log_minmax"])
def test_rescale_maps_the_first_runs_scaling_onto_each_members(scaler):
    rng = np.random.default_rng(0)
    raw = table(rng.uniform(0, 1000, size=(200, 2)), ["p", "q"] * 100)
    base, member = fit(raw.take(np.arange(0, 120)), scaler), fit(raw.take(np.arange(80, 200)), scaler)
    inside = raw.take(np.arange(0, 120))  # rows inside the base's training range: no clipping there
    got = Rescale(base, member)(torch.from_numpy(base.transform(inside)[0]))
    want, _ = member.transform(inside)
    torch.testing.assert_close(got, torch.from_numpy(want), rtol=1e-5, atol=1e-5)


def test_rescale_keeps_window_padding_at_zero():
    raw = table(np.arange(40, dtype=float).reshape(20, 2), ["p"] * 20)
    base, member = fit(raw.take(np.arange(10)), window=3), fit(raw.take(np.arange(10, 20)), window=3)
    x = torch.rand(4, 3, base.num_features + 1)
    x[:, 0] = 0  # padding
    x[:, 1:, -1] = 1
    out = Rescale(base, member)(x)
    assert torch.equal(out[:, 0], torch.zeros_like(out[:, 0])) and torch.equal(out[..., -1], x[..., -1])


@pytest.mark.parametrize("encoding", ["label", "embedding"])
def test_categories_are_looked_up_in_each_members_list(encoding):
    raw = table(np.arange(60, dtype=float).reshape(30, 2), ["p", "q", "r"] * 10)
    base = fit(raw.take(np.arange(0, 30)), encoding=encoding)  # p, q, r
    member = fit(raw.take(np.flatnonzero(raw.categorical[:, 0] != "p")), encoding=encoding)  # q, r only
    got = Rescale(base, member)(torch.from_numpy(base.transform(raw)[0]))
    want = member.transform(raw)[0]  # p is unknown (code 0) to the member
    torch.testing.assert_close(got[:, 2], torch.from_numpy(want[:, 2]))


def test_members_that_differ_beyond_scaling_are_refused():
    raw = table(np.arange(40, dtype=float).reshape(20, 2), ["p", "q"] * 10)
    onehot = [
        Preprocessor.fit(r, dataset="d", task="t", class_names=["a", "b"], encoding="onehot")
        for r in (raw, raw.take(np.arange(0, 20, 2)))
    ]
    with pytest.raises(DataError, match="differ in categories"):  # b never saw category q
        check_members(onehot, ["run_a", "run_b"])
    with pytest.raises(DataError, match="differ in scaler"):
        check_members([fit(raw), fit(raw, scaler="minmax")], ["run_a", "run_c"])
    check_members([fit(raw), fit(raw.take(np.arange(0, 20, 2)))], ["run_a", "run_d"])  # label: looked up


def test_members_scaled_by_quantiles_are_refused():
    raw = table(np.arange(40, dtype=float).reshape(20, 2), ["p"] * 20)
    states = [fit(raw.take(np.arange(10)), "quantile"), fit(raw.take(np.arange(10, 20)), "quantile")]
    with pytest.raises(DataError, match="scaled by quantiles"):
        check_members(states, ["run1", "run2"])


def test_an_ensemble_never_writes_into_one_of_its_members(tmp_path):
    from ids_lightning.analysis.ensemble import ensemble

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for output in (first, first / "ensemble"):
        with pytest.raises(DataError, match="is \\(inside\\) the member run"):
            ensemble([first, second], output)
    assert sorted(p.name for p in first.iterdir()) == []
