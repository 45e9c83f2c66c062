"""NSL-KDD text format: column names, attack families, task labels and a strict row parser.

Rows are ``41 features, attack name[, difficulty]`` separated by commas, no header.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ids_lightning.errors import MalformedRowError
from ids_lightning.fileio import open_text
from ids_lightning.formats.columns import report_invalid_numbers, to_float_column
from ids_lightning.table import RawTable

FEATURES = [
    "duration",
    "protocol_type",
    "service",
    "flag",
    "src_bytes",
    "dst_bytes",
    "land",
    "wrong_fragment",
    "urgent",
    "hot",
    "num_failed_logins",
    "logged_in",
    "num_compromised",
    "root_shell",
    "su_attempted",
    "num_root",
    "num_file_creations",
    "num_shells",
    "num_access_files",
    "num_outbound_cmds",
    "is_host_login",
    "is_guest_login",
    "count",
    "srv_count",
    "serror_rate",
    "srv_serror_rate",
    "rerror_rate",
    "srv_rerror_rate",
    "same_srv_rate",
    "diff_srv_rate",
    "srv_diff_host_rate",
    "dst_host_count",
    "dst_host_srv_count",
    "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate",
    "dst_host_srv_diff_host_rate",
    "dst_host_serror_rate",
    "dst_host_srv_serror_rate",
    "dst_host_rerror_rate",
    "dst_host_srv_rerror_rate",
]
CATEGORICAL = ["protocol_type", "service", "flag"]
NUMERIC = [name for name in FEATURES if name not in CATEGORICAL]
_NUMERIC_IDX = [FEATURES.index(name) for name in NUMERIC]
_CATEGORICAL_IDX = [FEATURES.index(name) for name in CATEGORICAL]
LABEL_FIELD = len(FEATURES)  # the attack name follows the 41 features

TRAIN_FILE = "KDDTrain+.txt"
TEST_FILE = "KDDTest+.txt"

# Every attack name of KDDTrain+ and KDDTest+ (17 of them occur only in KDDTest+).
ATTACK_FAMILY = {"normal": "normal"}
for _family, _names in {
    "DoS": "back land neptune pod smurf teardrop apache2 mailbomb processtable udpstorm worm",
    "Probe": "ipsweep nmap portsweep satan mscan saint",
    "R2L": "ftp_write guess_passwd imap multihop phf spy warezclient warezmaster httptunnel "
    "named sendmail snmpgetattack snmpguess xlock xsnoop",
    "U2R": "buffer_overflow loadmodule perl rootkit ps sqlattack xterm",
}.items():
    ATTACK_FAMILY.update(dict.fromkeys(_names.split(), _family))

TASKS = ("family", "binary", "attack")
FAMILY_CLASSES = ["normal", "DoS", "Probe", "R2L", "U2R"]
BINARY_CLASSES = ["normal", "attack"]


def task_labels(attack_names: np.ndarray, task: str) -> np.ndarray:
    """Map attack names to class names of ``task`` (family and binary cover every known name)."""
    if task == "attack":
        return attack_names
    families = np.array([ATTACK_FAMILY[name] for name in attack_names], dtype=object)
    if task == "family":
        return families
    if task == "binary":
        return np.where(families == "normal", "normal", "attack").astype(object)
    raise ValueError(f"unknown NSL-KDD task {task!r}; expected one of {TASKS}")


def parse_lines(
    lines: Iterable[str], source: str, first_line: int = 1, bad_rows: str = "error", require_label: bool = True
) -> RawTable:
    """Parse NSL-KDD rows; ``labels`` are attack names. Bad rows raise or are skipped and counted.

    A bad row has the wrong field count, a non-numeric, non-finite or negative number, or an
    attack name that NSL-KDD does not have. With ``bad_rows="error"`` the first one (by line)
    raises :class:`MalformedRowError`. Without ``require_label`` (scoring unlabelled traffic)
    rows of the 41 features alone are accepted too; their label is None.
    """
    if bad_rows not in ("error", "skip"):
        raise ValueError(f"bad_rows must be 'error' or 'skip', not {bad_rows!r}")
    issues: dict[int, str] = {}
    rows: list[list[str]] = []
    row_lines: list[int] = []
    widths = (LABEL_FIELD + 1, LABEL_FIELD + 2) if require_label else (LABEL_FIELD, LABEL_FIELD + 1, LABEL_FIELD + 2)
    for line_no, text in enumerate(lines, start=first_line):
        fields = text.rstrip("\r\n").split(",")
        if len(fields) not in widths:
            issues[line_no] = (
                f"expected {LABEL_FIELD + 2} comma-separated fields (41 features, attack name, "
                f"difficulty), found {len(fields)}"
            )
            continue
        rows.append(fields)
        row_lines.append(line_no)

    lines_arr = np.asarray(row_lines, dtype=np.int64)

    def report(row: int, reason: str) -> None:
        issues.setdefault(int(lines_arr[row]), reason)

    columns = list(zip(*(r[:LABEL_FIELD] for r in rows))) if rows else [()] * LABEL_FIELD
    numeric = np.empty((len(rows), len(NUMERIC)), dtype=np.float64)
    for out_col, idx in enumerate(_NUMERIC_IDX):
        numeric[:, out_col] = to_float_column(columns[idx], FEATURES[idx], report)
    report_invalid_numbers(numeric, NUMERIC, report)
    categorical = np.array([columns[idx] for idx in _CATEGORICAL_IDX], dtype=object).T
    categorical = categorical.reshape(len(rows), len(CATEGORICAL))
    attacks = np.array(
        [row[LABEL_FIELD].strip().rstrip(".") if len(row) > LABEL_FIELD else None for row in rows], dtype=object
    )
    for row in np.flatnonzero([name is not None and name not in ATTACK_FAMILY for name in attacks]):
        report(int(row), f"unknown attack name {attacks[row]!r}")

    if issues and bad_rows == "error":
        first = min(issues)
        raise MalformedRowError(source, first, issues[first])
    keep = ~np.isin(lines_arr, np.fromiter(issues, dtype=np.int64, count=len(issues)))
    return RawTable(
        numeric=numeric[keep],
        categorical=categorical[keep],
        labels=attacks[keep],
        numeric_names=list(NUMERIC),
        categorical_names=list(CATEGORICAL),
        line=lines_arr[keep],
        source=np.full(int(keep.sum()), source, dtype=object),
        skipped=[(source, line, reason) for line, reason in sorted(issues.items())],
    )


def read_file(path: str | Path, bad_rows: str = "error") -> RawTable:
    """Read a whole NSL-KDD file (``.txt`` or ``.txt.gz``).

    A clean file goes through pandas' C parser (ten times faster than Python here); a file that
    it rejects, or whose values fail the checks, is re-read line by line by :func:`parse_lines`,
    which names the bad lines. Both give the same table for a clean file (tested).
    """
    table = _read_clean_file_fast(path)
    if table is not None:
        return table
    with open_text(path) as handle:
        return parse_lines(handle, str(path), bad_rows=bad_rows)


def _read_clean_file_fast(path: str | Path) -> RawTable | None:
    try:
        import pandas as pd
    except ImportError:  # the edge install has numpy only
        return None
    dtypes: dict[int, type] = {i: np.float64 for i in _NUMERIC_IDX}
    dtypes.update({i: str for i in [*_CATEGORICAL_IDX, LABEL_FIELD]})
    dtypes[LABEL_FIELD + 1] = np.float64
    try:
        frame = pd.read_csv(
            path,
            header=None,
            names=range(LABEL_FIELD + 2),
            dtype=dtypes,
            na_filter=False,
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        return None
    numeric = frame[_NUMERIC_IDX].to_numpy(dtype=np.float64)
    attacks = frame[LABEL_FIELD].str.strip().str.rstrip(".").to_numpy(dtype=object)
    if not (np.isfinite(numeric).all() and (numeric >= 0).all()):
        return None
    if not all(name in ATTACK_FAMILY for name in set(attacks)):
        return None
    return RawTable(
        numeric=numeric,
        categorical=frame[_CATEGORICAL_IDX].to_numpy(dtype=object),
        labels=attacks,
        numeric_names=list(NUMERIC),
        categorical_names=list(CATEGORICAL),
        line=np.arange(1, len(frame) + 1, dtype=np.int64),
        source=np.full(len(frame), str(path), dtype=object),
    )
