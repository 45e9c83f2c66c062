"""train() runs end to end on the real data of every dataset and writes what it promises."""

from __future__ import annotations

import json

import pytest

from ids_lightning.training.run import train

RECURRENT_MODELS = ["lstm", "cnn_lstm", "cnn_bilstm"]  # with cnn: every sequence net
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


def test_fast_dev_run_of_the_cnn_on_real_nsl_kdd(make_config, tmp_path):
    fast_dev_run_on_nsl_kdd(make_config, tmp_path, "cnn")  # the recurrent nets: tests/e2e/test_train.py


def fast_dev_run_on_nsl_kdd(make_config, tmp_path, model: str) -> None:
    """int8 quantisation is covered by test_edge; here the fp32 export is checked for ``model``."""
    metrics = train(make_config(f"model={model}", "debug=fast_dev_run", "export.quantize=false"))
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
@pytest.mark.parametrize("model", ["cnn_lstm", "cnn_bilstm"])  # every net runs on NSL-KDD above; the tabular ones below
def test_fast_dev_run_on_iot23_and_bot_iot(make_config, tmp_path, dataset, model):
    overrides = [f"model={model}", f"dataset={dataset}", "debug=fast_dev_run", "export=none"]
    metrics = train(make_config(*overrides))
    assert metrics["dataset"] == dataset and metrics["model"] == model
    assert metrics["num_classes"] == (2 if dataset == "iot23" else 3)
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "confusion_matrix.png").is_file()


def test_short_run_checkpoints_tests_best_and_logs_to_tensorboard(make_config, tmp_path):
    metrics = train(make_config("debug=limit", "dataset.task=binary", "callbacks.progress_bar=null", "export=none"))
    assert metrics["epochs_run"] == 3 and metrics["num_classes"] == 2
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    history = json.loads((tmp_path / "evaluation.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert all(row["val/acc"] is not None and row["train/loss"] is not None for row in history)
    events = b"".join(p.read_bytes() for p in (tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    for tag in (b"test/acc", b"val/f1_macro_best", b"test/confusion_matrix", b"hparams", b"dataset/task"):
        assert tag in events, tag


ATTACKED = [  # PGD adversarial training and the FGSM/PGD evaluation, small
    "callbacks=adversarial",
    "callbacks.adversarial_eval.max_rows=256",
    "callbacks.adversarial_eval.eps=[0.1]",
    "callbacks.adversarial_eval.pgd_steps=2",
    "model.adversarial.method=pgd",
    "model.adversarial.steps=2",
]


# attacks and explanations of FT-Transformer: the same module's, the same callbacks (tested on the other nets)
FT_TRANSFORMER_SMALL = ["model.net.d_token=16", "model.net.heads=4", "callbacks.explanations=null"]


def test_tabm_trains_export_and_rebuilds_from_its_folder(make_config, tmp_path):
    tabular_run_rebuilt(make_config, tmp_path, "tabm", ["model.net.k=4", "model.net.width=64", *ATTACKED])


def tabular_run_rebuilt(make_config, tmp_path, model: str, small: list[str]) -> None:
    """The tabular nets take the categories as codes (``embedding``), train adversarially and are
    attacked like the other nets, export with parity, and a run folder rebuilds them from its
    config and preprocess.json alone (FT-Transformer: tests/e2e/test_train.py)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from ids_lightning.training.run_folder import load_best_model

    overrides = [f"model={model}", *small, "dataset.categorical=embedding", "debug=fast_dev_run"]
    metrics = train(make_config(*overrides, "export.quantize=false"))
    assert metrics["model"] == model and metrics["onnx/parity_ok"]
    if "callbacks=adversarial" in small:
        assert 0 <= metrics["test_adv/pgd/eps_0.1/acc"] <= 1 and metrics["train/loss"] is not None
    rows = np.load(tmp_path / "bench_rows.npy")[:256]
    with torch.no_grad():
        rebuilt = load_best_model(tmp_path)(torch.from_numpy(rows)).numpy()
    exported = ort.InferenceSession(str(tmp_path / "model.onnx")).run(None, {"features": rows})[0]
    assert np.abs(rebuilt - exported).max() <= 1e-5


SMALL_TABULAR = {
    "tabm": ["model.net.k=4", "model.net.width=64"],
    "ft_transformer": ["model.net.d_token=16", "model.net.heads=4"],
}


@pytest.mark.parametrize(("model", "dataset"), [("tabm", "iot23"), ("ft_transformer", "bot_iot")])
def test_tabular_models_train_on_iot23_and_bot_iot(make_config, tmp_path, model, dataset):
    small = SMALL_TABULAR[model]
    overrides = [f"model={model}", *small, f"dataset={dataset}", "dataset.categorical=embedding", "debug=fast_dev_run"]
    metrics = train(make_config(*overrides, "export.quantize=false"))
    assert metrics["dataset"] == dataset and metrics["model"] == model and metrics["onnx/parity_ok"]
    assert (tmp_path / "density.json").is_file()  # one flow: the benign density is fitted
