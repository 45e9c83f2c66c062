"""Windows over each source host's preceding flows, and host-context features over them.

A windowed sample is a flow plus the ``window - 1`` flows the same source host made before it,
in the order the sensor logged them (Zeek writes a record when its connection ends; a streaming
detector sees exactly that order, so offline and streamed windows agree). Windows never cross
files, and they are built inside one split's table, so a test flow never sits in a training
window. A window is an index row: ``window`` row numbers, left-padded with ``PAD``.

Context features (in the spirit of Slips' per-host time windows and Kitsune's per-host
statistics) summarise the same window as a few numbers that any model, a random forest
included, can use: how many flows it holds, the share left unanswered, the share to the same
peer and to the same port as the current flow, and the mean and spread of the gaps between
flow start times.
"""

from __future__ import annotations

import numpy as np

from ids_lightning.core.errors import ConfigError
from ids_lightning.core.table import RawTable

PAD = -1  # index of a padding position in a window
CONTEXT_FEATURES = ("ctx_flows", "ctx_unanswered", "ctx_same_peer", "ctx_same_port", "ctx_gap_mean", "ctx_gap_std")
BLOCK_WINDOWS = 8  # a random split of a windowed dataset moves blocks of 8 windows' worth of a host's flows
_ROWS_PER_PASS = 65_536  # bounds the [rows, window] temporaries of the context features


MAX_WINDOW = 4096  # flows per sample: training, preprocess.json and the detector share this limit


def check_window(window: int, spec) -> None:
    """A window from 1 to ``MAX_WINDOW`` (the limit the detector and ``preprocess.json`` hold
    too, so what trains also exports and scores), and above 1 only for a dataset whose spec names
    source hosts and times."""
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= MAX_WINDOW:
        raise ConfigError(f"dataset.window must be a whole number from 1 to {MAX_WINDOW}, got {window!r}")
    if window > 1 and (spec.host_column is None or spec.time_column is None):
        raise ConfigError(
            f"dataset.window={window}: {spec.title} has no source hosts and times to build windows from "
            "(its records have no order in time); use dataset.window=1"
        )


def codes(values: np.ndarray) -> np.ndarray:
    """Integer codes of any values (equal values, equal codes)."""
    _, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def host_groups(table: RawTable, host_column: str) -> np.ndarray:
    """One code per (file, source host): the rows a window may span."""
    if host_column not in table.meta:
        raise ConfigError(f"{table.source[0] if len(table) else 'table'}: the rows have no {host_column!r} for windows")
    source = np.asarray(table.source, dtype=str)
    host = np.asarray(table.meta[host_column], dtype=str)
    return codes(np.char.add(np.char.add(source, "\x00"), host))


def _sorted_by_group(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered by group, stably (each group's rows keep their row order), and each sorted
    row's rank within its group."""
    n = len(groups)
    order = np.argsort(groups, kind="stable")
    grouped = groups[order]
    first = np.ones(n, dtype=bool)
    first[1:] = grouped[1:] != grouped[:-1]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0)) if n else np.zeros(0, np.int64)
    return order, np.arange(n) - group_start


def window_index(groups: np.ndarray, window: int) -> np.ndarray:
    """``[n, window]`` int64 row numbers: row ``i``'s window ends with ``i``, preceded by the
    earlier rows of its group in row order, left-padded with ``PAD``."""
    n = len(groups)
    order, rank = _sorted_by_group(groups)
    positions = np.arange(n)[:, None] + np.arange(1 - window, 1)[None, :]
    valid = positions >= (np.arange(n) - rank)[:, None]
    sorted_windows = np.where(valid, order[np.clip(positions, 0, None)], PAD)
    windows = np.empty((n, window), dtype=np.int64)
    windows[order] = sorted_windows
    return windows


def rank_in_group(groups: np.ndarray) -> np.ndarray:
    """Each row's place among the earlier rows of its group (0 for a group's first row)."""
    order, rank = _sorted_by_group(groups)
    ranks = np.empty(len(groups), dtype=np.int64)
    ranks[order] = rank
    return ranks


def last_per_group(groups: np.ndarray, keep: int) -> np.ndarray:
    """Row numbers, in row order, of the last ``keep`` rows of each group."""
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    from_end = counts[inverse.reshape(-1)] - 1 - rank_in_group(groups)
    return np.flatnonzero(from_end < keep)


def block_groups(groups: np.ndarray, block: int) -> np.ndarray:
    """Codes of consecutive blocks of ``block`` rows within each group (in row order): the units
    a random split of a windowed dataset moves, so that a window rarely straddles two splits."""
    order, rank = _sorted_by_group(groups)
    blocks = np.empty(len(groups), dtype=np.int64)
    blocks[order] = codes(np.char.add(np.char.add(groups[order].astype(str), ":"), (rank // block).astype(str)))
    return blocks


def context_inputs(table: RawTable, spec) -> dict[str, np.ndarray]:
    """What the context features read from a table: start time, peer and port (as strings),
    and whether the peer never answered (no reply packets)."""
    if spec.peer_columns is None or spec.reply_packets is None:
        raise ConfigError(f"{spec.title} names no peers and replies for context features")
    missing = [k for k in (spec.time_column, *spec.peer_columns) if k not in table.meta]
    if missing or spec.reply_packets not in table.numeric_names:
        raise ConfigError(f"{spec.title}: rows lack {missing or [spec.reply_packets]} for context features")
    peer, port = spec.peer_columns
    return {
        "time": _seconds(table.meta[spec.time_column]),
        "peer": np.asarray(table.meta[peer], dtype=str),
        "port": np.asarray(table.meta[port], dtype=str),
        "unanswered": table.numeric[:, table.numeric_names.index(spec.reply_packets)] == 0,
    }


def _seconds(values: np.ndarray) -> np.ndarray:
    """Times as float seconds; a missing or unreadable time counts as 0 (no gap information)."""
    try:
        times = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        times = np.array([_float_or_nan(v) for v in values], dtype=np.float64)
    return np.nan_to_num(times, nan=0.0, posinf=0.0, neginf=0.0)


def _float_or_nan(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def context_features(windows: np.ndarray, inputs: dict[str, np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
    """``[len(rows), len(CONTEXT_FEATURES)]`` float64 over the windows of ``rows`` (default all);
    window positions index ``inputs``. Gaps are absolute differences of start times between
    neighbouring flows of the window (seconds), since logged order is not start order."""
    rows = np.arange(len(windows)) if rows is None else rows
    peer, port = codes(inputs["peer"]), codes(inputs["port"])
    out = np.zeros((len(rows), len(CONTEXT_FEATURES)))
    for lo in range(0, len(rows), _ROWS_PER_PASS):
        part = rows[lo : lo + _ROWS_PER_PASS]
        w = windows[part]
        valid = w != PAD
        at = np.where(valid, w, part[:, None])
        count = valid.sum(axis=1)
        current = part[:, None]
        gaps = np.abs(np.diff(inputs["time"][at], axis=1))
        gap_valid = valid[:, 1:] & valid[:, :-1]
        n_gaps = np.maximum(gap_valid.sum(axis=1), 1)
        gap_mean = np.where(gap_valid, gaps, 0).sum(axis=1) / n_gaps
        gap_var = np.where(gap_valid, (gaps - gap_mean[:, None]) ** 2, 0).sum(axis=1) / n_gaps
        out[lo : lo + len(part)] = np.column_stack(
            [
                count,
                (inputs["unanswered"][at] & valid).sum(axis=1) / count,
                ((peer[at] == peer[current]) & valid).sum(axis=1) / count,
                ((port[at] == port[current]) & valid).sum(axis=1) / count,
                gap_mean,
                np.sqrt(gap_var),
            ]
        )
    return out


def with_context(table: RawTable, windows: np.ndarray, spec) -> RawTable:
    """The table with the context features of each row's window as extra numeric columns."""
    return add_numeric(table, context_features(windows, context_inputs(table, spec)))


def add_numeric(table: RawTable, extra: np.ndarray) -> RawTable:
    """The table with ``extra`` as the context-feature columns."""
    return RawTable(
        numeric=np.concatenate([table.numeric, extra], axis=1),
        categorical=table.categorical,
        labels=table.labels,
        numeric_names=[*table.numeric_names, *CONTEXT_FEATURES],
        categorical_names=table.categorical_names,
        line=table.line,
        source=table.source,
        skipped=list(table.skipped),
        meta=dict(table.meta),
    )


def padded_table(features: np.ndarray) -> np.ndarray:
    """``[n + 1, F + 1]`` float32: each row followed by a 1 (a flow), then the all-zero row that
    padding positions point at (the padding convention of windowed model inputs)."""
    n, width = features.shape
    table = np.zeros((n + 1, width + 1), dtype=np.float32)
    table[:n, :width] = features
    table[:n, width] = 1.0
    return table


def pointing_at_pad(windows: np.ndarray, n: int) -> np.ndarray:
    """Windows with ``PAD`` replaced by ``n``, the padding row of :func:`padded_table`."""
    return np.where(windows == PAD, n, windows)


class WindowedRows:
    """Model inputs of windowed samples, gathered when sliced: ``self[i:j]`` is
    ``[j - i, window, F + 1]`` (the numpy twin of the training side's ``WindowedFeatures``), so
    scoring a chunk never holds a window-fold copy of it."""

    def __init__(self, features: np.ndarray, windows: np.ndarray):
        self.table = padded_table(features)
        self.windows = pointing_at_pad(windows, len(features))

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index) -> np.ndarray:
        return self.table[self.windows[index]]

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.windows), self.windows.shape[1], self.table.shape[1])


def windowed(features: np.ndarray, windows: np.ndarray) -> WindowedRows:
    """Model inputs of ``features`` rows over ``windows`` (``PAD`` for padding)."""
    return WindowedRows(features, windows)
