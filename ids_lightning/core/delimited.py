"""Chunked reading of delimited text (Zeek logs, CSV) with line numbers for every row.

Two engines give the same chunks: ``arrow`` (pyarrow's C++ CSV reader, used for training and
Parquet preparation) and ``python`` (the standard library only, for the numpy-only edge
install). Numeric columns come back as float64 with an ``unset`` mask, the others as object
arrays of ``str`` (``None`` where unset). Rows with the wrong number of fields or an unparsable
number are reported with their 1-based line number, never dropped silently.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ids_lightning.core.errors import ConfigError, DataError, MalformedRowError
from ids_lightning.core.fileio import TruncatedFileError, header_line, open_text, text_lines


@dataclass
class TextChunk:
    """Rows of one chunk: ``columns[name]`` per field, ``unset[name]`` for numeric ones."""

    columns: dict[str, np.ndarray]
    unset: dict[str, np.ndarray]
    line: np.ndarray
    skipped: list[tuple[str, int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.line)


@dataclass
class Layout:
    """How to cut a file into named fields.

    ``split_last`` handles the IoT-23 quirk: the last field holds several values joined by a
    separator (three spaces) that is not the delimiter; they become the ``split_names`` fields.
    """

    names: list[str]
    delimiter: str
    skip_lines: int
    null_values: tuple[str, ...]
    numeric: frozenset[str]
    quoted: bool = False
    split_last: str | None = None
    split_names: tuple[str, ...] = ()
    keep: frozenset[str] | None = None  # the fields to return (None: all); others are not converted
    comment: str | None = None  # lines starting with it are not rows (Zeek's "#")
    # Zeek's column header as read ("#fields<sep>ts<sep>uid..."), and how to read the header block
    # of another layout that starts mid-file (logs joined or rotated): its lines and the line
    # number of its #fields line give the layout of the rows after it
    fields_header: str | None = None
    reheader: Callable[[list[str], int], Layout] | None = field(default=None, repr=False, compare=False)
    # Zeek's JSON writer: each line one object of these fields by name (an unset one is left out),
    # holding at least ``json_required``; empty for delimited text
    json_required: tuple[str, ...] = ()

    def names_other_columns(self, line: str) -> bool:
        """Whether ``line`` (without its end) is a Zeek ``#fields`` header of another layout."""
        return bool(self.fields_header) and line.startswith("#fields") and line != self.fields_header

    @property
    def output_names(self) -> list[str]:
        return self.names[:-1] + list(self.split_names) if self.split_last else list(self.names)

    @property
    def wanted(self) -> list[str]:
        return [n for n in self.output_names if self.keep is None or n in self.keep]


DELIMITERS = (",", "\t", ";")


def sniff_delimiter(header: str) -> str:
    """The delimiter of a CSV-family header line: the most frequent of comma, tab and semicolon
    (comma when none occurs): public copies of one dataset come in all three."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class EngineError(DataError):
    """The arrow engine cannot read a file that the line-by-line engine can (and will report
    line by line): readers of whole files fall back to ``engine="python"``."""


class RowReporter:
    """Collects ``line -> reason`` for bad rows; under ``bad_rows='error'`` the first one raises."""

    def __init__(self, source: str, bad_rows: str):
        if bad_rows not in ("error", "skip"):
            raise ConfigError(f"bad_rows must be 'error' or 'skip', not {bad_rows!r}")
        self.source, self.bad_rows = source, bad_rows
        self.issues: dict[int, str] = {}

    def __call__(self, line: int, reason: str) -> None:
        if self.bad_rows == "error":
            raise MalformedRowError(self.source, line, reason)
        self.issues.setdefault(int(line), reason)

    def take(self) -> list[tuple[str, int, str]]:
        taken = [(self.source, line, reason) for line, reason in sorted(self.issues.items())]
        self.issues = {}
        return taken

    def drop_reported(self, table):
        """``table`` (a RawTable) without the rows reported so far; they join its ``skipped``."""
        dropped = self.take()
        if dropped:
            table = table.take(np.flatnonzero(~np.isin(table.line, [d[1] for d in dropped])))
            table.skipped = sorted(table.skipped + dropped, key=lambda s: s[1])
        return table


def read_chunks(
    path: str | Path,
    layout: Layout,
    chunk_rows: int = 1_000_000,
    bad_rows: str = "error",
    engine: str = "auto",
) -> Iterator[TextChunk]:
    """Yield :class:`TextChunk` s of at most about ``chunk_rows`` rows; lines starting with
    the layout's ``comment`` (Zeek's ``#close`` footer) are not rows; elsewhere every line is a row."""
    if engine == "auto":
        try:
            import pyarrow  # noqa: F401

            engine = "arrow"
        except ImportError:
            engine = "python"
    reader = {"arrow": _arrow_chunks, "python": _python_chunks}[engine]
    yield from reader(Path(path), layout, chunk_rows, RowReporter(str(path), bad_rows))


# --- python engine ------------------------------------------------------------------------------
def _python_chunks(path: Path, layout: Layout, chunk_rows: int, report: RowReporter) -> Iterator[TextChunk]:
    with open_text(path) as handle:
        for number in range(1, layout.skip_lines + 1):
            header_line(handle, path, number)
        parser = LineParser(layout, report, path)
        try:
            for number, text, problem in text_lines(handle, path, layout.skip_lines + 1):
                switched = parser.feed(number, text, problem)
                if switched is not None:
                    yield switched
                if len(parser) >= chunk_rows:
                    yield parser.take()
        except TruncatedFileError:
            if parser.pending:  # the whole lines before the cut are rows like any other
                yield parser.take()
            raise
        if parser.pending:
            yield parser.take()


class LineParser:
    """Rows of delimited text fed one line at a time (a file, a pipe, a growing log), taken as
    :class:`TextChunk` s: comment lines are not rows, a Zeek header block that names other
    columns switches the layout for the rows after it, and every other line is a row or a
    reported bad row."""

    def __init__(self, layout: Layout, report: RowReporter, source: str | Path):
        self.layout, self.report, self.source = layout, report, source
        self.rows: list[list[str]] = []
        self.lines: list[int] = []
        self.header: list[str] = []  # the comment lines since the last row: a Zeek header in the making
        self.switched_by: list[tuple[int, str]] = []  # the numbered header block of the layout in force mid-file

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def pending(self) -> bool:
        """Whether :meth:`take` has rows or reported lines to give."""
        return bool(self.rows or self.report.issues)

    def feed(self, number: int, text: str, problem: str | None = None) -> TextChunk | None:
        """Take line ``number`` (``problem``: why it could not be read); returns the rows before
        it as a chunk when it completes a header block of another layout."""
        if problem:  # an unreadable line: reported, read as an empty one
            self.report(number, problem)
        layout = self.layout
        if layout.comment and text.startswith(layout.comment):
            self.header.append(text.rstrip("\r\n"))
            if layout.names_other_columns(self.header[-1]):
                before = self.take() if self.rows else None  # the rows so far in their own layout
                self.layout = _switch(layout, self.header, self.source, number)
                first = number - len(self.header) + 1
                self.switched_by = [(first + i, text) for i, text in enumerate(self.header)]
                return before
            return None
        self.header = []
        fields = _split(text, layout, number, self.report)
        if fields is None:
            return None
        if len(fields) != len(layout.names):
            self.report(number, f"expected {len(layout.names)} fields, found {len(fields)}")
            return None
        self.rows.append(fields)
        self.lines.append(number)
        return None

    def take(self) -> TextChunk:
        """The rows fed since the last take, converted; reported lines go in its ``skipped``."""
        chunk = _python_chunk(self.rows, self.lines, self.layout, self.report)
        self.rows, self.lines = [], []
        return chunk


def _switch(layout: Layout, header: list[str], path: Path, number: int) -> Layout:
    """The layout of a header block that starts mid-file; it must name every field read so far."""
    if layout.reheader is None:
        raise DataError(f"{path}:{number}: a new #fields header, and this reader knows one layout only")
    new = layout.reheader(header, number)
    lacking = [name for name in layout.wanted if name not in new.output_names]
    if lacking:
        raise DataError(f"{path}:{number}: a new #fields header without {lacking}, which the rows before it have")
    return new


def _split(text: str, layout: Layout, number: int, report: RowReporter) -> list[str] | None:
    """A line's fields. CSV lines are parsed each on its own (flow values hold no line breaks, as
    the arrow engine also assumes): a stray quote spoils its own line, never the lines after it."""
    text = text.rstrip("\r\n")
    if layout.json_required:
        return _json_fields(text, layout, number, report)
    if not layout.quoted:
        return text.split(layout.delimiter)
    try:
        return next(csv.reader([text], delimiter=layout.delimiter), [])
    except csv.Error as err:  # e.g. a quoted field past the csv module's field limit
        report(number, f"not a CSV row ({err})")
        return None


def _json_fields(text: str, layout: Layout, number: int, report: RowReporter) -> list[str] | None:
    """A JSON record's fields as Zeek's text writer would write them: an unset field as the
    unset token, booleans as ``T``/``F``, sets joined by commas; a record that is not a JSON
    object, or lacks a required field, is a bad row naming what is wrong."""
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as err:
        report(number, f"not a JSON record ({getattr(err, 'msg', type(err).__name__)})")
        return None
    if not isinstance(record, dict):
        report(number, f"not a JSON object but a {type(record).__name__}")
        return None
    missing = [name for name in layout.json_required if name not in record]
    if missing:
        report(number, f"the JSON record lacks {missing}")
        return None
    return [_zeek_text(record.get(name), layout.null_values[0]) for name in layout.names]


def _zeek_text(value: object, unset: str) -> str:
    if value is None or value == []:
        return unset
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _python_chunk(rows: list[list[str]], lines: list[int], layout: Layout, report: RowReporter) -> TextChunk:
    line = np.asarray(lines, dtype=np.int64)
    columns = list(zip(*rows)) if rows else [()] * len(layout.names)
    values = dict(zip(layout.names, columns))
    if layout.split_last:
        last = layout.names[-1]
        parts = [v.split(layout.split_last) for v in values.pop(last)]
        bad = [i for i, p in enumerate(parts) if len(p) != len(layout.split_names)]
        for i in bad:
            report(line[i], f"field {last!r} should hold {len(layout.split_names)} values")
        parts = [p if len(p) == len(layout.split_names) else [""] * len(layout.split_names) for p in parts]
        values.update(zip(layout.split_names, zip(*parts) if parts else [()] * len(layout.split_names)))
    nulls = set(layout.null_values)
    out, unset = {}, {}
    for name in layout.wanted:
        raw = values[name]
        missing = np.fromiter((v in nulls for v in raw), dtype=bool, count=len(raw))
        if name in layout.numeric:
            filled = ["0" if m else v for v, m in zip(raw, missing)]
            out[name] = _to_float(filled, name, lambda row, why: report(line[row], why))
            unset[name] = missing
        else:
            out[name] = np.array([None if m else v for v, m in zip(raw, missing)], dtype=object)
    return _finish(out, unset, line, report)


def _to_float(values, name: str, report: Callable[[int, str], None]) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        out = np.empty(len(values), dtype=np.float64)
        for row, text in enumerate(values):
            try:
                out[row] = parse_number(text)
            except ValueError:
                out[row] = 0.0
                report(row, f"field {name!r}: {text!r} is not a number")
        return out


def parse_number(text: str) -> float:
    """A decimal number, or a hexadecimal one (``0x0303`` ports occur in BoT-IoT)."""
    text = text.strip()
    if text[:2].lower() == "0x":
        return float(int(text, 16))
    return float(text)


def _finish(out, unset, line, report: RowReporter) -> TextChunk:
    """Drop the rows reported in this chunk (under bad_rows=skip) from every column."""
    skipped = report.take()
    if skipped:
        drop = np.isin(line, [s[1] for s in skipped])
        keep = ~drop
        out = {k: v[keep] for k, v in out.items()}
        unset = {k: v[keep] for k, v in unset.items()}
        line = line[keep]
    return TextChunk(out, unset, line, skipped)


# --- arrow engine -------------------------------------------------------------------------------
def _arrow_chunks(path: Path, layout: Layout, chunk_rows: int, report: RowReporter) -> Iterator[TextChunk]:
    import pyarrow as pa

    invalid: list[int] = []
    pending: list[tuple[int, str]] = []  # reported after the batch: the handler must not raise
    width = len(layout.names)

    handover: list[str] = []  # what the line reader must read instead: a runaway quote, a new layout

    def on_invalid(row) -> str:
        invalid.append(row.number)
        text = row.text.rstrip("\r\n")
        if "\n" in text:
            handover.append(f"{path}:{row.number}: a quote left open runs over the lines after it")
        if layout.names_other_columns(text):
            handover.append(f"{path}:{row.number}: a new #fields header")  # the line reader switches to it
        if not (layout.comment and row.text.startswith(layout.comment)):
            pending.append((row.number, f"expected {width} fields, found {row.actual_columns}"))
        return "skip"

    wanted = set(layout.wanted)
    # the first field tells a comment line with as many fields as a row from a row
    included = [n for n in layout.names if n in wanted or (layout.comment and n == layout.names[0])]
    if layout.split_last and wanted & set(layout.split_names):
        included.append(layout.names[-1])
    try:
        yield from _arrow_batches(path, layout, chunk_rows, report, on_invalid, included, invalid, pending, handover)
    except (pa.ArrowInvalid, OSError) as err:  # undecodable bytes, an over-long line, a cut archive
        raise EngineError(f"{path}: the arrow engine cannot read this file ({err})") from err
    if handover:
        raise EngineError(handover[0])


def _arrow_batches(
    path, layout, chunk_rows, report, on_invalid, included, invalid, pending, handover
) -> Iterator[TextChunk]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    stream = _CheckedBytes(pa.input_stream(str(path), compression="detect"), path)
    reader = pcsv.open_csv(
        stream,
        read_options=pcsv.ReadOptions(
            column_names=layout.names,
            skip_rows=layout.skip_lines,
            use_threads=False,
            block_size=max(1 << 20, min(64 << 20, chunk_rows * 200)),
        ),
        parse_options=pcsv.ParseOptions(
            delimiter=layout.delimiter,
            quote_char='"' if layout.quoted else False,
            invalid_row_handler=on_invalid,
            newlines_in_values=False,
            ignore_empty_lines=False,
        ),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in layout.names},
            null_values=list(layout.null_values),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            include_columns=included,
        ),
    )
    next_line = layout.skip_lines + 1
    seen_invalid = 0
    for batch in reader:
        if layout.comment and pc.any(pc.starts_with(pc.fill_null(batch.column(0), ""), layout.comment)).as_py():
            handover.append(f"{path}: a {layout.comment} line with as many fields as a row")
        if handover:  # before its rows are converted: they may be read in the wrong layout
            raise EngineError(handover[0])
        for number, reason in pending:
            report(number, reason)
        pending.clear()
        n = batch.num_rows
        # Data rows are the lines after the header that were not reported invalid.
        line, next_line, seen_invalid = _row_lines(n, next_line, invalid, seen_invalid)
        columns = {name: batch.column(name) for name in included}
        if layout.split_last and layout.names[-1] in columns:
            last = columns.pop(layout.names[-1])
            parts = pc.split_pattern(pc.fill_null(last, ""), layout.split_last)
            wrong = pc.not_equal(pc.list_value_length(parts), len(layout.split_names))
            for i in np.flatnonzero(wrong.to_numpy(zero_copy_only=False)):
                report(line[i], f"field {layout.names[-1]!r} should hold {len(layout.split_names)} values")
            padded = pc.if_else(wrong, pa.scalar([""] * len(layout.split_names), parts.type), parts)
            for k, name in enumerate(layout.split_names):
                value = pc.list_element(padded, k)
                columns[name] = pc.if_else(pc.is_in(value, pa.array(layout.null_values)), None, value)
        out, unset = {}, {}
        for name in layout.wanted:
            column = columns[name]
            if name in layout.numeric:
                out[name] = _arrow_float(column, name, lambda row, why, line=line: report(line[row], why))
                unset[name] = pc.is_null(column).to_numpy(zero_copy_only=False)
            else:
                out[name] = _arrow_strings(column)
        yield _finish(out, unset, line, report)
    for number, reason in pending:
        report(number, reason)
    if report.issues:  # invalid rows after the last batch
        empty = {name: np.empty(0, dtype=np.float64 if name in layout.numeric else object) for name in layout.wanted}
        yield _finish(empty, {n: np.empty(0, bool) for n in layout.numeric}, np.empty(0, np.int64), report)


class _CheckedBytes(io.RawIOBase):
    """The bytes of a stream as they pass to pyarrow, which ends a line at a lone carriage return
    too, and fails inside its bad-row handler on bytes that are not UTF-8: the first of either
    hands the file to the line reader, which counts lines as ``grep -n`` does and names the line.
    A count and an incremental decode per block: nothing measurable beside the parse."""

    def __init__(self, stream, path: Path):
        self.stream, self.path = stream, path
        self.after_cr = False  # the last block ended with a carriage return
        self.utf8 = codecs.getincrementaldecoder("utf-8")()

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.stream.close()
        super().close()

    def readinto(self, buffer) -> int:
        data = self.stream.read(len(buffer))
        if data:
            lone = data.count(b"\r") - data.count(b"\r\n") - data.endswith(b"\r")
            if lone or (self.after_cr and not data.startswith(b"\n")):
                raise EngineError(f"{self.path}: a carriage return inside a line")
            self.after_cr = data.endswith(b"\r")
        try:
            self.utf8.decode(data, final=not data)
        except UnicodeDecodeError:
            raise EngineError(f"{self.path}: bytes that are not UTF-8") from None
        buffer[: len(data)] = data
        return len(data)


def _row_lines(n: int, next_line: int, invalid: list[int], seen: int) -> tuple[np.ndarray, int, int]:
    lines = np.empty(n, dtype=np.int64)
    filled = 0
    while filled < n:
        stop = invalid[seen] if seen < len(invalid) else None
        room = n - filled if stop is None else min(n - filled, stop - next_line)
        lines[filled : filled + room] = np.arange(next_line, next_line + room)
        filled += room
        next_line += room
        if stop is not None and next_line == stop:
            next_line += 1
            seen += 1
    return lines, next_line, seen


def _arrow_strings(column) -> np.ndarray:
    """Strings as an object array (None where unset) without one Python object per row: each
    distinct value is made once and shared, which keeps memory flat and conversion fast."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column)
    values = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
    indices = pc.fill_null(encoded.indices, len(values) - 1).to_numpy(zero_copy_only=False)
    return values[indices]


def _arrow_float(column, name: str, report: Callable[[int, str], None]) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    filled = pc.fill_null(column, "0")
    try:
        return pc.cast(filled, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return _to_float(filled.to_pylist(), name, report)
