"""Lines end at ``\\n`` (``\\r\\n`` too), as ``grep -n`` and ``sed`` count them: a lone carriage
return inside a line spoils that line only, and every line number after it stays true, in both
engines (pyarrow would end a line there; it hands the file to the line reader)."""

from __future__ import annotations

import numpy as np
import pytest

from ids_lightning.core.delimited import EngineError, Layout, read_chunks
from ids_lightning.core.errors import DataError
from ids_lightning.core.fileio import LONE_CR, header_line, open_text


def flows(tmp_path, line_end: str = "\n", broken: int | None = None):
    rows = [f"{i}\t{i * 2}\t{'benign' if i % 2 else 'attack'}" for i in range(300)]
    if broken is not None:
        rows[broken] = rows[broken].replace("\t", "\r", 1)
    path = tmp_path / "flows.tsv"
    path.write_bytes(("a\tb\tlabel" + line_end + line_end.join(rows) + line_end).encode())
    return path


def layout() -> Layout:
    return Layout(["a", "b", "label"], "\t", 1, ("-",), frozenset({"a", "b"}))


def read(path, engine):
    chunks = list(read_chunks(path, layout(), chunk_rows=64, bad_rows="skip", engine=engine))
    lines = np.concatenate([c.line for c in chunks])
    skipped = [(line, reason) for c in chunks for _, line, reason in c.skipped]
    return lines, skipped, np.concatenate([c.columns["a"] for c in chunks])


@pytest.mark.parametrize("engine", ["python", "arrow"])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_unix_and_windows_line_ends_read_the_same(tmp_path, engine, line_end):
    lines, skipped, values = read(flows(tmp_path, line_end), engine)
    assert skipped == [] and lines.tolist() == list(range(2, 302)) and values[-1] == 299.0


def test_a_lone_carriage_return_costs_its_own_line_and_no_line_number(tmp_path):
    lines, skipped, values = read(flows(tmp_path, broken=100), "python")
    assert skipped == [(102, LONE_CR)]
    assert len(lines) == 299 and 102 not in lines and lines[-1] == 301 and values[-1] == 299.0


def test_the_arrow_engine_hands_a_lone_carriage_return_to_the_line_reader(tmp_path):
    with pytest.raises(EngineError, match="a carriage return inside a line"):
        read(flows(tmp_path, broken=100), "arrow")


def test_a_lone_carriage_return_across_a_block_boundary_is_seen(tmp_path):
    """pyarrow asks for 1 MiB at a time here: a CR that ends one read, with no LF starting the next."""
    text = "a\tb\tlabel\n" + "".join(f"{i}\t{i}\tbenign\n" for i in range(200_000))
    end = 1 << 20
    if text[end - 1] == "\n":  # the CR must come before a character that is not LF
        end -= 1
    path = tmp_path / "big.tsv"
    path.write_bytes((text[: end - 1] + "\r" + text[end - 1 :]).encode())
    with pytest.raises(EngineError, match="carriage return"):
        read(path, "arrow")
    _, skipped, _ = read(path, "python")
    assert [reason for _, reason in skipped] == [LONE_CR]


def test_a_header_with_a_lone_carriage_return_is_refused_by_its_line(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"a,b,label\r1,2,benign\r")
    with open_text(path) as handle, pytest.raises(DataError, match=r"mac\.csv:1: a carriage return inside the line"):
        header_line(handle, path)


def test_the_arrow_engine_hands_bytes_that_are_not_utf8_to_the_line_reader_quietly(tmp_path, capfd):
    """pyarrow's bad-row handler failed on them and printed a traceback ('Exception ignored')."""
    path = flows(tmp_path)
    data = path.read_bytes()
    at = data.index(b"\n", 200) + 1
    path.write_bytes(data[:at] + b"\xff\xfe\t1\tbenign\n" + data[at:])
    with pytest.raises(EngineError, match="not UTF-8"):
        read(path, "arrow")
    assert "Traceback" not in capfd.readouterr().err
    _, skipped, _ = read(path, "python")
    assert len(skipped) == 1 and "UTF-8" in skipped[0][1]
