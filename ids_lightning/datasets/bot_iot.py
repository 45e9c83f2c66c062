"""BoT-IoT (Koroniotis et al. 2019): the spec and its reader for CSVs in the official layouts
(by name) or any layout through a column map.

Identifiers and leaky columns are never features: the record id ``pkSeqID``, the start and end
times ``stime``/``ltime``, the addresses (``saddr``, ``daddr``, MAC and OUI columns) and the
sequence number ``seq``. They stay available as row metadata.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ids_lightning.core.columns import report_invalid_values
from ids_lightning.core.delimited import Layout, LineParser, RowReporter, TextChunk, read_chunks, sniff_delimiter
from ids_lightning.core.errors import ConfigError, DataError, check_choice
from ids_lightning.core.spec import DatasetSpec, Split, TableLines, read_head
from ids_lightning.core.table import RawTable

BINARY_CLASSES = ("normal", "attack")
META = ("pkSeqID", "stime", "saddr", "sport", "daddr", "dport", "proto")
PORTS = ("sport", "dport")

_FULL = (
    "pkSeqID stime flgs proto saddr sport daddr dport pkts bytes state ltime seq dur mean stddev smac dmac "
    "sum min max soui doui sco dco spkts dpkts sbytes dbytes rate srate drate attack category subcategory"
).split()
_FULL_NUMERIC = "sport dport pkts bytes dur mean stddev sum min max spkts dpkts sbytes dbytes rate srate drate".split()
_AGGREGATES = (
    "TnBPSrcIP TnBPDstIP TnP_PSrcIP TnP_PDstIP TnP_PerProto TnP_Per_Dport AR_P_Proto_P_SrcIP "
    "AR_P_Proto_P_DstIP N_IN_Conn_P_DstIP N_IN_Conn_P_SrcIP AR_P_Proto_P_Sport AR_P_Proto_P_Dport "
    "Pkts_P_State_P_Protocol_P_DestIP Pkts_P_State_P_Protocol_P_SrcIP"
).split()


@dataclass(frozen=True)
class BotIoTLayout:
    """Feature and label columns of one CSV layout; ``columns`` names a header-less layout."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    attack: str | None = "attack"
    category: str | None = "category"
    subcategory: str | None = "subcategory"
    columns: tuple[str, ...] = field(default=())

    @property
    def labels(self) -> list[str]:
        return [c for c in (self.attack, self.category, self.subcategory) if c]

    @property
    def required(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.labels]


LAYOUTS = {
    # "Entire dataset" parts (no header row; the names are in a separate file) and the
    # Full5pc-style files that keep the same 35 columns with a header.
    "full": BotIoTLayout(tuple(_FULL_NUMERIC), ("flgs", "proto", "state"), columns=tuple(_FULL)),
    # The 5 % extraction with per-address aggregate features (46 columns, header row).
    "full5pc": BotIoTLayout(tuple(_FULL_NUMERIC + _AGGREGATES), ("flgs", "proto", "state")),
    # The "10 best features" Training/Testing files.
    "best10": BotIoTLayout(
        (
            "sport",
            "dport",
            "stddev",
            "N_IN_Conn_P_SrcIP",
            "min",
            "state_number",
            "mean",
            "N_IN_Conn_P_DstIP",
            "drate",
            "srate",
            "max",
        ),
        ("proto",),
    ),
    # Reduced third-party layout: flgs, proto, pkts, bytes, dur, mean, stddev, sum, min, max,
    # rate, category (no attack or subcategory column).
    "reduced": BotIoTLayout(
        ("pkts", "bytes", "dur", "mean", "stddev", "sum", "min", "max", "rate"),
        ("flgs", "proto"),
        attack=None,
        subcategory=None,
    ),
}


def custom_layout(column_map: dict) -> BotIoTLayout:
    """A layout from config: ``{numeric: [...], categorical: [...], attack|category|subcategory: col}``."""
    unknown = set(column_map) - {"numeric", "categorical", "attack", "category", "subcategory"}
    if unknown:
        raise ConfigError(f"dataset.read_options.column_map has unknown keys {sorted(unknown)}")
    return BotIoTLayout(
        tuple(column_map.get("numeric", ())),
        tuple(column_map.get("categorical", ())),
        column_map.get("attack"),
        column_map.get("category"),
        column_map.get("subcategory"),
    )


def _header(first: str, required: bool) -> tuple[list[str] | None, str]:
    """The header row's names (None for a header-less file: the "Entire dataset" parts) and the
    delimiter (comma, tab or semicolon, sniffed from the first line)."""
    first = first.rstrip("\r\n")
    delimiter = sniff_delimiter(first)
    names = [name.strip().strip('"') for name in first.split(delimiter)]
    found = required or {"category", "attack", "pkSeqID", "proto"} & set(names)
    return (names if found else None), delimiter


def resolve(path: str | Path, layout: str = "auto", column_map: dict | None = None) -> tuple[str, BotIoTLayout, Layout]:
    """Pick the layout (by name, or ``auto`` from the header) and how to read the file."""
    return resolve_head(read_head(path), path, layout, column_map)


def resolve_head(
    head: list[str], path: str | Path, layout: str = "auto", column_map: dict | None = None
) -> tuple[str, BotIoTLayout, Layout]:
    """:func:`resolve` from a file's first lines."""
    header, delimiter = _header(head[0] if head else "", required=layout == "custom")
    if layout == "custom":
        if not column_map:
            raise ConfigError("dataset.read_options.layout=custom needs dataset.read_options.column_map")
        chosen = custom_layout(column_map)
    elif layout == "auto":
        if header is None:
            name = "full"
        else:
            matches = [n for n, lay in LAYOUTS.items() if set(lay.required) <= set(header)]
            if not matches:
                raise DataError(
                    f"{path}:1: header matches no BoT-IoT layout ({', '.join(LAYOUTS)}); "
                    "set dataset.read_options.layout=custom and dataset.read_options.column_map"
                )
            name = max(matches, key=lambda n: len(LAYOUTS[n].required))  # the most specific
        layout, chosen = name, LAYOUTS[name]
    elif layout in LAYOUTS:
        chosen = LAYOUTS[layout]
    else:
        raise ConfigError(f"unknown BoT-IoT layout {layout!r}; expected auto, custom or one of {list(LAYOUTS)}")
    names = header or list(chosen.columns)
    if not names:
        raise DataError(f"{path}:1: no header row, and layout {layout!r} does not name the columns")
    missing = [c for c in chosen.required if c not in names]
    if missing:
        raise DataError(f"{path}:1: layout {layout!r} needs columns {missing}, which the file lacks")
    reader = Layout(
        names,
        delimiter,
        1 if header else 0,
        ("",),
        frozenset(chosen.numeric),
        quoted=True,
    )
    return layout, chosen, reader


def to_table(chunk: TextChunk, layout: BotIoTLayout, source: str, report: RowReporter) -> RawTable:
    c, line = chunk.columns, chunk.line
    report_invalid_values(c, layout.numeric, line, report, ports=PORTS)
    meta: dict[str, np.ndarray] = {}
    if layout.category:
        meta["category"] = _labels(c[layout.category], layout.category, line, report)
    if layout.subcategory:
        meta["subcategory"] = _labels(c[layout.subcategory], layout.subcategory, line, report)
    if layout.attack:
        attack = _labels(c[layout.attack], layout.attack, line, report)
        for i in np.flatnonzero(~np.isin(attack, ["0", "1"])):
            report(line[i], f"column {layout.attack!r}: {attack[i]!r} is not 0 or 1")
        meta["attack"] = attack
    else:
        meta["attack"] = np.where(np.char.lower(meta["category"].astype(str)) == "normal", "0", "1").astype(object)
    for name in META:
        if name in c:
            meta[name] = c[name]
    categorical = np.array(
        [["-" if v is None else v for v in c[name]] for name in layout.categorical], dtype=object
    ).T.reshape(len(line), len(layout.categorical))
    table = RawTable(
        numeric=np.column_stack([c[name] for name in layout.numeric]).reshape(len(line), len(layout.numeric)),
        categorical=categorical,
        labels=meta.get("category", np.where(meta["attack"] == "1", "attack", "normal").astype(object)),
        numeric_names=list(layout.numeric),
        categorical_names=list(layout.categorical),
        line=line,
        source=np.full(len(line), source, dtype=object),
        skipped=list(chunk.skipped),
        meta=meta,
    )
    return report.drop_reported(table)


# The dataset's category and subcategory names in their published spelling: ``DOS`` or ``dos`` in a
# re-exported file is ``DoS``, not a class of its own.
SPELLING = {
    name.lower(): name
    for name in ("Normal", "DoS", "DDoS", "Reconnaissance", "Theft", "UDP", "TCP", "HTTP", "Service_Scan",
                 "OS_Fingerprint", "Keylogging", "Data_Exfiltration")
}  # fmt: skip


def _labels(values: np.ndarray, column: str, line: np.ndarray, report: RowReporter) -> np.ndarray:
    stripped = ["" if v is None else v.strip() for v in values]
    out = np.array([SPELLING.get(v.lower(), v) for v in stripped], dtype=object)
    for i in np.flatnonzero(out == ""):
        report(line[i], f"column {column!r} is empty")
    return out


class BotIoT(DatasetSpec):
    name = "bot_iot"
    title = "BoT-IoT"
    tasks = {"binary": BINARY_CLASSES, "category": None, "subcategory": None}
    splits = {"random": Split("random"), "files": Split("test_files")}
    benign = frozenset({"normal"})
    id_columns = ("pkSeqID", "saddr", "sport", "daddr", "dport")
    type_task = "subcategory"
    host_column = "saddr"
    time_column = "stime"
    peer_columns = ("daddr", "dport")
    reply_packets = "dpkts"
    partition_columns = ("saddr",)
    flow_fields = {
        "timestamp": "stime",
        "flow_id": "pkSeqID",
        "src_ip": "saddr",
        "src_port": "sport",
        "dest_ip": "daddr",
        "dest_port": "dport",
        "proto": "proto",
    }
    never_features = ("pkSeqID", "stime", "ltime", "saddr", "daddr", "smac", "dmac", "soui", "doui", "seq")
    read_options = {"layout": "auto", "column_map": None}
    source_hint = (
        "BoT-IoT CSVs come from https://research.unsw.edu.au/projects/bot-iot-dataset (any of the "
        "full, 5 % or 10-best layouts, plain or gzipped)."
    )

    def sniff_head(self, head: list[str], source: str) -> str:
        """A CSV whose header fits a layout, or a header-less row of the 35 "full" columns."""
        layout, _, reader = resolve_head(head, source)
        if reader.skip_lines == 0:
            width = len((head[0] if head else "").split(reader.delimiter))
            if width != len(_FULL):
                raise DataError(
                    f"{source}:1: no BoT-IoT header, and {width} fields instead of the {len(_FULL)} of {layout!r}"
                )
        return self.name

    def line_reader(
        self, head, source, *, bad_rows="skip", require_labels=False, keep_ids=True, layout="auto", column_map=None
    ) -> TableLines:
        _, chosen, reader = resolve_head(head, source, layout, column_map)
        report = RowReporter(source, bad_rows)
        parser = LineParser(reader, report, source)
        return TableLines(parser, lambda chunk: to_table(chunk, chosen, source, report), reader.skip_lines)

    def iter_tables(
        self,
        path,
        *,
        chunk_rows=1_000_000,
        bad_rows="error",
        engine="auto",
        require_labels=True,
        keep_ids=True,
        layout="auto",
        column_map=None,
    ) -> Iterator[RawTable]:
        """``labels`` are the category; ``meta`` holds ``attack`` (0/1) and ``subcategory`` where
        the layout has them. Identifiers and leaky columns are metadata whatever ``keep_ids``."""
        _, chosen, reader = resolve(path, layout, column_map)
        report = RowReporter(str(path), bad_rows)
        for chunk in read_chunks(path, reader, chunk_rows, bad_rows, engine):
            yield to_table(chunk, chosen, str(path), report)

    def task_labels(self, table: RawTable, task: str) -> np.ndarray:
        """normal/attack, the category, or the subcategory."""
        check_choice("BoT-IoT task", task, self.tasks)
        if task == "binary":
            return np.where(table.meta["attack"] == "1", "attack", "normal").astype(object)
        if task not in table.meta:
            raise DataError(f"{table.source[0]}: this layout has no {task} column; use task=binary or category")
        return table.meta[task]


SPEC = BotIoT()
