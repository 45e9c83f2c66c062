"""Validation that mimics the shift: whole attack types or whole captures held out of training."""

from __future__ import annotations

import numpy as np
import pytest

from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.spec import Split
from ids_lightning.core.splits import ATTACK_TYPE, Validation, split_table
from ids_lightning.core.table import RawTable


def table(types: list[str], families: dict[str, str], captures: list[str] | None = None) -> RawTable:
    n = len(types)
    meta = {ATTACK_TYPE: np.array(types, dtype=object)}
    if captures is not None:
        meta["capture"] = np.array(captures, dtype=object)
    return RawTable(
        numeric=np.arange(n, dtype=float)[:, None],
        categorical=np.zeros((n, 0), dtype=object),
        labels=np.array([families[t] for t in types], dtype=object),
        numeric_names=["x"],
        categorical_names=[],
        line=np.arange(1, n + 1),
        source=np.full(n, "f", dtype=object),
        meta=meta,
    )


FAMILIES = {"normal": "normal", "neptune": "dos", "smurf": "dos", "pod": "dos", "teardrop": "dos", "satan": "probe"}
TYPES = ["normal"] * 400 + ["neptune"] * 300 + ["smurf"] * 40 + ["pod"] * 20 + ["teardrop"] * 20 + ["satan"] * 50


def split(validation: Validation, rows: RawTable | None = None, seed: int = 1) -> dict[str, RawTable]:
    rows = rows if rows is not None else table(TYPES, FAMILIES)
    return split_table(
        rows,
        Split("test_files"),
        val_fraction=0.15,
        test_fraction=0.15,
        seed=seed,
        test_table=rows,
        validation=validation,
    )


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_by_family_holds_out_whole_types_never_a_class_largest(seed):
    parts = split(Validation("by_family", benign=frozenset({"normal"})), seed=seed)
    train_types = set(parts["train"].meta[ATTACK_TYPE].tolist())
    val_types = set(parts["val"].meta[ATTACK_TYPE].tolist())
    dos_held = val_types - {"normal", "satan"}
    assert dos_held and not dos_held & train_types  # held-out types are whole
    assert "neptune" in train_types  # a class's largest type stays in training
    assert 0 < sum(TYPES.count(t) for t in dos_held) <= 2 * 0.15 * 380  # about the fraction, at most twice
    # benign rows, and a class of one type, are random shares
    assert int((parts["val"].labels == "normal").sum()) == 60
    assert "satan" in train_types and int((parts["val"].meta[ATTACK_TYPE] == "satan").sum()) == 7


def test_by_capture_validates_on_the_named_captures():
    captures = ["a"] * 300 + ["b"] * 300 + ["c"] * 230
    rows = table(TYPES, FAMILIES, captures)
    parts = split(Validation("by_capture", ("b",), "capture"), rows)
    assert set(parts["val"].meta["capture"].tolist()) == {"b"} and "b" not in set(parts["train"].meta["capture"])
    with pytest.raises(ConfigError, match="val_partitions"):
        split(Validation("by_capture", (), "capture"), rows)
    with pytest.raises(DataError, match=r"\['z'\] are not among"):
        split(Validation("by_capture", ("z",), "capture"), rows)
    with pytest.raises(DataError, match="no training"):
        split(Validation("by_capture", ("a", "b", "c"), "capture"), rows)


def test_random_validation_is_the_stratified_share_it_always_was():
    parts = split(Validation())
    labels = np.array([FAMILIES[t] for t in TYPES])
    assert len(parts["val"]) == sum(int(np.floor(0.15 * (labels == f).sum())) for f in set(labels.tolist()))
    assert set(parts["val"].meta[ATTACK_TYPE].tolist()) <= set(parts["train"].meta[ATTACK_TYPE].tolist())
