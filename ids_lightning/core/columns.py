"""Vectorised conversion of parsed text columns to numbers, with per-row error reporting."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def to_float_column(
    values: Sequence[str],
    name: str,
    report: Callable[[int, str], None],
    parse: Callable[[str], float] = float,
) -> np.ndarray:
    """Convert strings to float64; report ``(row, reason)`` for each unparsable value (set to NaN).

    The fast path is one numpy cast; only a column that fails it is walked value by value.
    """
    if parse is float:
        try:
            return np.array(values, dtype=np.float64)
        except ValueError:
            pass
    out = np.empty(len(values), dtype=np.float64)
    for row, text in enumerate(values):
        try:
            out[row] = parse(text)
        except ValueError:
            out[row] = np.nan
            report(row, f"column {name!r}: {text!r} is not a number")
    return out


def report_invalid_numbers(
    matrix: np.ndarray,
    names: Sequence[str],
    report: Callable[[int, str], None],
    non_negative: bool = True,
) -> None:
    """Report NaN/inf (and, optionally, negative) cells; a row may be reported more than once."""
    finite = np.isfinite(matrix)
    bad = ~finite
    if non_negative:
        bad |= finite & (matrix < 0)
    for row, col in zip(*np.nonzero(bad)):
        value = float(matrix[row, col])
        why = "is not finite" if not np.isfinite(value) else "is negative"
        report(int(row), f"column {names[col]!r}: {value!r} {why}")


def report_invalid_values(
    columns: dict[str, np.ndarray],
    names: Sequence[str],
    line: np.ndarray,
    report: Callable[[int, str], None],
    ports: Sequence[str] = (),
    kind: str = "value",
) -> None:
    """Report, by file line, NaN/inf/negative values of ``names`` and ports above 65,535: the
    checks every flow format shares (a row may be reported more than once)."""
    for name in names:
        values = columns[name]
        bad = ~np.isfinite(values) | (values < 0)
        if name in ports:
            bad |= values > 65535
        what = "port" if name in ports else kind
        for i in np.flatnonzero(bad):
            report(line[i], f"field {name!r}: {float(values[i])!r} is not a valid {what}")
