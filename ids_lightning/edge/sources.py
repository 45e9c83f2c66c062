"""Where the detector's lines come from: a file (plain or gzipped), standard input or a pipe read
as it arrives, a growing log followed across Zeek's rotations, or a folder of rotated logs.

Lines are read as bytes and decoded here, one at a time and within the line limit, so that where
each one ends is known: the sensor's state records where the last committed line ended, and a
restart goes on from there. A live source yields :data:`IDLE` when no whole line has come for a
while, so that what was read is scored and committed without waiting for more.

A followed log is tracked by file identity (device and inode), not by name: when Zeek renames it
and starts a new file under the old name, the old file is read to its end first; a log cut to a
smaller size (``copytruncate``) is read again from its start.
"""

from __future__ import annotations

import gzip
import os
import select
import stat
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ids_lightning.core.errors import DataError
from ids_lightning.core.fileio import (
    BAD_UTF8,
    GZIP_READ_ERRORS,
    LONE_CR,
    MAX_LINE_CHARS,
    OVER_LONG,
    TruncatedFileError,
    lone_carriage_return,
)

IDLE = None  # yielded by a live source when no whole line has come for ``idle_seconds``
GZIP_MAGIC = b"\x1f\x8b"
MAX_LINE_BYTES = 4 * MAX_LINE_CHARS  # UTF-8 takes at most four bytes a character


@dataclass
class Position:
    """Where the next line of a source starts: the file (path and identity), the byte offset in
    it (in the decompressed stream for a gzipped file), the number of its next line, and, for a
    folder, the identities of the files already read to their end."""

    path: str = ""
    identity: tuple[int, int] | None = None
    offset: int = 0
    line: int = 1
    done: list[tuple[int, int]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> Position:
        known = state.get("identity")
        return cls(
            str(state["path"]),
            (int(known[0]), int(known[1])) if known else None,
            int(state["offset"]),
            int(state["line"]),
            [(int(a), int(b)) for a, b in state.get("done", [])],
        )


@dataclass
class Line:
    """One line: its number in its file, its text (empty when it cannot be read) and why not,
    and the file it came from."""

    number: int
    text: str
    problem: str | None
    path: str


def decode(raw: bytes, first: bool) -> tuple[str, str | None]:
    """A line's text, or an empty one and the problem, as :func:`~ids_lightning.core.fileio.text_lines` reads it."""
    if first and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "", BAD_UTF8
    if lone_carriage_return(text):
        return "", LONE_CR
    if len(text) > MAX_LINE_CHARS:
        return "", OVER_LONG
    return text, None


class Splitter:
    """Bytes as they arrive to whole lines; a line past the limit is consumed, never held whole,
    and becomes one line with its problem."""

    def __init__(self, path: str, line: int = 1, offset: int = 0):
        self.path, self.position = path, Position(path, None, offset, line)
        self.partial = b""
        self.over_long = False

    def push(self, data: bytes) -> Iterator[Line]:
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            yield self._whole(data[start : end + 1])
            start = end + 1
        rest = data[start:]
        if self.over_long or len(self.partial) + len(rest) > MAX_LINE_BYTES:
            # the over-long line's bytes are counted as they pass, never held
            self.position.offset += len(self.partial) + len(rest)
            self.over_long, self.partial = True, b""
        else:
            self.partial += rest

    def end(self) -> Iterator[Line]:
        """The last line, where the input stops without a line end."""
        if self.partial or self.over_long:
            yield self._whole(b"")

    def _whole(self, tail: bytes) -> Line:
        raw, self.partial = self.partial + tail, b""
        number = self.position.line
        if self.over_long:
            self.over_long = False
            text, problem = "", OVER_LONG
        else:
            text, problem = decode(raw, number == 1)
        self.position.line += 1
        self.position.offset += len(raw)
        return Line(number, text, problem, self.path)


class FileLines:
    """The lines of one regular file (plain or gzipped) from a position; with ``follow``, a plain
    file is followed as it grows and across rotations (renamed and made again, or truncated)."""

    def __init__(self, path: Path, follow: bool = False, poll_seconds: float = 0.1, idle_seconds: float = 0.5):
        self.path, self.follow = Path(path), follow
        self.poll_seconds, self.idle_seconds = poll_seconds, idle_seconds
        self.splitter = Splitter(str(path))

    @property
    def position(self) -> Position:
        return self.splitter.position

    def lines(self, start: Position | None = None) -> Iterator[Line | None]:
        """Lines from ``start`` (a committed position: of this file, or of the file it was before
        a rotation, which is read to its end first) or from the first; followed, :data:`IDLE`
        while the file does not grow, for ever."""
        if start is not None and start.identity is not None and _identity(self.path) != start.identity:
            rotated = _sibling(self.path, start.identity)
            if rotated is not None:  # renamed while the sensor was down: its rest first
                yield from FileLines(rotated).lines(Position(str(rotated), start.identity, start.offset, start.line))
            start = None
        handle = self._open(start.offset if start else 0, start.line if start else 1)
        waited = 0.0
        try:
            while True:
                data = self._read(handle)
                if data:
                    yield from self.splitter.push(data)
                    waited = 0.0
                    continue
                if not self.follow:
                    yield from self.splitter.end()
                    return
                if self._rotated():
                    while data := self._read(handle):  # what was written before the rename
                        yield from self.splitter.push(data)
                    yield from self.splitter.end()  # the old file's last line, then the new file
                    handle.close()
                    handle = self._open(0, 1)
                    continue
                time.sleep(self.poll_seconds)
                waited += self.poll_seconds
                if waited >= self.idle_seconds:
                    yield IDLE
                    waited = 0.0
        finally:
            handle.close()

    def _open(self, offset: int, line: int):
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed by lines()
        except OSError as err:
            raise DataError(f"{self.path}: cannot be read ({err.strerror})") from err
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            handle.close()
            raise DataError(f"{self.path}: not a regular file")
        if handle.read(2) == GZIP_MAGIC:
            if self.follow:
                handle.close()
                raise DataError(f"{self.path}: a gzipped log is complete and cannot be followed; drop --follow")
            handle.close()
            handle = gzip.open(self.path, "rb")  # noqa: SIM115 - closed by lines()
        handle.seek(offset)  # a gzipped file decompresses up to it
        self.splitter = Splitter(str(self.path), line, offset)
        self.splitter.position.identity = (info.st_dev, info.st_ino)
        return handle

    def _read(self, handle) -> bytes:
        try:
            return handle.read1(1 << 16) if hasattr(handle, "read1") else handle.read(1 << 16)
        except GZIP_READ_ERRORS as err:
            raise TruncatedFileError.of(self.path, self.position.line - 1, err) from err

    def _rotated(self) -> bool:
        """Whether the name now leads to another file, or the file is shorter than what was read."""
        now = _identity(self.path)
        if now is None:  # renamed, the new one not made yet
            return False
        return now != self.position.identity or os.stat(self.path).st_size < self.position.offset


class StreamLines:
    """Standard input or a pipe, read as it arrives (a gzip stream is decompressed on the way);
    :data:`IDLE` while nothing comes. A stream has no position to resume from."""

    def __init__(self, name: str, fd: int, idle_seconds: float = 0.5):
        self.name, self.fd, self.idle_seconds = name, fd, idle_seconds
        self.splitter = Splitter(name)

    @property
    def position(self) -> Position:
        return self.splitter.position

    def lines(self, start: Position | None = None) -> Iterator[Line | None]:
        decompress = None
        first = True
        while True:
            ready, _, _ = select.select([self.fd], [], [], self.idle_seconds)
            if not ready:
                yield IDLE
                continue
            data = os.read(self.fd, 1 << 16)
            if first and data:
                first = False
                if data.startswith(GZIP_MAGIC):
                    decompress = zlib.decompressobj(wbits=47)
            if not data:
                if decompress is not None and not decompress.eof:
                    raise TruncatedFileError(self.name, self.position.line - 1, "the gzip stream ends early")
                yield from self.splitter.end()
                return
            yield from self.splitter.push(decompress.decompress(data) if decompress else data)


class FolderLines:
    """The logs of a folder (``pattern``), oldest first by modification time; each read to its
    end, the newest followed when ``follow``. Files already read (by identity) are passed over."""

    def __init__(self, folder: Path, pattern: str, follow: bool = False):
        self.folder, self.pattern, self.follow = Path(folder), pattern, follow
        self.current: FileLines | None = None
        self.done: list[tuple[int, int]] = []

    @property
    def position(self) -> Position:
        position = self.current.position if self.current else Position(str(self.folder))
        return Position(position.path, position.identity, position.offset, position.line, list(self.done))

    def lines(self, start: Position | None = None) -> Iterator[Line | None]:
        self.done = list(start.done) if start else []
        files = self._files()
        if not files:
            raise DataError(f"{self.folder}: no file matches {self.pattern!r}")
        for index, path in enumerate(files):
            ident = _identity(path)
            if ident in self.done:
                continue
            last = index == len(files) - 1
            self.current = FileLines(path, follow=self.follow and last)
            resume = start if start is not None and start.identity == ident else None
            yield from self.current.lines(resume)
            self.done.append(ident)

    def _files(self) -> list[Path]:
        found = [p for p in self.folder.glob(self.pattern) if p.is_file() and not p.name.startswith(".")]
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def open_lines(
    source: str | Path, follow: bool = False, pattern: str = "*conn*log*"
) -> FileLines | StreamLines | FolderLines:
    """The line source for ``--input``: ``-`` (standard input), a pipe or FIFO, a folder of
    rotated logs, or a file; ``follow`` keeps reading a growing file or a folder's newest log."""
    if str(source) == "-":
        return StreamLines("<stdin>", sys.stdin.fileno())
    path = Path(source)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such file or folder" + (" (a link to nothing)" if path.is_symlink() else "")
        ) from None
    if stat.S_ISDIR(mode):
        return FolderLines(path, pattern, follow)
    if stat.S_ISFIFO(mode):
        if follow:
            raise DataError(f"{path}: a pipe is read as it comes; --follow is for a growing file")
        return StreamLines(str(path), os.open(path, os.O_RDONLY))
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a file, a folder or a pipe of flows")
    return FileLines(path, follow)


def _sibling(path: Path, wanted: tuple[int, int]) -> Path | None:
    """The file beside ``path`` with identity ``wanted`` (the log as Zeek renamed it)."""
    for entry in os.scandir(path.parent):
        info = entry.stat(follow_symlinks=False)
        if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) == wanted:
            return Path(entry.path)
    return None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino
