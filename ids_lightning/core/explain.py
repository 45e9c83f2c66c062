"""Which features drove a prediction: occlusion against a reference row, in numpy, so that the
torch-free sensor explains its alerts with onnxruntime alone and training explains its test
rows with the same code.

A **feature** is what the user knows: a numeric column, a categorical column whatever its
encoding (one-hot columns and an embedded code count as one), or a group the dataset's spec
declares (IoT-23's ``history`` bits, a port and its IANA range). The **reference** is a typical
benign flow of the training rows: the median of each numeric input and the most common
category of each categorical one (a median of category codes would be an arbitrary category,
a mean of one-hot columns no category at all). It is stored in the run folder
(``explain.json``).

The **contribution** of a feature to a row's prediction is how much the probability of the
explained class falls when that feature alone takes the reference's value: one batched call of
the model scores a row and its occluded copies. With windows, a feature is occluded in every
flow of the window at once (its contribution summed over the window), and each flow of the
window is also occluded whole, which says which flows weighed most.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import ConfigError, DataError
from ids_lightning.core.fileio import atomic_write_json, read_json_state
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.core.table import RawTable

EXPLAIN_FILE = "explain.json"
DEFAULT_TOP = 5
REASON_FEATURES = 3  # features the one-line reason names
WINDOW_FLOWS = 3  # flows of a window an explanation lists
NEGLIGIBLE = 5e-7  # a contribution that rounds to 0 in the record is not listed


@dataclass(frozen=True)
class Feature:
    """A feature as the user knows it, and the model-input columns (of one flow) it spans."""

    name: str
    columns: tuple[int, ...]
    inputs: tuple[str, ...]  # the preprocessed columns it is made of


def features_of(pre: Preprocessor, groups: dict[str, tuple[str, ...]] | None = None) -> list[Feature]:
    """The run's features in input order: one per numeric and categorical column, merged where
    ``groups`` (the spec's ``feature_groups``: feature name -> its preprocessed columns) says."""
    spans: list[tuple[str, list[int]]] = [(name, [i]) for i, name in enumerate(pre.numeric_names)]
    at = len(pre.numeric_names)
    for name in pre.categorical_names:
        width = 1 if pre.encoding in ("label", "embedding") else len(pre.categories[name]) + 1
        spans.append((name, list(range(at, at + width))))
        at += width
    owner = {column: feature for feature, columns in (groups or {}).items() for column in columns}
    merged: dict[str, tuple[list[int], list[str]]] = {}
    for name, columns in spans:
        entry = merged.setdefault(owner.get(name, name), ([], []))
        entry[0].extend(columns)
        entry[1].append(name)
    return [Feature(name, tuple(columns), tuple(inputs)) for name, (columns, inputs) in merged.items()]


def reference_row(pre: Preprocessor, benign: np.ndarray) -> np.ndarray:
    """A typical benign flow (model-input row, one flow) from benign training rows ``[n, F]``:
    the median of each numeric input, the most common category of each categorical one."""
    if not len(benign):
        raise DataError("no benign training rows to take a reference flow from")
    reference = np.median(benign, axis=0).astype(np.float32)
    at = len(pre.numeric_names)
    for name in pre.categorical_names:
        known = len(pre.categories[name])
        if pre.encoding == "onehot":
            block = slice(at, at + known + 1)
            codes = benign[:, block].argmax(axis=1)
            reference[block] = np.eye(known + 1, dtype=np.float32)[np.bincount(codes).argmax()]
            at += known + 1
            continue
        scale = max(known, 1) if pre.encoding == "label" else 1
        codes = np.rint(benign[:, at] * scale).astype(np.int64).clip(0, known)
        reference[at] = np.bincount(codes).argmax() / scale
        at += 1
    return reference


def save_reference(folder: Path, reference: np.ndarray, rows: int) -> None:
    atomic_write_json(
        folder / EXPLAIN_FILE,
        {
            "reference": [float(v) for v in reference],
            "rule": "benign training rows: median of each numeric input, most common category of each categorical",
            "benign_rows": rows,
        },
    )


def load_reference(folder: Path, pre: Preprocessor) -> np.ndarray | None:
    """The run's reference row; None where the run has none (runs from before explanations)."""
    path = folder / EXPLAIN_FILE
    if not os.path.lexists(path):  # a folder or a link to nothing there is an error, not "no reference"
        return None
    try:
        reference = np.asarray(read_json_state(path)["reference"], dtype=np.float32)
    except DataError:  # a folder, a link to nothing, a file too big: it says so itself
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: not the explanation reference this project wrote ({err})") from err
    if reference.shape != (pre.num_features,) or not np.isfinite(reference).all():
        raise DataError(f"{path}: the reference is not {pre.num_features} finite numbers, as preprocess.json needs")
    return reference


@dataclass
class Attribution:
    """Contributions of a batch of rows: per feature ``[n, features]`` and, with windows, per
    flow of the window ``[n, window]`` (0 for padding), to the probability of each row's class."""

    features: np.ndarray
    flows: np.ndarray | None
    probability: np.ndarray  # the explained class's probability, unoccluded


class Explainer:
    """Occlusion of a run's features (and, with windows, flows) against its reference row."""

    def __init__(self, features: list[Feature], reference: np.ndarray, window: int = 1):
        self.features, self.reference, self.window = features, reference.astype(np.float32), window
        self.mask = np.zeros((len(features), len(reference)), dtype=bool)  # [features, F]
        for g, feature in enumerate(features):
            self.mask[g, list(feature.columns)] = True

    @property
    def rows_per_input(self) -> int:
        """Inputs scored per explained row at most: itself, one per feature, one per flow of a
        window (copies that change nothing are not scored: their contribution is 0)."""
        return 1 + len(self.features) + (self.window if self.window > 1 else 0)

    def copies(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The occluded copies that differ from their row: ``(row, slot, copy)`` with ``slot`` a
        feature (``< len(features)``) or, with windows, ``len(features) + t`` for flow ``t``."""
        groups = len(self.features)
        if self.window == 1:
            differs = ((x[:, None, :] != self.reference) & self.mask[None]).any(axis=2)  # [n, G]
            row, slot = np.nonzero(differs)
            return row, slot, np.where(self.mask[slot], self.reference, x[row])
        flows, present = x[..., :-1], x[..., -1] > 0  # [n, T, F], [n, T]
        apart = (flows != self.reference) & present[..., None]  # [n, T, F]
        by_feature = (apart[:, None] & self.mask[None, :, None, :]).any(axis=(2, 3))  # [n, G]
        by_flow = apart.any(axis=2)  # [n, T]
        row, slot = np.nonzero(np.concatenate([by_feature, by_flow], axis=1))
        copies = x[row].copy()
        for_feature = slot < groups
        replace = np.zeros((*copies.shape[:2], copies.shape[2] - 1), dtype=bool)  # [k, T, F]
        replace[for_feature] = self.mask[slot[for_feature]][:, None, :] & present[row[for_feature], :, None]
        flow_rows = np.flatnonzero(~for_feature)
        replace[flow_rows, slot[flow_rows] - groups, :] = True
        copies[..., :-1] = np.where(replace, self.reference, copies[..., :-1])
        return row, slot, copies

    def attribute(
        self,
        score: Callable[[np.ndarray], np.ndarray],
        x: np.ndarray,
        target: np.ndarray,
        probabilities: np.ndarray | None = None,
    ) -> Attribution:
        """Contributions of rows ``x`` to the probability of class ``target[i]`` under ``score``
        (rows to probabilities), from one call over the occluded copies (and the rows
        themselves, unless their ``probabilities`` are given: the sensor has them already)."""
        x = np.asarray(x, dtype=np.float32)
        groups, slots = len(self.features), len(self.features) + (self.window if self.window > 1 else 0)
        row, slot, copies = self.copies(x)
        if probabilities is None:
            scored = score(np.concatenate([x, copies])) if len(x) else np.zeros((0, 1))
            probabilities, occluded = scored[: len(x)], scored[len(x) :]
        else:
            occluded = score(copies) if len(copies) else np.zeros((0, probabilities.shape[1]))
        base = probabilities[np.arange(len(x)), target] if len(x) else np.zeros(0)
        drop = np.zeros((len(x), slots))
        drop[row, slot] = base[row] - occluded[np.arange(len(row)), target[row]]
        flows = drop[:, groups:] if self.window > 1 else None
        return Attribution(drop[:, :groups], flows, base)


def feature_values(table: RawTable, features: list[Feature], rows: np.ndarray) -> list[list[object]]:
    """Each feature's value in the input, for ``rows`` of ``table``: its raw column, or the flow
    field it was derived from (a port, Zeek's history); None where neither is at hand."""
    columns = []
    for feature in features:
        if feature.name in table.numeric_names:
            values = table.numeric[rows, table.numeric_names.index(feature.name)]
        elif feature.name in table.categorical_names:
            values = table.categorical[rows, table.categorical_names.index(feature.name)]
        elif feature.name in table.meta:
            values = np.asarray(table.meta[feature.name])[rows]
        else:
            values = np.full(len(rows), None, dtype=object)
        columns.append([_plain(v) for v in values])
    return [list(row) for row in zip(*columns)] if columns else [[] for _ in rows]


def explanations(attribution: Attribution, features: list[Feature], values: list[list[object]], top: int) -> list[dict]:
    """Per row: ``explanation`` (the ``top`` features by contribution, strongest first, with
    value and contribution; those that change nothing left out), a one-line ``reason`` naming
    those that raised the class, and with windows the flows of the window that weighed most
    (0 = the flow itself, k = k flows back)."""
    out = []
    for i, contributions in enumerate(attribution.features):
        order = [g for g in np.argsort(-contributions, kind="stable") if abs(contributions[g]) >= NEGLIGIBLE][:top]
        listed = [
            {"feature": features[g].name, "value": values[i][g], "contribution": round(float(contributions[g]), 6)}
            for g in order
        ]
        raised = [e for e in listed if e["contribution"] > 0][:REASON_FEATURES]
        reason = ", ".join(e["feature"] if e["value"] is None else f"{e['feature']}={e['value']}" for e in raised)
        entry = {"reason": reason or "no single feature: the combination", "explanation": listed}
        if attribution.flows is not None:
            weights = attribution.flows[i]
            last = len(weights) - 1
            heaviest = [t for t in np.argsort(-weights, kind="stable") if weights[t] > 0][:WINDOW_FLOWS]
            entry["window_flows"] = [
                {"back": int(last - t), "contribution": round(float(weights[t]), 6)} for t in heaviest
            ]
            if heaviest:
                back = ", ".join("this flow" if last == t else f"{last - t} back" for t in heaviest)
                entry["reason"] += f"; flows of the window that weighed most: {back}"
        out.append(entry)
    return out


def check_top(top: int) -> int:
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"--explain takes the number of features per alert, at least 1, not {top!r}")
    return top


def _plain(value: object) -> object:
    """A JSON value: numbers as int where whole, else rounded; strings as they are."""
    if value is None:
        return None
    if isinstance(value, (np.floating, float)):
        if not np.isfinite(value):
            return None
        return int(value) if float(value).is_integer() else round(float(value), 4)
    if isinstance(value, (np.integer, int)):
        return int(value)
    return str(value)
