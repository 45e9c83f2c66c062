"""An output that is the input under another name (a hard link, a symlink) is the input; a gzip
file cut short and one with garbage after its end are told apart."""

from __future__ import annotations

import os

from ids_lightning.core.fileio import same_file


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
