"""Encoders and scalers fitted on training rows only, stored as plain, validated JSON.

Torch-free: the same object turns raw rows into model inputs during training, in attacks,
in ONNX export checks and in the edge detector.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import ConfigError, DataError, PreprocessStateError
from ids_lightning.core.fileio import atomic_write_json, read_json_state
from ids_lightning.core.formats import check_format
from ids_lightning.core.table import RawTable
from ids_lightning.core.windows import MAX_WINDOW

UNKNOWN = "<unknown>"
ENCODINGS = ("label", "onehot", "embedding")
MAX_EMBEDDING_DIM = 8  # per categorical column: min(this, its codes) learned dimensions
SCALERS = ("minmax", "log_minmax", "quantile")
QUANTILES = 1001  # knots of the quantile scaler per column (as scikit-learn's QuantileTransformer)
QUANTILE_LEVELS = np.linspace(0.0, 1.0, QUANTILES)
FORMAT_VERSION = 1


@dataclass
class Preprocessor:
    """Fitted state. Categories exclude ``<unknown>``, which always encodes to code 0.

    ``label`` encoding maps a category to ``code / len(categories)`` (0 = unknown), so it lies
    in [0, 1] like the scaled numbers; ``onehot`` gives one column per category plus one for
    unknown; ``embedding`` passes the code itself (0 = unknown, 1.. = the categories), which
    the net looks up in a learned table (:class:`ids_lightning.models.nets.EmbeddedInputs`).
    Numbers go through ``log1p`` first with ``log_minmax``, then to [0, 1] by the
    training minimum and maximum (clipped to [0, 1] when ``clip``: values beyond the training
    range saturate instead of leaving the box attacks and quantisation assume). ``quantile``
    maps each number to its level among the training values instead (piecewise linear between
    ``numeric_quantiles`` knots, a tied knot at the mean of its levels): heavy-tailed counts
    spread over [0, 1] rather than crowding near 0, and nothing leaves [0, 1].
    """

    dataset: str
    task: str
    class_names: list[str]
    numeric_names: list[str]
    categorical_names: list[str]
    categories: dict[str, list[str]]
    encoding: str
    scaler: str
    clip: bool
    numeric_min: list[float]
    numeric_max: list[float]
    numeric_integer: list[bool]
    version: int = FORMAT_VERSION
    # Flows per model input (core.windows): 1 = one flow, [n, num_features]; above 1,
    # [n, window, num_features + 1], the last channel 1 for a flow and 0 for left padding.
    window: int = 1
    # quantile scaler only: per numeric column, the distinct training quantiles and their levels
    numeric_quantiles: list[list[float]] = field(default_factory=list)
    numeric_levels: list[list[float]] = field(default_factory=list)

    @classmethod
    def fit(
        cls,
        train: RawTable,
        *,
        dataset: str,
        task: str,
        class_names: list[str],
        encoding: str = "label",
        scaler: str = "minmax",
        clip: bool = True,
        window: int = 1,
    ) -> Preprocessor:
        _check_choices(encoding, scaler)
        # the centralised fit is the one-site case of the merge; quantile knots come on top
        return cls.from_statistics(
            site_statistics(train, ranged_scaler(scaler)),
            [np.quantile(column, QUANTILE_LEVELS) for column in train.numeric.T] if scaler == "quantile" else None,
            dataset=dataset, task=task, class_names=class_names, encoding=encoding, scaler=scaler, clip=clip,
            window=window,
        )  # fmt: skip

    @classmethod
    def from_statistics(
        cls,
        statistics: dict,
        quantiles: list[np.ndarray] | None,
        *,
        dataset: str,
        task: str,
        class_names: list[str],
        encoding: str = "label",
        scaler: str = "minmax",
        clip: bool = True,
        window: int = 1,
    ) -> Preprocessor:
        """The preprocessing of training rows known by their :func:`site_statistics` (taken
        under :func:`ranged_scaler`) and, for the quantile scaler, each numeric column's values
        at ``QUANTILES`` evenly spaced levels: what :meth:`fit` and a streamed scan share."""
        fitted = cls.merge(
            [statistics],
            dataset=dataset, task=task, class_names=class_names, encoding=encoding, scaler=ranged_scaler(scaler),
            clip=clip, window=window,
        )  # fmt: skip
        if scaler != "quantile":
            return fitted
        knots = [_quantile_knots(values) for values in quantiles]
        return replace(
            fitted,
            scaler=scaler,
            numeric_quantiles=[values for values, _ in knots],
            numeric_levels=[levels for _, levels in knots],
        )

    @classmethod
    def merge(
        cls,
        sites: list[dict],
        *,
        dataset: str,
        task: str,
        class_names: list[str],
        encoding: str = "label",
        scaler: str = "minmax",
        clip: bool = True,
        window: int = 1,
    ) -> Preprocessor:
        """The preprocessing of the union of several sites' training rows, from each site's
        :func:`site_statistics` alone: minima of minima, maxima of maxima, the union of
        categories (equal to fitting on the pooled rows; no row leaves a site)."""
        _check_choices(encoding, scaler)
        merged = merged_statistics(sites)
        if merged["scaler"] != scaler:
            raise DataError(f"site statistics were taken for scaler {merged['scaler']!r}, not {scaler!r}")
        return cls(
            dataset=dataset,
            task=task,
            class_names=list(class_names),
            numeric_names=list(merged["numeric_names"]),
            categorical_names=list(merged["categorical_names"]),
            categories=merged["categories"],
            encoding=encoding,
            scaler=scaler,
            clip=clip,
            numeric_min=merged["numeric_min"],
            numeric_max=merged["numeric_max"],
            numeric_integer=merged["numeric_integer"],
            window=window,
        )

    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric_names)
        for name in self.categorical_names:
            if self.encoding in ("label", "embedding"):
                names.append(name)
            else:
                names.extend(f"{name}={value}" for value in [UNKNOWN, *self.categories[name]])
        return names

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One model input without the batch axis: ``(features,)`` or ``(window, features + 1)``."""
        return (self.num_features,) if self.window == 1 else (self.window, self.num_features + 1)

    @property
    def embedding_sizes(self) -> list[int]:
        """Codes per categorical column (unknown included) under ``embedding``; else none."""
        if self.encoding != "embedding":
            return []
        return [len(self.categories[name]) + 1 for name in self.categorical_names]

    @property
    def categorical_mask(self) -> list[bool]:
        """Per model-input feature: True where it encodes a categorical column."""
        n_numeric = len(self.numeric_names)
        return [i >= n_numeric for i in range(self.num_features)]

    def transform(self, table: RawTable) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(features float32 [n, num_features], unknown bool [n])``.

        ``unknown`` marks rows with a categorical value never seen in training.
        """
        scaled, codes = self.scale(table)
        return self.encode(scaled, codes), (codes == 0).any(axis=1)

    def scale(self, table: RawTable) -> tuple[np.ndarray, np.ndarray]:
        """The first half of :meth:`transform`: scaled numbers ``[n, numeric]`` and category
        codes ``[n, categorical]`` (0 = unknown). Class balancing works in this space, where a
        synthetic row can take one category instead of a blend of encodings."""
        if table.numeric_names != self.numeric_names:
            raise ValueError("numeric columns differ from the ones preprocessing was fitted on")
        if table.categorical_names != self.categorical_names:
            raise ValueError("categorical columns differ from the ones preprocessing was fitted on")
        if self.scaler == "quantile":
            scaled = np.column_stack(
                [
                    np.interp(column, values, levels)
                    for column, values, levels in zip(table.numeric.T, self.numeric_quantiles, self.numeric_levels)
                ]
            ).reshape(table.numeric.shape)
        else:
            lo = np.asarray(self.numeric_min)
            span = np.asarray(self.numeric_max) - lo
            span[span == 0] = 1.0
            numeric = _log(table.numeric) if self.scaler == "log_minmax" else table.numeric
            scaled = (numeric - lo) / span
        if self.clip:
            np.clip(scaled, 0.0, 1.0, out=scaled)
        codes = (
            np.column_stack(
                [self._codes(name, table.categorical[:, j]) for j, name in enumerate(self.categorical_names)]
            )
            if self.categorical_names
            else np.zeros((len(table), 0), dtype=np.int64)
        )
        return scaled, codes.reshape(len(table), len(self.categorical_names))

    def encode(self, scaled: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The second half of :meth:`transform`: category codes to label or one-hot features."""
        blocks = [scaled.astype(np.float32)]
        for j, name in enumerate(self.categorical_names):
            known = len(self.categories[name])
            column = codes[:, j].astype(np.int64)
            if self.encoding == "label":
                blocks.append((column / max(known, 1)).astype(np.float32)[:, None])
            elif self.encoding == "embedding":
                blocks.append(column.astype(np.float32)[:, None])
            else:
                blocks.append(np.eye(known + 1, dtype=np.float32)[column])
        return np.concatenate(blocks, axis=1)

    def _codes(self, name: str, values: np.ndarray) -> np.ndarray:
        index = {value: code for code, value in enumerate(self.categories[name], start=1)}
        uniques, inverse = np.unique(values.astype(str), return_inverse=True)
        return np.array([index.get(u, 0) for u in uniques], dtype=np.int64)[inverse]

    def encode_labels(self, labels: np.ndarray) -> np.ndarray:
        """Class names to indices; a name outside ``class_names`` is an error."""
        index = {name: i for i, name in enumerate(self.class_names)}
        uniques, inverse = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
        missing = [u for u in uniques if u not in index]
        if missing:
            raise ValueError(f"labels {missing} are not among the classes {self.class_names}")
        return np.array([index[u] for u in uniques], dtype=np.int64)[inverse]

    # --- JSON round trip -------------------------------------------------------------------
    def to_dict(self) -> dict:
        state = asdict(self)
        state["feature_names"] = self.feature_names
        state["categorical_mask"] = self.categorical_mask
        return state

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, state: dict, source: str = "preprocess state") -> Preprocessor:
        _validate(state, source)
        fields = {k: state[k] for k in cls.__dataclass_fields__ if k in state}  # window came later
        return cls(**fields)

    @classmethod
    def load(cls, path: str | Path) -> Preprocessor:
        try:
            state = read_json_state(path)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise PreprocessStateError(f"{path}: not valid JSON ({err})") from err
        except DataError as err:
            raise PreprocessStateError(str(err)) from err
        except RecursionError as err:  # nesting beyond what is read
            raise PreprocessStateError(f"{path}: not a preprocessing state (nested too deep)") from err
        except ValueError as err:  # integers beyond what is read, a key given twice
            raise PreprocessStateError(f"{path}: not a preprocessing state ({str(err)[:200]})") from err
        return cls.from_dict(state, source=str(path))


def _check_choices(encoding: str, scaler: str) -> None:
    if encoding not in ENCODINGS:
        raise ConfigError(f"unknown categorical encoding {encoding!r}; expected {ENCODINGS}")
    if scaler not in SCALERS:
        raise ConfigError(f"unknown scaler {scaler!r}; expected one of {SCALERS}")


def site_statistics(train: RawTable, scaler: str = "minmax") -> dict:
    """What one site's training rows contribute to shared preprocessing, as plain JSON: the row
    count, per numeric column the minimum and maximum (after ``log1p`` under ``log_minmax``) and
    whether every value is whole, per categorical column the categories seen. Quantile knots need
    every row and cannot be merged exactly: refused."""
    if scaler not in ("minmax", "log_minmax"):
        raise ConfigError(f"site statistics merge exactly under minmax or log_minmax, not {scaler!r}")
    transformed = _log(train.numeric) if scaler == "log_minmax" else train.numeric
    empty = len(train) == 0
    return {
        "rows": len(train),
        "scaler": scaler,
        "numeric_names": list(train.numeric_names),
        "categorical_names": list(train.categorical_names),
        "numeric_min": [] if empty else transformed.min(axis=0).tolist(),
        "numeric_max": [] if empty else transformed.max(axis=0).tolist(),
        "numeric_integer": [] if empty else np.all(train.numeric == np.round(train.numeric), axis=0).tolist(),
        "categories": _categories(train),
    }


def merged_statistics(sites: list[dict]) -> dict:
    """The :func:`site_statistics` of the union of several sites' (or chunks') rows, from
    theirs alone: minima of minima, maxima of maxima, the union of categories (equal to taking
    them on the pooled rows)."""
    sites = [site for site in sites if site["rows"]]
    if not sites:
        raise DataError("cannot fit preprocessing on an empty training split")
    for site in sites[1:]:
        for key in ("scaler", "numeric_names", "categorical_names"):
            if site[key] != sites[0][key]:
                raise DataError(f"sites differ in {key}: their statistics cannot be merged")
    names = list(sites[0]["categorical_names"])
    return {
        "rows": sum(site["rows"] for site in sites),
        "scaler": sites[0]["scaler"],
        "numeric_names": list(sites[0]["numeric_names"]),
        "categorical_names": names,
        "numeric_min": np.min([s["numeric_min"] for s in sites], axis=0).tolist(),
        "numeric_max": np.max([s["numeric_max"] for s in sites], axis=0).tolist(),
        "numeric_integer": np.all([s["numeric_integer"] for s in sites], axis=0).tolist(),
        "categories": {name: sorted(set().union(*(s["categories"][name] for s in sites))) for name in names},
    }


def ranged_scaler(scaler: str) -> str:
    """The range scaler whose statistics a scaler's fit starts from (quantile: min-max)."""
    return "log_minmax" if scaler == "log_minmax" else "minmax"


def _categories(train: RawTable) -> dict[str, list[str]]:
    return {
        name: sorted({str(v) for v in train.categorical[:, j]} - {UNKNOWN})
        for j, name in enumerate(train.categorical_names)
    }


def _log(values: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(values, 0.0))


def _quantile_knots(quantiles: np.ndarray) -> tuple[list[float], list[float]]:
    """Distinct values among one column's ``QUANTILES`` quantiles, and their levels; a value
    that fills several levels (a count that is mostly 0) sits at their mean, so ties do not all
    map to 0."""
    values, tie = np.unique(quantiles, return_inverse=True)
    mean_levels = np.bincount(tie, weights=QUANTILE_LEVELS) / np.bincount(tie)
    return values.tolist(), mean_levels.tolist()


_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "version": int,
    "dataset": str,
    "task": str,
    "class_names": list,
    "numeric_names": list,
    "categorical_names": list,
    "categories": dict,
    "encoding": str,
    "scaler": str,
    "clip": bool,
    "numeric_min": list,
    "numeric_max": list,
    "numeric_integer": list,
}


def _validate_quantiles(state: dict, n_numeric: int, fail: Callable[[str], None]) -> None:
    """The quantile scaler's knots: per column, increasing finite values with increasing levels
    in [0, 1]; the other scalers have none."""
    values, levels = state.get("numeric_quantiles", []), state.get("numeric_levels", [])
    expected = n_numeric if state["scaler"] == "quantile" else 0
    if not (isinstance(values, list) and isinstance(levels, list) and len(values) == len(levels) == expected):
        fail(f"numeric_quantiles and numeric_levels must hold {expected} lists under scaler {state['scaler']!r}")
    for name, knots, at in zip(state["numeric_names"], values, levels):
        if not isinstance(knots, list) or not isinstance(at, list) or not 0 < len(knots) == len(at) <= QUANTILES:
            fail(f"quantile knots of {name!r} must be two lists of equal length, 1 to {QUANTILES}")
        numbers = [*knots, *at]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            fail(f"quantile knots of {name!r} must hold numbers")
        knots_array, at_array = np.asarray(knots, dtype=float), np.asarray(at, dtype=float)
        if not (np.all(np.isfinite(knots_array)) and np.all(np.diff(knots_array) > 0)):
            fail(f"quantile knots of {name!r} must be finite and increasing")
        if not (np.all((at_array >= 0) & (at_array <= 1)) and np.all(np.diff(at_array) > 0)):
            fail(f"quantile levels of {name!r} must increase within [0, 1]")


def _validate(state: object, source: str) -> None:
    """Check types, lengths and cross-field consistency; raise one clear error naming the file."""

    def fail(reason: str) -> None:
        raise PreprocessStateError(f"{source}: {reason}")

    if not isinstance(state, dict):
        fail("top level must be a JSON object")
    for key, kind in _SCHEMA.items():
        if key not in state:
            fail(f"missing key {key!r}")
        if not isinstance(state[key], kind) or (kind is int and isinstance(state[key], bool)):
            fail(f"key {key!r} must be of type {kind.__name__}")
    window = state.get("window", 1)
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= MAX_WINDOW:
        fail(f"window must be a whole number from 1 to {MAX_WINDOW}, got {window!r}")
    check_format(state, source, FORMAT_VERSION, key="version")
    if state["encoding"] not in ENCODINGS:
        fail(f"encoding {state['encoding']!r} is not one of {ENCODINGS}")
    if state["scaler"] not in SCALERS:
        fail(f"scaler {state['scaler']!r} is not one of {SCALERS}")
    n_numeric = len(state["numeric_names"])
    for key in ("numeric_min", "numeric_max", "numeric_integer"):
        if len(state[key]) != n_numeric:
            fail(f"{key!r} has {len(state[key])} entries for {n_numeric} numeric columns")
    for key in ("numeric_min", "numeric_max"):
        values = state[key]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            fail(f"{key!r} must hold numbers")
        if not np.all(np.isfinite(values)):
            fail(f"{key!r} must hold finite numbers")
    if any(lo > hi for lo, hi in zip(state["numeric_min"], state["numeric_max"])):
        fail("numeric_min exceeds numeric_max")
    _validate_quantiles(state, n_numeric, fail)
    names = [*state["numeric_names"], *state["categorical_names"], *state["class_names"]]
    if not all(isinstance(name, str) for name in names):
        fail("column and class names must be strings")
    if len(state["class_names"]) < 2 or len(set(state["class_names"])) != len(state["class_names"]):
        fail("class_names must hold at least two distinct names")
    if set(state["categories"]) != set(state["categorical_names"]):
        fail("categories must have exactly one entry per categorical column")
    for name, values in state["categories"].items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            fail(f"categories of {name!r} must be a list of strings")
    if "feature_names" in state:
        rebuilt = Preprocessor(**{k: state[k] for k in Preprocessor.__dataclass_fields__ if k in state})
        if state["feature_names"] != rebuilt.feature_names:
            fail("feature_names do not match the numeric columns and categories")
