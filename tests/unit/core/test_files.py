"""An output that is the input under another name (a hard link, a symlink) is the input; a gzip
file cut short and one with garbage after its end are told apart."""

from __future__ import annotations

import errno
import os

import pytest

from ids_lightning.core.fileio import OutputError, atomic_path, atomic_write_bytes, same_file


def test_hard_and_symbolic_links_name_the_same_file(tmp_path):
    source = tmp_path / "conn.log"
    source.write_text("flows\n")
    os.link(source, tmp_path / "hard.jsonl")
    (tmp_path / "soft.jsonl").symlink_to(source)
    assert same_file(tmp_path / "hard.jsonl", source) and same_file(tmp_path / "soft.jsonl", source)
    assert not same_file(tmp_path / "new.jsonl", source)  # not there yet: another file
    (tmp_path / "copy.jsonl").write_text("flows\n")
    assert not same_file(tmp_path / "copy.jsonl", source)


def test_a_whole_gzip_followed_by_garbage_is_not_called_cut_short(tmp_path):
    import gzip

    import pytest

    from ids_lightning.core.fileio import TruncatedFileError, open_text, text_lines

    whole = gzip.compress(b"a\nb\n")
    for data, says in ((whole + b"garbage", "bytes that are not gzip data follow its end, after line 2"),
                       (whole[:-6], "ends early")):  # fmt: skip
        path = tmp_path / "rows.txt.gz"
        path.write_bytes(data)
        with pytest.raises(TruncatedFileError, match=says), open_text(path) as handle:
            list(text_lines(handle, path))


def test_an_atomic_write_replaces_a_link_and_never_a_device_pipe_or_folder(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    link = tmp_path / "alerts.jsonl"
    link.symlink_to(outside)
    atomic_write_bytes(link, b"new")
    assert outside.read_text() == "keep me" and not link.is_symlink() and link.read_bytes() == b"new"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target, reason in ((fifo, "a device, pipe or socket"), (tmp_path, "a folder is in its place")):
        with pytest.raises(OutputError, match=f"{target}: not written \\({reason}"):
            atomic_write_bytes(target, b"x")
    full = pytest.raises(OutputError, match=r"not written \(No space left on device\); an earlier file")
    with full, atomic_path(link):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert link.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["alerts.jsonl", "outside.txt", "pipe"]
    )


def test_an_output_folder_with_a_file_in_its_place_is_one_line(tmp_path):
    from ids_lightning.core.fileio import output_folder

    assert output_folder(tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    for target in (tmp_path / "file", tmp_path / "file" / "below"):
        with pytest.raises(OutputError, match=f"{target}: not written"):
            output_folder(target)
