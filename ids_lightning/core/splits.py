"""Seeded, stratified splits that never fail on rare classes, and the split kinds of dataset specs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


VAL_SPLITS = ("random", "by_family", "by_capture")
ATTACK_TYPE = "attack_type"  # row metadata: each row's finest label (the spec's type_task)


@dataclass(frozen=True)
class Validation:
    """How validation rows are cut from what is not test.

    ``random``: a stratified share (the seed paper). ``by_family``: whole attack types (row
    metadata ``type_key``) held out of training, about ``val_fraction`` of each class's rows,
    never a class's largest type; benign rows as a random share: validation then holds attack
    types training never saw, as KDDTest+ and unseen captures do, so early stopping and model
    selection reward generalisation instead of memory. ``by_capture``: the rows of the
    partitions (captures) ``partitions`` (metadata ``partition_key``).
    """

    kind: str = "random"
    partitions: tuple[str, ...] = ()
    partition_key: str | None = None
    type_key: str = ATTACK_TYPE
    benign: frozenset[str] = frozenset()


def _held_out_types(labels: np.ndarray, types: np.ndarray, fraction: float, seed: int, benign) -> np.ndarray:
    """Validation mask of :class:`Validation` ``by_family``."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(labels), dtype=bool)
    for cls in sorted(set(labels.tolist())):
        rows = labels == cls
        names, counts = np.unique(types[rows], return_counts=True)
        target = fraction * rows.sum()
        if cls.lower() in benign or len(names) < 2:
            chosen = rng.permutation(np.flatnonzero(rows))[: int(np.floor(target))]
            val[chosen] = True
            continue
        largest, held = counts.argmax(), 0
        for j in rng.permutation(len(names)):
            if j != largest and held + counts[j] <= 2 * target:
                val |= rows & (types == names[j])
                held += counts[j]
            if held >= target:
                break
    return val


def validation_rows(part: RawTable, validation: Validation, fraction: float, seed: int) -> np.ndarray:
    """Validation mask over ``part`` (the rows that are not test) under ``by_family`` or
    ``by_capture``."""
    if validation.kind == "by_capture":
        key = validation.partition_key
        if not validation.partitions:
            raise ConfigError("dataset.val_split=by_capture needs dataset.val_partitions (the captures to validate on)")
        if key is None or key not in part.meta:
            raise ConfigError(f"dataset.val_split=by_capture: the rows have no {key or 'partition'} to split by")
        available = sorted(set(part.meta[key].tolist()))
        missing = [p for p in validation.partitions if p not in available]
        if missing:
            raise DataError(f"validation partitions {missing} are not among the training {key} values: {available}")
        val = np.isin(part.meta[key], list(validation.partitions))
    elif validation.kind == "by_family":
        if validation.type_key not in part.meta:
            raise ConfigError("dataset.val_split=by_family: this dataset's files carry no attack types")
        labels = part.labels.astype(str)
        val = _held_out_types(labels, part.meta[validation.type_key].astype(str), fraction, seed, validation.benign)
    else:
        raise ConfigError(f"dataset.val_split must be one of {VAL_SPLITS}, not {validation.kind!r}")
    if val.all() or not val.any():
        raise DataError(
            f"dataset.val_split={validation.kind} leaves {'no training' if val.all() else 'no validation'} rows"
        )
    return val


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
    validation: Validation = Validation(),
) -> dict[str, RawTable]:
    """``{"train", "val", "test"}`` tables of ``table`` (labels set) under ``split`` (see
    :class:`~ids_lightning.core.spec.Split`); validation is always a stratified share of what
    is not test. With ``groups`` (a code per row: a host's block of flows, for windows), random
    shares move whole groups instead of single rows. ``validation`` says how validation rows are
    cut (:class:`Validation`)."""

    def shares(part: RawTable, fractions: list[float]) -> list[np.ndarray]:
        labels = part.labels.astype(str)
        if groups is None:
            return stratified_split(labels, fractions, seed)
        return grouped_split(labels, groups(part), fractions, seed)

    if split.kind == "random" and validation.kind == "random":
        fractions = [1 - val_fraction - test_fraction, val_fraction, test_fraction]
        return dict(zip(("train", "val", "test"), (table.take(p) for p in shares(table, fractions))))
    if split.kind == "random":
        rest_idx, test_idx = shares(table, [1 - test_fraction, test_fraction])
        rest, test = table.take(rest_idx), table.take(test_idx)
        val_fraction = val_fraction / (1 - test_fraction)  # the same share of all rows
    elif split.kind == "test_files":
        if test_table is None:
            raise ConfigError("this split tests on dataset.test_files: set them")
        rest, test = table, test_table
    elif split.kind == "partition":
        rest, test = _partition(table, split.key, test_partitions or [])
    else:
        raise ValueError(f"unknown split kind {split.kind!r}")
    if validation.kind == "random":
        train_idx, val_idx = shares(rest, [1 - val_fraction, val_fraction])
    else:
        val = validation_rows(rest, validation, val_fraction, seed)
        train_idx, val_idx = np.flatnonzero(~val), np.flatnonzero(val)
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
