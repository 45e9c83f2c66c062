"""A raw, parsed but unencoded table of flows: the common currency between parsers and encoders."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RawTable:
    """Parsed rows of one or more files, before encoding and scaling.

    ``numeric`` holds float64 values, ``categorical`` strings, ``labels`` the label under the
    chosen task (a class name), ``line`` the 1-based source line of each row, and ``skipped``
    the ``(source, line, reason)`` of rows dropped under ``bad_rows=skip``.
    """

    numeric: np.ndarray
    categorical: np.ndarray
    labels: np.ndarray
    numeric_names: list[str]
    categorical_names: list[str]
    line: np.ndarray
    source: np.ndarray
    skipped: list[tuple[str, int, str]] = field(default_factory=list)

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
        )
