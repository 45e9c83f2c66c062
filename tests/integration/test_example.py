"""The shipped example run folder loads and reproduces its recorded KDDTest+ accuracy."""

from __future__ import annotations

import json

import pytest

from ids_lightning.edge.detector import detect
from ids_lightning.edge.latency import bench
from ids_lightning.training.config import PROJECT_ROOT
from tests.helpers import NSL_KDD_TEST

EXAMPLE = PROJECT_ROOT / "examples" / "nsl_kdd_cnn_lstm"


def test_the_example_is_small_and_complete():
    files = {p.name for p in EXAMPLE.iterdir()}
    assert files == {"model.onnx", "model.int8.onnx", "preprocess.json", "novelty.json", "explain.json", "metrics.json"}
    assert sum(p.stat().st_size for p in EXAMPLE.iterdir()) < 1 << 20


@pytest.mark.parametrize(
    ("model", "key"), [("model.onnx", "onnx/fp32_test_acc"), ("model.int8.onnx", "onnx/int8_test_acc")]
)
def test_the_detector_reproduces_the_recorded_accuracy(data_dir, tmp_path, model, key):
    recorded = json.loads((EXAMPLE / "metrics.json").read_text())[key]
    summary = detect(EXAMPLE, NSL_KDD_TEST, tmp_path / "alerts.jsonl", model=model, progress=False, explain=None)
    assert summary["records"] == 22544 and summary["accuracy"] == pytest.approx(recorded, abs=1e-4)


def test_the_edge_bench_runs_on_the_example_without_data_rows(tmp_path):
    folder = tmp_path / "example"
    folder.mkdir()
    for path in EXAMPLE.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    report = bench(folder, batches=[1, 8], threads=[1], latency_calls=20, seconds=0.02)
    assert report["rows_source"].startswith("synthetic") and {r["accuracy"] for r in report["results"]} == {None}
    assert all(r["rows_per_s"]["8"] > 0 for r in report["results"])
