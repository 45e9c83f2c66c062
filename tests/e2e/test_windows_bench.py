"""The windows evaluation end to end at a tiny scale: every configuration of a fold trains,
scores and lands in the JSON and the table."""

from __future__ import annotations

import csv
import json

from ids_lightning.bench.windows import main
from tests.helpers import DATA_DIR


def test_windows_bench_runs_a_fold(tmp_path):
    output = tmp_path / "windows.json"
    args = ["--folds", "iot23:mirai-44-1", "--windows", "1", "4", "--baseline-window", "4", "--seeds", "1"]
    args += [
        "--epochs",
        "3",
        "--output",
        str(output),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--data-dir",
        str(DATA_DIR),
    ]
    table = main(args)
    runs = json.loads(output.read_text())["runs"]
    assert [(r["model"], r["window"], r["context"]) for r in runs] == [
        ("cnn_lstm", 1, False),
        ("cnn_lstm", 4, False),
        ("hist_gradient_boosting", 1, False),
        ("hist_gradient_boosting", 4, True),
    ]
    assert not [r for r in runs if "error" in r]
    assert all(0 <= r["false_alarm_rate"] <= 1 and r["val_f1_macro"] > 0.5 for r in runs)
    with open(output.with_suffix(".csv")) as handle:
        assert len(list(csv.DictReader(handle))) == len(table) == 8  # 4 configurations, then their means
