"""NSL-KDD (Tavallaee et al. 2009): the spec, attack families and a strict row parser.

Rows are ``41 features, attack name[, difficulty]`` separated by commas, no header. The
difficulty score is never a feature. Splits: ``official`` tests on KDDTest+ (17 attack names
that training never sees), ``random`` is the seed paper's stratified 70/15/15 of KDDTrain+.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ids_lightning.core.columns import report_invalid_numbers, to_float_column
from ids_lightning.core.errors import DataError, MalformedRowError, check_choice
from ids_lightning.core.fileio import TruncatedFileError, open_text, text_lines
from ids_lightning.core.spec import DatasetSpec, Download, LineReader, Split
from ids_lightning.core.table import RawTable, concat

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

FAMILY_CLASSES = ("normal", "DoS", "Probe", "R2L", "U2R")
BINARY_CLASSES = ("normal", "attack")


def parse_lines(
    lines: Iterable[str],
    source: str,
    first_line: int = 1,
    bad_rows: str = "error",
    require_label: bool = True,
    problems: dict[int, str] | None = None,
) -> RawTable:
    """Parse NSL-KDD rows; ``labels`` are attack names. Bad rows raise or are skipped and counted.

    A bad row has the wrong field count, a non-numeric, non-finite or negative number, or an
    attack name that NSL-KDD does not have. With ``bad_rows="error"`` the first one (by line)
    raises :class:`MalformedRowError`. Without ``require_label`` (scoring unlabelled traffic)
    rows of the 41 features alone are accepted too; their label is None.
    """
    check_choice("bad_rows", bad_rows, ("error", "skip"))
    issues: dict[int, str] = dict(problems or {})
    rows: list[list[str]] = []
    row_lines: list[int] = []
    widths = (LABEL_FIELD + 1, LABEL_FIELD + 2) if require_label else (LABEL_FIELD, LABEL_FIELD + 1, LABEL_FIELD + 2)
    for line_no, text in enumerate(lines, start=first_line):
        if line_no in issues:
            continue
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
    tables = list(iter_chunks(path, 1_000_000, bad_rows))
    if not tables:
        raise DataError(f"{path}: no data rows")
    return concat(tables)


def iter_chunks(
    path: str | Path, chunk_rows: int, bad_rows: str = "error", require_label: bool = True
) -> Iterator[RawTable]:
    """Tables of ``chunk_rows`` lines each; unreadable lines (bad bytes, over-long) are bad rows."""
    reader = NslLines(str(path), bad_rows, require_label)
    with open_text(path) as handle:
        try:
            for number, text, problem in text_lines(handle, path):
                reader.feed(number, text, problem)
                if len(reader) == chunk_rows:
                    yield reader.take()
        except TruncatedFileError:
            if reader.pending:  # the whole lines before the cut are rows like any other
                yield reader.take()
            raise
        if reader.pending:
            yield reader.take()


class NslLines(LineReader):
    """NSL-KDD lines (no header), parsed a batch at a time by :func:`parse_lines`."""

    def __init__(self, source: str, bad_rows: str, require_label: bool):
        self.source, self.bad_rows, self.require_label = source, bad_rows, require_label
        self.batch: list[tuple[int, str, str | None]] = []

    def feed(self, number: int, text: str, problem: str | None = None) -> None:
        self.batch.append((number, text, problem))

    def __len__(self) -> int:
        return len(self.batch)

    @property
    def pending(self) -> bool:
        return bool(self.batch)

    def take(self) -> RawTable:
        problems = {number: problem for number, _, problem in self.batch if problem}
        texts = [text for _, text, _ in self.batch]
        table = parse_lines(texts, self.source, self.batch[0][0], self.bad_rows, self.require_label, problems)
        self.batch = []
        return table


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
            lineterminator="\n",  # as the line reader counts lines: a lone CR fails over to it
            engine="c",
        )
    except (ValueError, pd.errors.ParserError, EOFError, OSError, zlib.error):
        return None  # the line-by-line reader names what is wrong
    if frame.empty:
        return None  # the line-by-line reader says the file has no rows
    if any(frame[i].str.contains("\r", regex=False).any() for i in [*_CATEGORICAL_IDX, LABEL_FIELD]):
        return None  # a lone carriage return: the line reader names its line
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


class NSLKDD(DatasetSpec):
    name = "nsl_kdd"
    title = "NSL-KDD"
    tasks = {"family": FAMILY_CLASSES, "binary": BINARY_CLASSES, "attack": None}
    splits = {"official": Split("test_files"), "random": Split("random")}
    type_task = "attack"
    benign = frozenset({"normal"})
    never_features = ("attack name", "difficulty")
    downloads = {
        f"nsl_kdd/{TRAIN_FILE}": Download(
            "1b86d2f957b33082081bba410fe129b475efebcc13c9014c3f447c8271aadf95",
            ("https://raw.githubusercontent.com/defcom17/NSL_KDD/master/KDDTrain%2B.txt",),
        ),
        f"nsl_kdd/{TEST_FILE}": Download(
            "fa46b0935342616aa83b7c2578db355b6a7aaabbc492248172c7a1e8b7ab8f84",
            (
                "https://raw.githubusercontent.com/dnyaneshpadol/Attack-Detection-ML/"
                "ba202dfe46c66b40cf30088dbaf5cf9d6d4fc9dd/dataset/KDDTest%2B.txt",
                "https://raw.githubusercontent.com/defcom17/NSL_KDD/master/KDDTest%2B.txt",
            ),
        ),
    }
    source_hint = (
        "Get them from https://www.unb.ca/cic/datasets/nsl.html (NSL-KDD.zip holds KDDTrain+.txt and "
        "KDDTest+.txt), plain or gzipped, into nsl_kdd/ under the data root."
    )

    def sniff_head(self, head: list[str], source: str) -> str:
        """An NSL-KDD file if one of its first lines is an NSL-KDD row (labelled or not)."""
        for text in head:
            fields = text.rstrip("\r\n").split(",")
            labelled = len(fields) in (LABEL_FIELD + 1, LABEL_FIELD + 2) and (
                fields[LABEL_FIELD].strip().rstrip(".") in ATTACK_FAMILY
            )
            if labelled or (len(fields) == LABEL_FIELD and fields[1] in ("tcp", "udp", "icmp")):
                return self.name
        raise DataError(
            f"{source}: no NSL-KDD row (41 comma-separated features, attack name, difficulty) in its first lines"
        )

    def line_reader(self, head, source, *, bad_rows="skip", require_labels=False, **options) -> NslLines:
        return NslLines(source, bad_rows, require_labels)

    def iter_tables(
        self, path, *, chunk_rows=1_000_000, bad_rows="error", engine="auto", require_labels=True, keep_ids=True
    ) -> Iterator[RawTable]:
        return iter_chunks(path, chunk_rows, bad_rows, require_labels)

    def read_file(self, path, *, bad_rows="error", engine="auto", keep_ids=False) -> RawTable:
        return read_file(path, bad_rows)

    def task_labels(self, table: RawTable, task: str) -> np.ndarray:
        """Attack names to families, normal/attack, or the names themselves."""
        check_choice("NSL-KDD task", task, self.tasks)
        names = table.labels
        if task == "attack":
            return names
        out = np.full(len(names), None, dtype=object)
        for i, name in enumerate(names):
            if name is not None:
                family = ATTACK_FAMILY[name]
                out[i] = family if task == "family" else ("normal" if family == "normal" else "attack")
        return out


SPEC = NSLKDD()
