"""A raw, parsed but unencoded table of flows: the common currency between parsers and encoders."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RawTable:
    """Parsed rows of one or more files, before encoding and scaling.

    ``numeric`` holds float64 values, ``categorical`` strings, ``labels`` the label under the
    chosen task (a class name), ``line`` the 1-based source line of each row, and ``skipped``
    the ``(source, line, reason)`` of rows dropped under ``bad_rows=skip``. ``meta`` holds
    per-row fields that are never features (flow ids, addresses, capture names, raw labels).
    """

    numeric: np.ndarray
    categorical: np.ndarray
    labels: np.ndarray
    numeric_names: list[str]
    categorical_names: list[str]
    line: np.ndarray
    source: np.ndarray
    skipped: list[tuple[str, int, str]] = field(default_factory=list)
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> RawTable:
        """Rows at ``index`` (skip records stay with the table they came from)."""
        return RawTable(
            numeric=self.numeric[index],
            categorical=self.categorical[index],
            labels=self.labels[index],
            numeric_names=self.numeric_names,
            categorical_names=self.categorical_names,
            line=self.line[index],
            source=self.source[index],
            skipped=list(self.skipped),
            meta={key: values[index] for key, values in self.meta.items()},
        )

    def with_labels(self, labels: np.ndarray) -> RawTable:
        return RawTable(
            self.numeric,
            self.categorical,
            np.asarray(labels, dtype=object),
            self.numeric_names,
            self.categorical_names,
            self.line,
            self.source,
            list(self.skipped),
            dict(self.meta),
        )


def concat(tables: list[RawTable]) -> RawTable:
    """Rows of several tables with the same columns, in order (metadata both tables have)."""
    if not tables:
        raise ValueError("nothing to concatenate")
    first = tables[0]
    for table in tables[1:]:
        if (table.numeric_names, table.categorical_names) != (first.numeric_names, first.categorical_names):
            raise ValueError("tables to concatenate have different columns")
    keys = [key for key in first.meta if all(key in t.meta for t in tables)]
    return RawTable(
        numeric=np.concatenate([t.numeric for t in tables]),
        categorical=np.concatenate([t.categorical for t in tables]),
        labels=np.concatenate([t.labels for t in tables]),
        numeric_names=list(first.numeric_names),
        categorical_names=list(first.categorical_names),
        line=np.concatenate([t.line for t in tables]),
        source=np.concatenate([t.source for t in tables]),
        skipped=[row for t in tables for row in t.skipped],
        meta={key: np.concatenate([t.meta[key] for t in tables]) for key in keys},
    )
