"""An output that is the input under another name (a hard link, a symlink) is the input."""

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
