"""Experiment tracking on real runs: an embedded MLflow store beside TensorBoard (a real server:
tests/e2e/test_tracking_server.py), what TensorBoard gets (one event file, the config in
hparams.yaml, epoch once per step, the learning rate, average precision), provenance from the run
folder through the ONNX models to the alerts, and the report's commit and data columns."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from ids_lightning.training.config import QUIET, compose
from ids_lightning.training.run import train
from tests.helpers import DATA_DIR, run_if

pytestmark = run_if(module="mlflow")
SMALL = ["dataset=bot_iot", "model=cnn", "trainer.max_epochs=2", *[o for o in QUIET if not o.startswith("logger")]]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """One run logging to TensorBoard and an embedded MLflow store: (run folder, store, metrics)."""
    root = tmp_path_factory.mktemp("embedded")
    folder, store = root / "run", root / "outputs"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        metrics = train(compose([*SMALL, "logger=[tensorboard,mlflow]", f"paths.log_dir={store}"], folder, DATA_DIR))
    return folder, store, metrics


def test_embedded_mlflow_beside_tensorboard(embedded):
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder, store, metrics = embedded
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ids-lightning")
    assert experiment.artifact_location == (store / "mlartifacts").as_uri()
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["run_dir"] == str(folder) and "mlflow.parentRunId" not in run.data.tags
    assert {"model.onnx", "preprocess.json"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "figures/precision_recall.png" in figures
    # TensorBoard: one event file, the config in hparams.yaml, epoch once per step
    (events,) = (folder / "tensorboard").glob("events.out.tfevents.*")
    assert "model/optimizer/lr: 0.001" in (folder / "tensorboard" / "hparams.yaml").read_text()
    board = EventAccumulator(str(events), size_guidance={"scalars": 0})
    board.Reload()
    epochs = [event.step for event in board.Scalars("epoch")]
    assert len(epochs) == len(set(epochs)) == 3  # two training epochs and the test
    assert [event.value for event in board.Scalars("train/lr")] == pytest.approx([1e-3, 1e-3])
    assert {"test/precision_recall", "test/roc"} <= set(board.Tags()["images"])
    # average precision: the macro value is the mean of the classes'
    per_class = [metrics[f"test/ap/{name}"] for name in metrics["class_names"]]
    assert metrics["test/ap_macro"] == pytest.approx(sum(per_class) / len(per_class), abs=1e-6)
    assert board.Scalars("test/ap_macro")[0].value == pytest.approx(metrics["test/ap_macro"], abs=1e-6)


def test_the_run_its_models_and_its_alerts_trace_to_the_code_and_the_data(embedded, tmp_path):
    import onnx

    from ids_lightning.core import provenance
    from ids_lightning.edge.detector import detect

    folder, _, _ = embedded
    made = json.loads((folder / "provenance.json").read_text())
    read = DATA_DIR / "bot_iot" / "bot_iot_reducedfeatures_normal_dos_recon_sample.csv.gz"
    assert made["data"] == {read.name: hashlib.sha256(read.read_bytes()).hexdigest()}
    assert made["format"] == 1 and made["ended_at"] >= made["started_at"]
    assert made["environment"]["packages"]["torch"] and made["config_sha256"]
    assert made["commit"] == provenance.code_state()["commit"]  # None only outside a checkout
    for model in ("model.onnx", "model.int8.onnx"):
        meta = {p.key: p.value for p in onnx.load(str(folder / model)).metadata_props}
        assert provenance.from_onnx_metadata(meta) == {k: made[k] for k in provenance.METADATA}, model
    summary = detect(folder, read, tmp_path / "alerts.jsonl", progress=False)
    first = json.loads((tmp_path / "alerts.jsonl").read_text().splitlines()[0])
    assert first["model"]["trained_with"] == summary["model_trained_with"] == {k: made[k] for k in provenance.METADATA}


def test_the_report_names_commit_and_data_and_refuses_to_average_other_data(embedded, tmp_path):
    from ids_lightning.analysis.report import report
    from ids_lightning.core.errors import DataError

    folder, _, _ = embedded
    made = json.loads((folder / "provenance.json").read_text())
    for name, data_hash in (("a", made["data_sha256"]), ("b", "0" * 64)):  # two seeds, the second on other data
        copy = tmp_path / "sweep" / name
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("checkpoints", "tensorboard", "*.onnx"))
        metrics = json.loads((copy / "metrics.json").read_text())
        (copy / "metrics.json").write_text(json.dumps({**metrics, "seed": {"a": 1, "b": 2}[name]}))
        (copy / "provenance.json").write_text(json.dumps({**made, "data_sha256": data_hash}))
    with pytest.raises(DataError, match="different data files"):
        report([tmp_path / "sweep"], tmp_path / "out", baselines=False)
    (table,) = report([tmp_path / "sweep"], tmp_path / "out", baselines=False, allow_mixed_data=True)
    assert table["data"] == "mixed" and table["commit"].startswith((made["commit"] or "")[:8])
    shutil.rmtree(tmp_path / "sweep" / "b")
    (table,) = report([tmp_path / "sweep"], tmp_path / "out", baselines=False)
    assert table["data"] == made["data_sha256"][:12]
    assert f"| {table['data']} |" in (tmp_path / "out" / "report.md").read_text()
