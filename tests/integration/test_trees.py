"""``ids trees`` on the real files: a run folder that the torch-free detector scores like LightGBM."""

from __future__ import annotations

import json

import pytest

from ids_lightning.analysis import trees
from ids_lightning.cli import main as ids
from tests.helpers import DATA_DIR, NSL_KDD_TEST

SMALL = trees.TreeSearch(trials=2, max_rounds=30)


@pytest.mark.parametrize(("dataset", "classes"), [("nsl_kdd", 5), ("iot23", 2), ("bot_iot", 3)])
def test_tuned_trees_make_a_run_folder_on_every_dataset(dataset, classes, tmp_path, monkeypatch):
    monkeypatch.setenv("IDS_DATA_DIR", str(DATA_DIR))
    folder = tmp_path / "trees"
    summary = trees.tuned_trees([f"dataset={dataset}", "logger=none"], folder, SMALL)
    assert summary["model"] == "lightgbm" and summary["num_classes"] == classes
    assert summary["onnx/parity_ok"] and summary["onnx/max_abs_diff"] <= 1e-5
    study = json.loads((folder / "study.json").read_text())
    assert summary["val/f1_macro"] == pytest.approx(max(t["val/f1_macro"] for t in study["trials"]))
    files = ("preprocess.json", "model.onnx", "novelty.json", "operating_points.json", "explain.json", "density.json")
    assert all((folder / name).is_file() for name in files)
    assert json.loads((folder / "metrics.json").read_text())["test/acc"] == summary["test/acc"]
    made = json.loads((folder / "provenance.json").read_text())
    assert made["ended_at"] and len(made["data"]) >= 1 and made["config_sha256"]
    if dataset != "nsl_kdd":
        return
    assert summary["test/acc"] > 0.6  # five classes: far above chance
    out = tmp_path / "alerts.jsonl"
    arguments = ["--run", str(folder), "--input", str(NSL_KDD_TEST), "--output", str(out), "--no-explain"]
    assert ids(["detect", *arguments]) == 0
    detected = json.loads(out.with_name(out.name + ".summary.json").read_text())
    assert detected["accuracy"] == pytest.approx(summary["test/acc"], abs=1e-9)
    assert detected["model_trained_with"]["data_sha256"] == made["data_sha256"]  # the trees' ONNX metadata
