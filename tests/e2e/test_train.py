"""train.py from the command line (multirun folders) and a real-scale run on KDDTest+."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ids_lightning.edge.detector import detect
from ids_lightning.training.config import PROJECT_ROOT
from ids_lightning.training.run import train
from tests.helpers import DATA_DIR, NSL_KDD_TEST, trained_run
from tests.integration.test_train import (
    FT_TRANSFORMER_SMALL,
    RECURRENT_MODELS,
    fast_dev_run_on_nsl_kdd,
    tabular_run_rebuilt,
)


def run_train(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "IDS_DATA_DIR": str(DATA_DIR)}
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_multirun_writes_one_folder_per_job(tmp_path):
    result = run_train("-m", "model=cnn,lstm", "debug=fast_dev_run", "export=none", f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "multirun").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if (p / "metrics.json").is_file())
    assert jobs == ["0", "1"]
    models = {json.loads((sweep / j / "metrics.json").read_text())["model"] for j in jobs}
    assert models == {"cnn", "lstm"}


def test_two_epochs_beat_the_majority_class_on_kddtest_plus(make_config):
    metrics = train(
        make_config("trainer.max_epochs=2", "dataset.scaler=log_minmax", "logger=none", "callbacks.progress_bar=null")
    )
    majority = 9711 / 22544  # share of normal rows in KDDTest+
    assert metrics["epochs_run"] == 2
    assert metrics["test/acc"] > majority + 0.2
    assert metrics["test/auroc"] > 0.8


def test_a_run_with_learned_category_embeddings_exports_and_detects(tmp_path_factory, tmp_path, data_dir):
    folder, metrics = trained_run(
        tmp_path_factory, "embedding", "debug=limit", "trainer.limit_test_batches=1.0", "dataset.categorical=embedding"
    )
    assert metrics["onnx/parity_ok"] and metrics["test/acc"] > 0.6
    summary = detect(folder, NSL_KDD_TEST, tmp_path / "alerts.jsonl", progress=False)
    assert summary["accuracy"] == pytest.approx(metrics["test/acc"], abs=2e-4)


@pytest.mark.parametrize("model", RECURRENT_MODELS)
def test_fast_dev_run_every_recurrent_model_on_real_nsl_kdd(make_config, tmp_path, model):
    fast_dev_run_on_nsl_kdd(make_config, tmp_path, model)


def test_ft_transformer_trains_exports_and_rebuilds_from_its_folder(make_config, tmp_path):
    tabular_run_rebuilt(make_config, tmp_path, "ft_transformer", FT_TRANSFORMER_SMALL)
