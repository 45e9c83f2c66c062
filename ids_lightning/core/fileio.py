"""File helpers shared by training and edge code: compressed text, atomic writes, checked
downloads (standard library only)."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import logging
import os
import shutil
import socket
import stat
import sys
import tempfile
import urllib.parse
import urllib.request
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ids_lightning.core.errors import DataError

log = logging.getLogger(__name__)


MAX_LINE_CHARS = 1 << 20  # a longer line is a malformed row, not a reason to hold it whole
BAD_UTF8 = "not valid UTF-8"
OVER_LONG = f"longer than {MAX_LINE_CHARS:,} characters"


def open_text(path: str | Path) -> IO[str]:
    """Open a text file, transparently decompressing ``.gz``; a byte-order mark is dropped, and
    bytes that are not UTF-8 come through as lone surrogates (see :func:`text_lines`) instead of
    stopping the read. Lines end at ``\n`` only (a ``\r\n`` end is kept as written), so line
    numbers are those of ``grep -n`` and ``sed``: a lone carriage return does not start a line."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="\n")
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="\n")


LONE_CR = "a carriage return inside the line (lines end with \\n or \\r\\n)"


def lone_carriage_return(text: str) -> bool:
    """Whether a line (as :func:`open_text` reads it) holds a carriage return that does not end it."""
    return "\r" in text and "\r" in text.rstrip("\n").removesuffix("\r")


def header_line(handle: IO[str], path: str | Path, number: int = 1) -> str:
    """One line of a file's head (a header, or a first row that format sniffing looks at), read
    with the limit of every other line: a longer one is an error naming it, never read whole."""
    text = handle.readline(MAX_LINE_CHARS + 1)
    if len(text) > MAX_LINE_CHARS and not text.endswith("\n"):
        raise DataError(f"{path}:{number}: {OVER_LONG}; not a header or a flow")
    if lone_carriage_return(text):
        raise DataError(f"{path}:{number}: {LONE_CR}; not a header or a flow")
    return text


class TruncatedFileError(DataError):
    """A compressed file ends before its end-of-stream marker (a copy cut short), or, where
    ``trailing``, goes on after it with bytes that are no gzip data (two files stuck together)."""

    def __init__(self, path: str | Path, lines: int, reason: str, trailing: bool = False):
        self.path, self.lines = str(path), lines
        if trailing:
            super().__init__(f"{path}: bytes that are not gzip data follow its end, after line {lines} ({reason})")
        else:
            super().__init__(f"{path}: the file ends early, after line {lines} ({reason})")

    @classmethod
    def of(cls, path: str | Path, lines: int, err: Exception) -> TruncatedFileError:
        """The error of a gzip read that failed (one of ``GZIP_READ_ERRORS``) after ``lines``
        whole lines: a whole member read, then something else where the next member would start,
        is trailing garbage; anything else is a cut."""
        trailing = isinstance(err, gzip.BadGzipFile) and str(err).startswith("Not a gzipped file")
        return cls(path, lines, str(err), trailing=trailing)


GZIP_READ_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)  # what reading a cut or stuck-together gzip raises


def text_lines(handle: IO[str], path: str | Path, first: int = 1) -> Iterator[tuple[int, str, str | None]]:
    """``(line number, text, problem)`` for each line of ``handle`` (opened by :func:`open_text`).

    A line that is not valid UTF-8, longer than ``MAX_LINE_CHARS`` or holding a lone carriage
    return comes with its problem and an empty text (an over-long line is consumed in pieces,
    never held whole); a truncated archive raises :class:`TruncatedFileError` naming the last
    whole line.
    """
    number = first - 1
    while True:
        try:
            text = handle.readline(MAX_LINE_CHARS + 1)
            if not text:
                return
            number += 1
            problem = None
            if len(text) > MAX_LINE_CHARS and not text.endswith("\n"):
                while (rest := handle.readline(MAX_LINE_CHARS)) and not rest.endswith("\n"):
                    pass
                text, problem = "", OVER_LONG
        except GZIP_READ_ERRORS as err:
            raise TruncatedFileError.of(path, number, err) from err
        if not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text):
            text, problem = "", BAD_UTF8
        elif lone_carriage_return(text):
            text, problem = "", LONE_CR
        yield number, text, problem


MAX_STATE_BYTES = 64 << 20  # a run folder's JSON state past this is not one the project wrote


def regular_file(path: str | Path, what: str = "file") -> Path:
    """``path`` if it is a regular file (links followed); a FIFO, device, folder or a link to
    nothing is one DataError, so nothing waits on a pipe or reads a device for a file."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what}" + (" (a link to nothing)" if path.is_symlink() else "")) from None
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a regular file (a {what} is expected)")
    return path


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: the same device and inode (a hard link or a symlink to
    the input is the input), or, where one does not exist yet, the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


@contextmanager
def readable_twice(path: str | Path) -> Iterator[Path]:
    """``path`` itself when it is a regular file; a stream (``-`` for standard input, a pipe, a
    FIFO) is first read once, whole, into a temporary file that keeps its name, so that sniffing
    the format and then reading the rows see the same bytes (opening a pipe again loses what the
    first read took). A folder or a device is refused."""
    if str(path) != "-":
        path = Path(path)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:  # the reader says so, naming it
            yield path
            return
        if stat.S_ISREG(mode):
            yield path
            return
        if not stat.S_ISFIFO(mode):
            raise DataError(f"{path}: not a file or a pipe of flows")
    stdin = str(path) == "-"
    with tempfile.TemporaryDirectory(prefix="ids-input-") as folder:
        copy = Path(folder) / ("stdin" if stdin else Path(path).name)
        source = open(sys.stdin.fileno(), "rb", closefd=False) if stdin else open(path, "rb")  # noqa: SIM115
        with source, open(copy, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        yield copy


def _bounded_text(path: str | Path, kind: str, content: str) -> str:
    """The UTF-8 text of a regular file of at most ``MAX_STATE_BYTES``."""
    path = regular_file(path, kind)
    if path.stat().st_size > MAX_STATE_BYTES:
        raise DataError(f"{path}: over {MAX_STATE_BYTES >> 20} MiB, not a {content} this project wrote")
    return path.read_text(encoding="utf-8")


def read_json_state(path: str | Path) -> Any:
    """A JSON state of a run folder read as data: a regular file of at most ``MAX_STATE_BYTES``,
    UTF-8, and no key twice in an object (the last of two would win silently). ValueError (or
    DataError, a ValueError) for anything else."""
    return json.loads(_bounded_text(path, "JSON file", "state"), object_pairs_hook=_without_duplicate_keys)


def read_yaml_data(path: str | Path) -> Any:
    """A YAML file of a run folder read as plain data: a regular file of at most
    ``MAX_STATE_BYTES``, YAML's safe loader (no tags that build objects), no aliases (the
    project never writes them; a few lines of them expand to billions of nodes) and no key
    twice in a mapping.
    ValueError (or DataError) for anything else."""
    import yaml

    class PlainLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise ValueError(f"{path}: YAML aliases are not part of a run's config")
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            mapping = super().construct_mapping(node, deep)
            if len(mapping) < len(node.value):  # a key came twice: the last one won
                counts = Counter(self.construct_object(key) for key, _ in node.value)
                twice = sorted(str(key) for key, count in counts.items() if count > 1)
                raise ValueError(f"{path}: duplicate keys {twice} (the last would win silently)")
            return mapping

    return yaml.load(_bounded_text(path, "YAML file", "config"), Loader=PlainLoader)


def read_json_object(path: str | Path, what: str) -> dict:
    """A JSON object that a run or sweep folder holds (``what`` says which: metrics, a bench
    report, a seeds summary), read as :func:`read_json_state` does; anything else is one
    DataError naming the file."""
    try:
        obj = read_json_state(path)
    except DataError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise DataError(f"{path}: not {what} ({type(err).__name__}: {str(err)[:160]})") from err
    if not isinstance(obj, dict):
        raise DataError(f"{path}: not {what} (not a JSON object)")
    return obj


def _without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = sorted({key for key, _ in pairs if key in seen or seen.add(key)})
        raise ValueError(f"duplicate keys {twice}")
    return obj


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


# what only a write can fail with: a full disk or quota, a file-size limit, a read-only file system
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


class OutputError(DataError):
    """A file the project writes could not be written whole; the file at its path is as it was."""

    def __init__(self, path: str | Path, err: OSError, done: str = ""):
        self.path, self.error = Path(path), err
        kept = "an earlier file there is left as it was" if self.path.is_file() else "nothing was written"
        super().__init__(f"{self.path}: not written ({err.strerror or err}){done}; {kept}")


def output_folder(path: str | Path) -> Path:
    """``path`` as a folder to write into, made with its parents if missing; a file in its place
    or a folder that cannot be made is one :class:`OutputError`."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise FileExistsError(errno.EEXIST, "a file is in the folder's place")
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(path, err) from err
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` (same suffix, for writers that infer the format
    from it), renamed onto ``path`` only when the block succeeds; removed otherwise. A folder in
    the way, a device or pipe in its place (``/dev/null`` is never replaced by a file), a folder
    that cannot be made, or a full disk is one :class:`OutputError` naming ``path`` (another
    error of the block is its own). A link at ``path`` is replaced, never written through."""
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "a folder is in its place")
        if path.exists() and not path.is_symlink() and not path.is_file():  # a link is replaced, never followed
            raise OSError(errno.EEXIST, "a device, pipe or socket is in its place; it is never replaced")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
    except OSError as err:
        raise OutputError(path, err) from err
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in WRITE_ERRNOS or isinstance(err, IsADirectoryError):
            raise OutputError(path, err) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(urls: list[str], dest: str | Path, sha256: str, timeout: float = 30.0) -> Path:
    """Try each URL in turn; keep the first file whose sha256 matches. Raise if none does, and
    leave no folder behind that this call made; with no network, raise before trying."""
    dest = Path(dest)
    hosts = {urllib.parse.urlsplit(url).hostname for url in urls} - {None}
    if hosts and not any(_resolves(host) for host in hosts):
        raise DataError(f"could not download {dest.name}: no network (none of {sorted(hosts)} resolves)")
    made = [parent for parent in reversed(dest.parents) if not parent.exists()]
    failures = []
    for url in urls:
        try:
            with atomic_path(dest) as tmp:  # kept only when its sha256 matches
                log.info("downloading %s -> %s", url, dest)
                with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                    while block := response.read(1 << 20):
                        out.write(block)
                actual = sha256_of(tmp)
                if actual != sha256:
                    raise _ChecksumMismatch(f"{url}: sha256 {actual} does not match the expected {sha256}")
            return dest
        except _ChecksumMismatch as err:
            failures.append(str(err))
        except OSError as err:  # the network; a full disk is an OutputError and ends the download
            failures.append(f"{url}: {err}")
    for folder in reversed(made):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    raise DataError(f"could not download {dest.name}:\n  " + "\n  ".join(failures))


class _ChecksumMismatch(Exception):
    """A downloaded file is not the expected one: the next URL is tried."""


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def is_primary_process() -> bool:
    """Whether this process writes a run's shared files: the only process of a plain run, global
    rank 0 of a distributed one. Read from the environment, so that it is known before a trainer
    exists: torchrun sets ``RANK``, SLURM ``SLURM_PROCID``, Lightning's own launcher ``NODE_RANK``
    and ``LOCAL_RANK`` for the processes it starts."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return os.environ[key] == "0"
    return all(os.environ.get(key, "0") == "0" for key in ("NODE_RANK", "LOCAL_RANK"))
