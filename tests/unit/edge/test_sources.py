"""The sensor's line sources: whole lines with their numbers and byte offsets, from files (plain
or gzipped), pipes, folders of rotated logs and growing logs followed across rotations by file
identity; a restart from a committed position reads each line once."""

from __future__ import annotations

import gzip
import os

import pytest

from ids_lightning.core.errors import DataError
from ids_lightning.edge.sources import (
    IDLE,
    OVER_LONG,
    FileLines,
    FolderLines,
    Position,
    Splitter,
    StreamLines,
    open_lines,
)


def rows(first: int, count: int) -> str:
    return "".join(f"row {i}\n" for i in range(first, first + count))


def texts(items) -> list[str]:
    return [item.text.rstrip("\n") for item in items if item is not IDLE]


def test_the_splitter_keeps_numbers_offsets_and_a_line_past_the_limit_as_one_line():
    splitter = Splitter("x")
    data = b"a\r\nbb\n" + b"c" * (5 << 20) + b"\nd\n\xff\n"
    lines = [line for start in range(0, len(data), 1 << 16) for line in splitter.push(data[start : start + (1 << 16)])]
    assert [(line.number, line.text, line.problem) for line in lines] == [
        (1, "a\r\n", None),
        (2, "bb\n", None),
        (3, "", OVER_LONG),
        (4, "d\n", None),
        (5, "", "not valid UTF-8"),
    ]
    assert splitter.position.offset == len(data) and splitter.position.line == 6
    assert list(splitter.end()) == []  # the input ended on a line end


def test_a_gzipped_file_is_read_whole_and_resumed_at_a_line(tmp_path):
    path = tmp_path / "flows.log.gz"
    path.write_bytes(gzip.compress(rows(0, 100).encode()))
    source = FileLines(path)
    items = list(source.lines())
    assert texts(items) == [f"row {i}" for i in range(100)] and items[-1].number == 100
    middle = Position(str(path), source.position.identity, len(rows(0, 40).encode()), 41)
    assert texts(FileLines(path).lines(middle)) == [f"row {i}" for i in range(40, 100)]


def test_a_followed_log_is_read_as_it_grows_and_across_a_rotation(tmp_path):
    log = tmp_path / "conn.log"
    log.write_text(rows(0, 3))
    source = FileLines(log, follow=True, poll_seconds=0.001, idle_seconds=0.002)
    lines = source.lines()
    got = [next(lines) for _ in range(3)]
    assert next(lines) is IDLE  # nothing new yet
    with open(log, "a") as handle:
        handle.write(rows(3, 2) + "row 5 without its end")
    got += [next(lines) for _ in range(2)]
    assert next(lines) is IDLE  # a line without its end waits for it
    with open(log, "a") as handle:
        handle.write("\n")
    got.append(next(lines))
    log.rename(tmp_path / "conn.1.log")  # Zeek's rotation: renamed, a new file under the name
    with open(tmp_path / "conn.1.log", "a") as handle:
        handle.write(rows(6, 1))  # written to the old file before it was closed
    log.write_text(rows(7, 2))
    got += [item for item in (next(lines) for _ in range(4)) if item is not IDLE]
    assert texts(got) == [f"row {i}" for i in range(5)] + ["row 5 without its end"] + ["row 6", "row 7", "row 8"]
    assert [item.number for item in got[-3:]] == [7, 1, 2] and got[-1].path == str(log)


def test_a_restart_after_a_rotation_while_down_reads_the_renamed_file_s_rest_first(tmp_path):
    log = tmp_path / "conn.log"
    log.write_text(rows(0, 10))
    source = FileLines(log)
    list(source.lines())
    committed = Position(str(log), source.position.identity, len(rows(0, 6).encode()), 7)
    log.rename(tmp_path / "conn.2026-12-05.log")
    log.write_text(rows(10, 3))
    assert texts(FileLines(log).lines(committed)) == [f"row {i}" for i in range(6, 13)]


def test_a_truncated_log_is_read_again_from_its_start(tmp_path):
    log = tmp_path / "conn.log"
    log.write_text(rows(0, 5))
    lines = FileLines(log, follow=True, poll_seconds=0.001, idle_seconds=0.002).lines()
    assert texts(next(lines) for _ in range(5)) == [f"row {i}" for i in range(5)]
    log.write_text(rows(100, 2))  # copytruncate: the same file, shorter than what was read
    got = [item for item in (next(lines) for _ in range(4)) if item is not IDLE]
    assert texts(got)[:2] == ["row 100", "row 101"]


def test_a_pipe_is_read_as_it_comes_gzip_included():
    for data in (rows(0, 500).encode(), gzip.compress(rows(0, 500).encode())):
        read, write = os.pipe()
        os.write(write, data)
        os.close(write)
        assert texts(StreamLines("<pipe>", read).lines()) == [f"row {i}" for i in range(500)]
        os.close(read)


def test_a_folder_is_read_oldest_first_and_a_restart_passes_over_files_done(tmp_path):
    for index, name in enumerate(["conn.b.log", "conn.a.log", "conn.c.log"]):
        (tmp_path / name).write_text(rows(index * 10, 2))
        os.utime(tmp_path / name, (1000 + index, 1000 + index))
    (tmp_path / "notes.txt").write_text("not a log\n")
    source = FolderLines(tmp_path, "conn.*")
    assert texts(source.lines()) == ["row 0", "row 1", "row 10", "row 11", "row 20", "row 21"]
    done = FolderLines(tmp_path, "conn.*")
    lines = done.lines()
    next(lines), next(lines), next(lines)
    position = done.position
    assert len(position.done) == 1 and position.line == 2
    assert texts(FolderLines(tmp_path, "conn.*").lines(position)) == ["row 11", "row 20", "row 21"]


def test_what_cannot_be_followed_or_read_is_one_clear_error(tmp_path):
    gz = tmp_path / "x.log.gz"
    gz.write_bytes(gzip.compress(b"a\n"))
    with pytest.raises(DataError, match="cannot be followed"):
        list(FileLines(gz, follow=True).lines())
    with pytest.raises(DataError, match="no such file or folder"):
        open_lines(tmp_path / "missing.log")
    with pytest.raises(DataError, match="not a file, a folder or a pipe"):
        open_lines("/dev/null")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(DataError, match="--follow is for a growing file"):
        open_lines(tmp_path / "pipe", follow=True)
