"""Checkpoints: written atomically, and a resume skips one that does not load."""

from __future__ import annotations

import os
import time

import pytest
import torch

from ids_lightning.training.callbacks.checkpoint import AtomicCheckpointIO, resumable


def test_a_failed_write_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1, "weights": torch.ones(3)}, path)
    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises for a lambda
        io.save_checkpoint({"epoch": 2, "hook": lambda: None}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_resume_falls_back_to_the_newest_checkpoint_that_loads(tmp_path, caplog):
    older, newer, last = tmp_path / "epoch_001.ckpt", tmp_path / "epoch_003.ckpt", tmp_path / "last.ckpt"
    for index, path in enumerate((older, newer, last)):
        torch.save({"epoch": index}, path)
        os.utime(path, (time.time() + index, time.time() + index))
    assert resumable(tmp_path) == last
    last.write_bytes(last.read_bytes()[:50])  # a truncated file, as a full disk leaves it
    assert resumable(tmp_path) == newer
    assert "does not load" in caplog.text
    newer.write_bytes(b"garbage")
    assert resumable(tmp_path) == older
    older.unlink()
    assert resumable(tmp_path) is None
