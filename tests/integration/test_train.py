"""Configs compose; train.py runs end to end on real NSL-KDD and writes what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
from ids_lightning.utils import instantiate_group, sweep_value

from ids_lightning.config import CONFIG_DIR, PROJECT_ROOT
from ids_lightning.train import train
from tests.conftest import DATA_DIR

MODELS = ["cnn", "lstm", "cnn_lstm", "cnn_bilstm"]
REQUIRED_KEYS = [
    "test/acc",
    "test/f1_macro",
    "test/precision_macro",
    "test/recall_macro",
    "test/auroc",
    "dataset",
    "task",
    "split",
    "model",
    "num_features",
    "num_classes",
    "class_names",
    "seed",
    "epochs_run",
    "fit_seconds",
    "n_params",
    "val/f1_macro_best",
]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "override",
    [f"{g}={name}" for g in ("dataset", "model", "trainer", "callbacks", "logger") for name in options(g)]
    + [f"{g}={name}" for g in ("experiment", "debug") for name in options(g)],
)
def test_every_config_composes_and_builds(make_config, override):
    cfg = make_config(override)
    if override.startswith(("callbacks", "logger")):
        assert all(obj is not None for obj in instantiate_group(cfg.get(override.split("=")[0])))
    if override.startswith("model"):
        net = hydra.utils.instantiate(cfg.model.net, num_features=41, num_classes=5)
        assert sum(p.numel() for p in net.parameters()) > 1000
    assert cfg.paths.data_dir == str(DATA_DIR)


def test_experiments_set_their_protocol(make_config):
    seed_protocol = make_config("experiment=seed_protocol")
    assert (seed_protocol.dataset.split, seed_protocol.dataset.scaler) == ("random", "minmax")
    assert seed_protocol.callbacks.early_stopping is None and seed_protocol.trainer.max_epochs == 50
    official = make_config("experiment=official")
    assert (official.dataset.split, official.dataset.scaler) == ("official", "log_minmax")


@pytest.mark.parametrize("model", MODELS)
def test_fast_dev_run_every_model_on_real_nsl_kdd(make_config, tmp_path, model):
    # int8 quantisation is covered by test_edge; here the fp32 export is checked for every model
    metrics = train(make_config(f"model={model}", "debug=fast_dev_run", "callbacks.onnx_export.quantize=false"))
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert all(key in on_disk for key in REQUIRED_KEYS)
    assert on_disk["model"] == model and on_disk["num_features"] == 41 and on_disk["num_classes"] == 5
    assert {f"test/recall/{c}" for c in on_disk["class_names"]} <= on_disk.keys()
    # export parity for every model, at several batch sizes
    assert on_disk["onnx/parity_ok"] and on_disk["onnx/argmax_agreement"] >= 0.999
    assert 0.0 <= on_disk["test/acc"] <= 1.0
    for name in ("preprocess.json", "evaluation.json", "confusion_matrix.png", "roc.png", "curves.png"):
        assert (tmp_path / name).is_file(), name


@pytest.mark.parametrize("dataset", ["iot23", "bot_iot"])
@pytest.mark.parametrize("model", MODELS)
def test_fast_dev_run_every_model_on_iot23_and_bot_iot(make_config, tmp_path, dataset, model):
    overrides = [f"model={model}", f"dataset={dataset}", "debug=fast_dev_run", "callbacks.onnx_export=null"]
    metrics = train(make_config(*overrides))
    assert metrics["dataset"] == dataset and metrics["model"] == model
    assert metrics["num_classes"] == (2 if dataset == "iot23" else 3)
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "confusion_matrix.png").is_file()


def test_short_run_checkpoints_tests_best_and_logs_to_tensorboard(make_config, tmp_path):
    metrics = train(
        make_config("debug=limit", "dataset.task=binary", "callbacks.progress_bar=null", "callbacks.onnx_export=null")
    )
    assert metrics["epochs_run"] == 3 and metrics["num_classes"] == 2
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    history = json.loads((tmp_path / "evaluation.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert all(row["val/acc"] is not None and row["train/loss"] is not None for row in history)
    events = b"".join(p.read_bytes() for p in (tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    for tag in (b"test/acc", b"val/f1_macro_best", b"test/confusion_matrix", b"hparams", b"dataset/task"):
        assert tag in events, tag


def test_unknown_sweep_metric_is_an_error():
    with pytest.raises(KeyError, match=r"'val/nope' is not in metrics\.json"):
        sweep_value({"val/acc": 0.5}, "val/nope")
    assert sweep_value({"val/acc": 0.5}, "val/acc") == 0.5


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
    result = run_train(
        "-m", "model=cnn,lstm", "debug=fast_dev_run", "callbacks.onnx_export=null", f"paths.log_dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "multirun").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if (p / "metrics.json").is_file())
    assert jobs == ["0", "1"]
    models = {json.loads((sweep / j / "metrics.json").read_text())["model"] for j in jobs}
    assert models == {"cnn", "lstm"}


def test_run_folders_of_processes_started_together_differ():
    code = "from ids_lightning.config import RUN_ID; print(RUN_ID)"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
        for _ in range(4)
    ]
    ids = [p.communicate()[0].strip() for p in procs]
    assert len(set(ids)) == 4 and all(len(i) == 6 for i in ids)


@pytest.mark.slow
def test_two_epochs_beat_the_majority_class_on_kddtest_plus(make_config):
    metrics = train(
        make_config("trainer.max_epochs=2", "dataset.scaler=log_minmax", "logger=none", "callbacks.progress_bar=null")
    )
    majority = 9711 / 22544  # share of normal rows in KDDTest+
    assert metrics["epochs_run"] == 2
    assert metrics["test/acc"] > majority + 0.2
    assert metrics["test/auroc"] > 0.8
