"""The edge bench with torch eager beside ONNX (three measurement processes; the torch-free
bench and the detector are in tests/integration/test_edge.py)."""

from __future__ import annotations

import json

import pytest

from ids_lightning.bench.edge_torch import torch_rows
from ids_lightning.edge.latency import bench, format_table
from tests.helpers import trained_run


@pytest.fixture(scope="module")
def nsl_run(tmp_path_factory, data_dir):
    return trained_run(tmp_path_factory, "nsl_run", "debug=limit")


def test_edge_bench_with_torch_reports_every_field(nsl_run):
    folder, _ = nsl_run
    report = bench(folder, batches=[1, 8], threads=[1], latency_calls=50, seconds=0.05, extra=torch_rows)
    engines = {(r["engine"], r["threads"]) for r in report["results"]}
    assert engines == {("onnx_fp32", 1), ("onnx_int8", 1), ("torch_eager", 1)}
    for row in report["results"]:
        assert {"batch1_p50_us", "batch1_p95_us", "batch1_p99_us", "rows_per_s", "peak_rss_mb", "accuracy"} <= set(row)
        assert set(row["rows_per_s"]) == {"1", "8"} and row["peak_rss_mb"] > 0
    assert "onnx_fp32_vs_torch/threads_1/batch1_speedup" in report["ratios"]
    assert json.loads((folder / "bench.json").read_text()) == report
    assert "onnx_int8" in format_table(report)
