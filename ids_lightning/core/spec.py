"""A dataset spec: everything the project knows about one dataset, in one object.

The DataModule, ``prepare`` and the streaming detector read only the spec; none of them names a
dataset. A spec says how to recognise (sniff) and read its files (through the shared chunked
reader), its tasks and their classes, which classes are benign, which columns identify a flow
(kept as row metadata for the detector, windows and federated clients: source host, time) and
which are never features, how its files can be downloaded, and which splits it offers.
Adding a dataset is one subclass in ``ids_lightning/datasets/``, one config file and its tests
(see ``docs/datasets.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ids_lightning.core.delimited import EngineError, LineParser, TextChunk
from ids_lightning.core.errors import ConfigError, DataError, check_choice
from ids_lightning.core.fileio import header_line, open_text
from ids_lightning.core.table import RawTable, concat

log = logging.getLogger(__name__)
OTHER = "other"  # the class that rare (and unseen) labels fold into under a derived task


@dataclass(frozen=True)
class Split:
    """How a split name cuts rows into train/val/test.

    ``random``: stratified train/val/test of ``files``; ``test_files``: train/val from ``files``,
    test = ``test_files`` (NSL-KDD's KDDTest+); ``partition``: test = the rows whose metadata
    ``key`` (a capture, a host) is among ``test_partitions``, so test traffic is never seen.
    """

    kind: str
    key: str | None = None


@dataclass(frozen=True)
class Download:
    """Where a file under the data root can be fetched, and the sha256 it must have."""

    sha256: str
    urls: tuple[str, ...]


class DatasetSpec:
    """Base class: a dataset overrides the class attributes and :meth:`sniff`, :meth:`iter_tables`
    and :meth:`task_labels` (and :meth:`read_file` where a whole-file reader is faster)."""

    name: ClassVar[str]
    title: ClassVar[str]
    # task -> its class names, or None: the classes seen in training (rare ones fold into "other"
    # when the dataset config sets min_class_count)
    tasks: ClassVar[dict[str, tuple[str, ...] | None]]
    splits: ClassVar[dict[str, Split]]
    benign: ClassVar[frozenset[str]]  # lower-case names of benign classes, under any task
    id_columns: ClassVar[tuple[str, ...]] = ()  # metadata that identifies a flow (detector output)
    host_column: ClassVar[str | None] = None  # metadata key of the source host
    time_column: ClassVar[str | None] = None  # metadata key of the flow's start time
    # metadata keys of the destination host and port, and the numeric column of the packets the
    # destination sent back: what host-context features over a window read (core.windows)
    peer_columns: ClassVar[tuple[str, str] | None] = None
    reply_packets: ClassVar[str | None] = None
    partition_columns: ClassVar[tuple[str, ...]] = ()  # metadata keys that group rows into sites
    # the sensor's record fields (timestamp, uid, src_ip, src_port, dest_ip, dest_port, proto) ->
    # the metadata keys that hold them, where the dataset has them
    flow_fields: ClassVar[dict[str, str]] = {}
    # a feature as the user knows it -> the preprocessed columns derived from it (explanations
    # name the feature, and take its value from the flow field of that name where the raw columns
    # are derived); columns named nowhere are features of their own
    feature_groups: ClassVar[dict[str, tuple[str, ...]]] = {}
    never_features: ClassVar[tuple[str, ...]] = ()  # raw columns that must never become features
    read_options: ClassVar[dict[str, object]] = {}  # dataset-specific reader options and defaults
    downloads: ClassVar[dict[str, Download]] = {}  # path under the data root -> download
    source_hint: ClassVar[str] = ""  # where to get the files, for the missing-file error

    def sniff(self, path: str | Path) -> str:
        """The file's format variant (e.g. ``zeek`` or ``iot23_csv``); DataError if it is not
        a file of this dataset."""
        return self.sniff_head(read_head(path), str(path))

    def sniff_head(self, head: list[str], source: str) -> str:
        """The format variant of a file or stream from its first lines (at most ``HEAD_LINES``,
        each within the line limit); DataError if they are not this dataset's."""
        raise NotImplementedError

    def line_reader(
        self, head: list[str], source: str, *, bad_rows: str = "skip", require_labels: bool = False, **options
    ) -> LineReader:
        """A reader of the lines of a file or stream whose first lines are ``head``: what the
        detector reads every input with (a file, a pipe, a growing log)."""
        raise NotImplementedError

    def iter_tables(
        self,
        path: str | Path,
        *,
        chunk_rows: int = 1_000_000,
        bad_rows: str = "error",
        engine: str = "auto",
        require_labels: bool = True,
        keep_ids: bool = True,
        **options,
    ) -> Iterator[RawTable]:
        """Stream the file as :class:`RawTable` chunks; ``labels`` are the raw labels (None for
        an unlabelled record when ``require_labels`` is off), metadata keeps ids and partitions
        (without ``keep_ids``, ids are not even converted: training needs none of them)."""
        raise NotImplementedError

    def read_file(
        self, path: str | Path, *, bad_rows: str = "error", engine: str = "auto", keep_ids: bool = False, **options
    ) -> RawTable:
        """A whole file, as training reads it (without flow ids unless ``keep_ids``). What the
        fast engine cannot read (bad bytes, an over-long line) is read again line by line, which
        names the lines."""
        try:
            tables = list(self.iter_tables(path, bad_rows=bad_rows, engine=engine, keep_ids=keep_ids, **options))
        except EngineError as err:
            if engine != "auto":
                raise
            log.warning("%s; reading it line by line", err)
            tables = list(self.iter_tables(path, bad_rows=bad_rows, engine="python", keep_ids=keep_ids, **options))
        if not tables or sum(len(t) for t in tables) == 0:
            skipped = sum(len(t.skipped) for t in tables)
            raise DataError(f"{path}: no data rows" + (f" ({skipped} malformed rows skipped)" if skipped else ""))
        return concat(tables)

    def task_labels(self, table: RawTable, task: str) -> np.ndarray:
        """Each row's class under ``task`` (None where the record carries no label)."""
        raise NotImplementedError

    # the task whose labels are the finest attack types (NSL-KDD attack names, IoT-23 detailed
    # labels): what "an attack type training never saw" is measured in
    type_task: ClassVar[str | None] = None

    def attack_types(self, table: RawTable) -> np.ndarray | None:
        """Each row's finest label (None: this file's layout has none)."""
        if self.type_task is None:
            return None
        try:
            return self.task_labels(table, self.type_task)
        except (DataError, KeyError):  # a layout without the finest labels
            return None

    # --- shared behaviour ------------------------------------------------------------------------
    def check(self, task: str, split: str) -> None:
        check_choice(f"dataset.task of {self.title}", task, self.tasks)
        check_choice(f"dataset.split of {self.title}", split, self.splits)

    def is_benign(self, class_name: object) -> bool:
        return str(class_name).lower() in self.benign

    def options(self, given: dict | None) -> dict:
        """The reader options with defaults filled in; an unknown key is an error."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.read_options))
        if unknown:
            raise ConfigError(
                f"dataset.read_options has unknown keys {unknown} for {self.title}; "
                f"known: {sorted(self.read_options) or 'none'}"
            )
        return {**self.read_options, **given}

    def __repr__(self) -> str:
        return f"<dataset spec {self.name}>"


HEAD_LINES = 20  # the first lines a format is sniffed from


def read_head(path: str | Path) -> list[str]:
    """The first ``HEAD_LINES`` lines of a file (fewer if it is shorter), each within the line limit."""
    with open_text(path) as handle:
        head = []
        while len(head) < HEAD_LINES and (line := header_line(handle, path, len(head) + 1)):
            head.append(line)
    return head


class LineReader:
    """Lines of one file or stream, fed in order, taken as tables: the detector's reader for a
    file, a pipe or a growing log. The first ``skip_lines`` lines are a header, not rows."""

    skip_lines = 0

    def feed(self, number: int, text: str, problem: str | None = None) -> RawTable | None:
        """Take line ``number``; a table of the rows before it where it starts another layout."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def pending(self) -> bool:
        raise NotImplementedError

    def take(self) -> RawTable:
        """The rows fed since the last take (reported bad lines in its ``skipped``)."""
        raise NotImplementedError

    @property
    def layout_header(self) -> list[tuple[int, str]]:
        """The numbered header lines that switched the layout mid-file (none if the file's first
        header is in force): fed again after the first header, they restore the layout in force,
        as a restart inside the file needs."""
        return []


class TableLines(LineReader):
    """A :class:`LineReader` over delimited text (:class:`~ids_lightning.core.delimited.LineParser`),
    its chunks converted to tables by the spec's ``convert``."""

    def __init__(self, parser: LineParser, convert: Callable[[TextChunk], RawTable], skip_lines: int = 0):
        self.parser, self.convert, self.skip_lines = parser, convert, skip_lines

    def feed(self, number: int, text: str, problem: str | None = None) -> RawTable | None:
        if number <= self.skip_lines:
            return None
        before = self.parser.feed(number, text, problem)
        return None if before is None else self.convert(before)

    def __len__(self) -> int:
        return len(self.parser)

    @property
    def pending(self) -> bool:
        return self.parser.pending

    def take(self) -> RawTable:
        return self.convert(self.parser.take())

    @property
    def layout_header(self) -> list[tuple[int, str]]:
        return self.parser.switched_by
