"""IoT-23 (Stratosphere Lab): the spec and its reader for Zeek ``conn.log.labeled`` files (both
public variants) and their CSV exports.

Features are what a flow does, never who it is: durations, byte and packet counts, ports (as
numbers and as IANA ranges), protocol, service, connection state and the ``history`` string as
per-letter counts. ``uid``, ``ts`` and addresses are kept as row metadata only, with the
capture name (the partition key of ``by_capture`` splits and federated sites).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from ids_lightning.core.columns import report_invalid_values
from ids_lightning.core.delimited import Layout, LineParser, RowReporter, TextChunk, read_chunks, sniff_delimiter
from ids_lightning.core.errors import DataError, check_choice
from ids_lightning.core.files import data_stem
from ids_lightning.core.spec import DatasetSpec, Split, TableLines, read_head
from ids_lightning.core.table import RawTable

FIELDS = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "local_orig",
    "local_resp",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "tunnel_parents",
    "label",
    "detailed-label",
]
ALIASES = {"det_label": "detailed-label", "detailed_label": "detailed-label"}
COUNTS = [
    "duration",
    "orig_bytes",
    "resp_bytes",
    "missed_bytes",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
]
PORTS = ("id.orig_p", "id.resp_p")
NUMERIC_FIELDS = frozenset(["ts", *PORTS, *COUNTS])  # the fields read as numbers
HISTORY_LETTERS = "SHADFRCGITQW"  # Zeek conn history: upper case = originator, lower = responder
NUMERIC = [
    *COUNTS,
    "orig_port",
    "resp_port",
    *(f"history_orig_{c}" for c in HISTORY_LETTERS),
    *(f"history_resp_{c.lower()}" for c in HISTORY_LETTERS),
    "history_length",
    "history_flipped",
]
CATEGORICAL = ["proto", "service", "conn_state", "orig_port_range", "resp_port_range"]
REQUIRED = [
    *PORTS,
    "proto",
    "service",
    "conn_state",
    "history",
    *COUNTS,
    "label",
    "detailed-label",
]
META = ["uid", "ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
LABELS = ("benign", "malicious")
UNSET = "-"  # how an unset categorical value is encoded (a category of its own)


def _normalise(name: str) -> str:
    return ALIASES.get(name.strip(), name.strip())


# what a Zeek JSON conn record must hold (Zeek leaves unset fields out of a JSON record)
JSON_REQUIRED = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto")


def variant_of(head: list[str], source: str | Path) -> str:
    """``zeek`` (a ``#separator`` header), ``json`` (Zeek's JSON writer: one conn record per
    line) or ``csv`` (a header row naming Zeek fields), from a file's first lines."""
    first = head[0] if head else ""
    if first.startswith("#separator"):
        return "zeek"
    if first.startswith("{"):
        try:
            record = json.loads(first)
        except ValueError:
            record = None
        if isinstance(record, dict) and {"uid", "id.orig_h"} <= set(record):
            return "json"
    if "uid" in first and "proto" in first:
        return "csv"
    raise DataError(
        f"{source}:1: neither a Zeek log (a #separator header, or Zeek JSON records) nor an IoT-23 CSV export header"
    )


def layout_of(path: str | Path, require_labels: bool = True) -> Layout:
    """The layout a file's header declares (Zeek ``#``-lines, a CSV row, or Zeek JSON's fields)."""
    head = read_head(path)
    return head_layout(variant_of(head, path), head, path, require_labels)


def head_layout(kind: str, head: list[str], source: str | Path, require_labels: bool) -> Layout:
    """The layout of a file or stream of variant ``kind`` from its first lines."""
    if kind == "zeek":
        header = [
            line.rstrip("\r\n")
            for line in head[: next((i for i, x in enumerate(head) if not x.startswith("#")), len(head))]
        ]
        return zeek_layout(header, source, 1, require_labels)
    if kind == "json":
        labelled = "label" in json.loads(head[0])
        names = FIELDS if labelled else FIELDS[:-2]
        layout = Layout(list(names), "", 0, (UNSET,), NUMERIC_FIELDS, json_required=JSON_REQUIRED)
        _check_fields(layout, source, 1, require_labels)
        return layout
    first = head[0].rstrip("\r\n")
    delimiter = sniff_delimiter(first)
    names = [_normalise(n) for n in first.split(delimiter)]
    layout = Layout(names, delimiter, 1, ("", "-"), NUMERIC_FIELDS & set(names), quoted=True)
    _check_fields(layout, source, 1, require_labels)
    return layout


def zeek_layout(
    header: list[str], path: str | Path, first: int, require_labels: bool, previous: Layout | None = None
) -> Layout:
    """The layout a block of Zeek header lines declares (``first``: the number of its first line).
    A block that starts mid-file (logs joined, or rotated into one) keeps the separator and the
    unset/empty tokens it does not restate; the rows after it are read in its column order."""
    separator = previous.delimiter if previous else "\t"
    meta: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(header, start=first):
        if line.startswith("#separator "):
            separator = _separator(line, path, number)
            continue
        key, _, value = line.partition(separator)
        meta.setdefault(key, (number, value))
    if "#fields" not in meta:
        raise DataError(f"{path}: Zeek header has no #fields line")
    fields_line, fields = meta["#fields"]
    names = [_normalise(n) for n in fields.split(separator)]
    old_nulls = previous.null_values if previous else ("-", "(empty)")
    nulls = (meta.get("#unset_field", (0, old_nulls[0]))[1], meta.get("#empty_field", (0, old_nulls[1]))[1])
    split_names: tuple[str, ...] = ()
    if "   " in names[-1]:  # IoT-23: the last three fields joined by three spaces
        split_names = tuple(_normalise(n) for n in names[-1].split("   "))
    all_names = names[:-1] + list(split_names) if split_names else names
    layout = Layout(
        names,
        separator,
        previous.skip_lines if previous else len(header),
        nulls,
        NUMERIC_FIELDS & set(all_names),
        split_last="   " if split_names else None,
        split_names=split_names,
        keep=previous.keep if previous else None,
        comment="#",
        fields_header=f"#fields{separator}{fields}",
    )
    layout.reheader = lambda lines, number: zeek_layout(lines, path, number - len(lines) + 1, require_labels, layout)
    _check_fields(layout, path, fields_line, require_labels)
    return layout


def _separator(line: str, path: str | Path, number: int) -> str:
    """``#separator \\x09``: the escaped character after the space (a tab when none is given)."""
    try:
        separator = line.partition(" ")[2].encode().decode("unicode_escape") or "\t"
    except UnicodeDecodeError:
        separator = ""
    if len(separator) != 1 or separator in '\r\n"':
        raise DataError(f"{path}:{number}: {line[:60]!r} declares no one-character field separator")
    return separator


def _kept(layout: Layout, keep_ids: bool) -> Layout:
    """``layout`` converting only what the features, labels and (with ``keep_ids``) ids need."""
    keep = set(REQUIRED) | ({"label", "detailed-label"} & set(layout.output_names))
    layout.keep = frozenset(keep | set(META) if keep_ids else keep)
    return layout


def _check_fields(layout: Layout, path: str | Path, line: int, require_labels: bool) -> None:
    needed = REQUIRED if require_labels else [f for f in REQUIRED if f not in ("label", "detailed-label")]
    missing = [f for f in needed if f not in layout.output_names]
    if missing:
        raise DataError(f"{path}:{line}: field list lacks {missing} (found {layout.output_names})")


def to_table(chunk: TextChunk, source: str, capture: str, report: RowReporter) -> RawTable:
    """Check values, derive features and labels; rows that fail are reported and dropped."""
    c, line = chunk.columns, chunk.line
    report_invalid_values(c, [*COUNTS, *PORTS], line, report, ports=PORTS, kind="count")
    if "label" in c:
        label = per_value(c["label"], lambda v: (v or "").strip().lower())
        for i in np.flatnonzero(~np.isin(label, LABELS)):
            report(line[i], f"unknown label {c['label'][i]!r} (expected benign or malicious)")
        details = c.get("detailed-label", np.full(len(line), None, dtype=object))
        detailed = per_value(zip(details, label), lambda p: p[0].strip() if p[0] and p[0].strip() != UNSET else p[1])
    else:  # an unlabelled log from a live sensor
        label = detailed = np.full(len(line), None, dtype=object)
    numeric = np.column_stack(
        [c[name] for name in COUNTS] + [c["id.orig_p"], c["id.resp_p"], history_features(c["history"])]
    )
    categorical = (
        np.column_stack(
            [
                _category(c["proto"]),
                _category(c["service"]),
                _category(c["conn_state"]),
                port_range(c["id.orig_p"], chunk.unset["id.orig_p"]),
                port_range(c["id.resp_p"], chunk.unset["id.resp_p"]),
            ]
        )
        if len(line)
        else np.empty((0, len(CATEGORICAL)), dtype=object)
    )
    meta = {name: c[name] for name in META if name in c}
    meta["proto"] = c["proto"]
    meta["history"] = c["history"]  # what an explanation shows of the history features
    meta["detailed_label"] = detailed
    meta["capture"] = np.full(len(line), capture, dtype=object)
    table = RawTable(
        numeric=numeric.reshape(len(line), len(NUMERIC)),
        categorical=categorical,
        labels=label,
        numeric_names=list(NUMERIC),
        categorical_names=list(CATEGORICAL),
        line=line,
        source=np.full(len(line), source, dtype=object),
        skipped=list(chunk.skipped),
        meta=meta,
    )
    return report.drop_reported(table)


def _category(values: np.ndarray) -> np.ndarray:
    return np.where(values == None, UNSET, values).astype(object)  # noqa: E711 - elementwise test


def per_value(values: Iterable, fn: Callable) -> np.ndarray:
    """``fn`` of each element, computed once per distinct value (flow logs repeat a few values)."""
    codes, uniques = factorize(values)
    return np.array([fn(u) for u in uniques], dtype=object)[codes]


def factorize(values: Iterable) -> tuple[np.ndarray, list]:
    """``(codes, uniques)`` with ``uniques[codes[i]] == values[i]``: by pyarrow's dictionary
    encoding where it is installed (C speed), else with a dict (the edge install)."""
    if isinstance(values, np.ndarray) and values.dtype == object and len(values):
        try:
            import pyarrow as pa
            import pyarrow.compute as pc
        except ImportError:
            pa = None
        if pa is not None:
            try:
                encoded = pc.dictionary_encode(pa.array(values, type=pa.string()))
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all strings: the dict path below
                encoded = None
            if encoded is not None:
                uniques = encoded.dictionary.to_pylist()
                codes = pc.fill_null(encoded.indices, len(uniques)).to_numpy(zero_copy_only=False)
                return codes.astype(np.int64), [*uniques, None]
    values = values if isinstance(values, np.ndarray) else list(values)
    index: dict = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values))
    return codes, list(index)


def port_range(ports: np.ndarray, unset: np.ndarray) -> np.ndarray:
    """IANA ranges: well_known (< 1024), registered (< 49152), dynamic; ``-`` when unset."""
    out = np.where(ports < 1024, "well_known", np.where(ports < 49152, "registered", "dynamic")).astype(object)
    out[unset] = UNSET
    return out


def history_features(history: np.ndarray) -> np.ndarray:
    """Per-letter counts for originator (upper case) and responder (lower case), the length,
    and whether Zeek flipped the direction (``^``). Computed once per distinct string."""
    inverse, uniques = factorize(history)
    uniques = [u or "" for u in uniques]
    rows = [
        [u.count(ch) for ch in HISTORY_LETTERS]
        + [u.count(ch.lower()) for ch in HISTORY_LETTERS]
        + [len(u), float("^" in u)]
        for u in uniques
    ]
    table = np.asarray(rows, dtype=np.float64).reshape(len(uniques), 2 * len(HISTORY_LETTERS) + 2)
    return table[inverse.reshape(-1)]


class IoT23(DatasetSpec):
    name = "iot23"
    title = "IoT-23"
    tasks = {"binary": LABELS, "detailed": None}
    splits = {"random": Split("random"), "by_capture": Split("partition", "capture")}
    type_task = "detailed"
    benign = frozenset({"benign"})
    id_columns = ("uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")
    host_column = "id.orig_h"
    time_column = "ts"
    peer_columns = ("id.resp_h", "id.resp_p")
    reply_packets = "resp_pkts"
    partition_columns = ("capture",)
    flow_fields = {
        "timestamp": "ts",
        "uid": "uid",
        "src_ip": "id.orig_h",
        "src_port": "id.orig_p",
        "dest_ip": "id.resp_h",
        "dest_port": "id.resp_p",
        "proto": "proto",
    }
    feature_groups = {
        "history": tuple(name for name in NUMERIC if name.startswith("history_")),
        "id.orig_p": ("orig_port", "orig_port_range"),
        "id.resp_p": ("resp_port", "resp_port_range"),
    }
    never_features = ("ts", "uid", "id.orig_h", "id.resp_h", "tunnel_parents", "label", "detailed-label")
    source_hint = (
        "IoT-23 captures come from https://www.stratosphereips.org/datasets-iot23 "
        "(<capture>/bro/conn.log.labeled, plain or gzipped, or their CSV exports)."
    )

    def sniff_head(self, head: list[str], source: str) -> str:
        return {"zeek": "zeek", "json": "zeek_json", "csv": "iot23_csv"}[variant_of(head, source)]

    def iter_tables(
        self, path, *, chunk_rows=1_000_000, bad_rows="error", engine="auto", require_labels=True, keep_ids=True
    ) -> Iterator[RawTable]:
        """Labels benign/malicious (None for an unlabelled log when ``require_labels`` is off);
        without ``keep_ids`` the flow ids, times and addresses are not even converted."""
        layout = _kept(layout_of(path, require_labels), keep_ids)
        report = RowReporter(str(path), bad_rows)
        capture = data_stem(path)
        for chunk in read_chunks(path, layout, chunk_rows, bad_rows, "python" if layout.json_required else engine):
            yield to_table(chunk, str(path), capture, report)

    def line_reader(self, head, source, *, bad_rows="skip", require_labels=False, keep_ids=True) -> TableLines:
        layout = _kept(head_layout(variant_of(head, source), head, source, require_labels), keep_ids)
        report = RowReporter(source, bad_rows)
        capture = data_stem(source)
        parser = LineParser(layout, report, source)
        return TableLines(parser, lambda chunk: to_table(chunk, source, capture, report), layout.skip_lines)

    def task_labels(self, table: RawTable, task: str) -> np.ndarray:
        """benign/malicious, or the detailed label (the label itself for benign rows)."""
        check_choice("IoT-23 task", task, self.tasks)
        return table.labels if task == "binary" else table.meta["detailed_label"]


SPEC = IoT23()
