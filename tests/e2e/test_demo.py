"""``ids demo`` as a newcomer runs it: exit status 0, every output it announces, no result dict."""

from __future__ import annotations

import os
import subprocess
import sys

from ids_lightning.training.config import PROJECT_ROOT
from tests.helpers import DATA_DIR


def test_the_demo_runs_the_whole_pipeline_and_exits_0(tmp_path):
    env = {**os.environ, "IDS_DATA_DIR": str(DATA_DIR), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "ids_lightning", "demo", "--epochs", "1", "--output", str(tmp_path / "demo")],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("metrics.json", "model.onnx", "model.int8.onnx", "alerts.jsonl", "bench.json", "curves.png"):
        assert (tmp_path / "demo" / name).is_file(), name
    assert "demo finished in" in result.stdout
    assert not result.stderr.strip().splitlines()[-1].startswith("{")
