"""The export writes only its own files: a link planted in the run folder is replaced, never
written through; a checkpoint that is a FIFO is refused without blocking."""

from __future__ import annotations

import os

import pytest
import torch

from ids_lightning.core.errors import DataError
from ids_lightning.models.nets import CNN
from ids_lightning.training.export import ExportOptions, ProbabilityHead, export_run, load_net_weights


def test_a_planted_link_is_replaced_and_what_it_points_at_is_untouched(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.int8.onnx").symlink_to(outside)
    (run / "model.onnx").symlink_to(outside)
    torch.manual_seed(0)
    net = CNN(num_features=6, num_classes=3).eval()
    split = (torch.rand(64, 6), torch.randint(0, 3, (64,)))
    tensors = {"train": split, "val": split, "test": split}
    options = ExportOptions(verify_rows=64, calibration_rows=32, bench_rows=16)
    summary = export_run(ProbabilityHead(net, binary=False).eval(), tensors, run, ["a", "b", "c"], options)
    assert outside.read_text() == "keep me"
    assert not (run / "model.onnx").is_symlink() and not (run / "model.int8.onnx").is_symlink()
    assert summary["onnx/parity_ok"] and summary["onnx/int8_bytes"] == (run / "model.int8.onnx").stat().st_size
    written = sorted(p.name for p in run.iterdir())
    assert written == ["bench_labels.npy", "bench_rows.npy", "model.int8.onnx", "model.onnx"]


def test_a_fifo_named_like_a_checkpoint_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "epoch_003.ckpt"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        load_net_weights(CNN(num_features=6, num_classes=3), fifo)
