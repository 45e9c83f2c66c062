"""A run folder's JSON states are read as data: regular files only, bounded, no key twice."""

from __future__ import annotations

import json
import os

import pytest

from ids_lightning.core.errors import DataError, PreprocessStateError
from ids_lightning.core.fileio import read_json_state, regular_file
from ids_lightning.core.novelty import Novelty
from ids_lightning.core.preprocess import Preprocessor
from tests.helpers import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "nsl_kdd_cnn_lstm"


def test_a_key_given_twice_is_refused_not_last_one_wins(tmp_path):
    text = (EXAMPLE / "preprocess.json").read_text()
    doubled = tmp_path / "preprocess.json"
    doubled.write_text(text.replace("{", '{"scaler": "minmax", ', 1))
    assert json.loads(doubled.read_text())  # plain JSON accepts it, silently
    with pytest.raises(PreprocessStateError, match="duplicate keys \\['scaler'\\]"):
        Preprocessor.load(doubled)
    with pytest.raises(ValueError, match="duplicate keys \\['a'\\]"):
        read_json_state(_write(tmp_path / "n.json", '{"a": 1, "b": {"c": 2}, "a": 3}'))


def test_a_fifo_a_folder_or_a_dangling_link_is_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "dangling.json").symlink_to(tmp_path / "gone")
    with pytest.raises(DataError, match="not a regular file"):
        read_json_state(fifo)  # returns at once: nothing opens the pipe
    with pytest.raises(DataError, match="not a regular file"):
        regular_file(tmp_path / "folder.json")
    with pytest.raises(DataError, match="a link to nothing"):
        Novelty.load(tmp_path / "dangling.json")


def test_an_oversized_state_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr("ids_lightning.core.fileio.MAX_STATE_BYTES", 10)
    with pytest.raises(DataError, match="not a state this project wrote"):
        read_json_state(_write(tmp_path / "big.json", '{"a": "' + "x" * 20 + '"}'))


def _write(path, text):
    path.write_text(text)
    return path


def test_a_corrupt_parquet_file_or_model_is_one_error_naming_it(tmp_path):
    from ids_lightning.core import parquet
    from ids_lightning.edge.runtime import session

    junk = _write(tmp_path / "capture.parquet", "PAR1 not really")
    with pytest.raises(DataError, match=r"capture\.parquet: not a readable Parquet file"):
        parquet.read(junk, "iot23")
    with pytest.raises(DataError, match=r"capture\.parquet: not a readable Parquet file"):
        parquet.row_groups(junk)
    with pytest.raises(DataError, match=r"model\.onnx: not an ONNX model onnxruntime can load"):
        session(_write(tmp_path / "model.onnx", "not a model"))


def test_a_sweep_file_that_is_not_its_json_object_names_the_file(tmp_path):
    from ids_lightning.core.fileio import read_json_object

    for text in ("not json", "[1, 2]", '{"a": 1, "a": 2}', "\xff"):
        with pytest.raises(DataError, match=r"bench\.json: not an edge bench report"):
            read_json_object(_write(tmp_path / "bench.json", text), "an edge bench report")


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path):
    from ids_lightning.core.fileio import read_yaml_data

    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]"
        for i in range(20)
    ]
    bomb = _write(tmp_path / "config.yaml", "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="YAML aliases are not part of a run's config"):
        read_yaml_data(bomb)  # refused at the first alias, before 4^20 nodes are walked
    assert read_yaml_data(_write(tmp_path / "plain.yaml", "model:\n  net: {width: 64}\n")) == {
        "model": {"net": {"width": 64}}
    }


def test_a_yaml_key_given_twice_is_refused_not_last_one_wins(tmp_path):
    from ids_lightning.core.fileio import read_yaml_data

    twice = _write(tmp_path / "config.yaml", "seed: 7\nmodel:\n  lr: 0.1\n  lr: 0.5\n")
    with pytest.raises(ValueError, match=r"duplicate keys \['lr'\]"):
        read_yaml_data(twice)
