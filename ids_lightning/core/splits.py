"""Seeded, stratified splits that never fail on rare classes, and the split kinds of dataset specs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.spec import Split
from ids_lightning.core.table import RawTable


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split row indices into parts with the given fractions, class by class.

    Parts after the first get ``floor(fraction * n)`` rows of each class and the first part the
    rest, so a class too rare to share stays whole in the first (training) part. Each part's
    indices come back sorted, in file order.
    """
    if not np.isclose(sum(fractions), 1.0):
        raise ConfigError(f"split fractions must sum to 1, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in sorted(set(labels.tolist())):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        sizes = [int(np.floor(f * len(rows))) for f in fractions[1:]]
        bounds = np.cumsum([len(rows) - sum(sizes), *sizes])[:-1]
        for part, chunk in zip(parts, np.split(rows, bounds)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) if p else np.empty(0, np.int64) for p in parts]


def grouped_split(labels: np.ndarray, groups: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """:func:`stratified_split` of whole groups of rows (stratified by each group's most common
    label): row indices per part, sorted."""
    unit_codes, unit_of_row = np.unique(groups, return_inverse=True)
    unit_labels = np.empty(len(unit_codes), dtype=object)
    for unit, rows in enumerate(
        np.split(np.argsort(unit_of_row, kind="stable"), np.cumsum(np.bincount(unit_of_row))[:-1])
    ):
        values, counts = np.unique(labels[rows], return_counts=True)
        unit_labels[unit] = values[counts.argmax()]
    parts = stratified_split(unit_labels.astype(str), fractions, seed)
    return [np.flatnonzero(np.isin(unit_of_row, part)) for part in parts]


def split_table(
    table: RawTable,
    split: Split,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    test_table: RawTable | None = None,
    test_partitions: list[str] | None = None,
    groups: Callable[[RawTable], np.ndarray] | None = None,
) -> dict[str, RawTable]:
    """``{"train", "val", "test"}`` tables of ``table`` (labels set) under ``split`` (see
    :class:`~ids_lightning.core.spec.Split`); validation is always a stratified share of what
    is not test. With ``groups`` (a code per row: a host's block of flows, for windows), random
    shares move whole groups instead of single rows."""

    def shares(part: RawTable, fractions: list[float]) -> list[np.ndarray]:
        labels = part.labels.astype(str)
        if groups is None:
            return stratified_split(labels, fractions, seed)
        return grouped_split(labels, groups(part), fractions, seed)

    if split.kind == "random":
        fractions = [1 - val_fraction - test_fraction, val_fraction, test_fraction]
        return dict(zip(("train", "val", "test"), (table.take(p) for p in shares(table, fractions))))
    if split.kind == "test_files":
        if test_table is None:
            raise ConfigError("this split tests on dataset.test_files: set them")
        rest, test = table, test_table
    elif split.kind == "partition":
        rest, test = _partition(table, split.key, test_partitions or [])
    else:
        raise ValueError(f"unknown split kind {split.kind!r}")
    train_idx, val_idx = shares(rest, [1 - val_fraction, val_fraction])
    return {"train": rest.take(train_idx), "val": rest.take(val_idx), "test": test}


def _partition(table: RawTable, key: str, test_partitions: list[str]) -> tuple[RawTable, RawTable]:
    if not test_partitions:
        raise ConfigError(f"a split by {key} needs dataset.test_partitions (the {key} values to test on)")
    if key not in table.meta:
        raise DataError(f"{table.source[0]}: the rows have no {key!r} to split by")
    values = table.meta[key]
    available = sorted(set(values.tolist()))
    missing = [c for c in test_partitions if c not in available]
    if missing:
        raise DataError(f"test partitions {missing} are not among the {key} values read: {available}")
    test = np.isin(values, test_partitions)
    if test.all():
        raise DataError(f"every {key} read is a test partition ({available}): nothing left to train on")
    return table.take(np.flatnonzero(~test)), table.take(np.flatnonzero(test))
