"""A real MLflow server (SQLite backend, on loopback), as docs/tracking.md starts one: seeds log to
it as child runs of one parent, read back through MLflow's client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ids_lightning.training.config import QUIET, compose
from ids_lightning.training.seeds import train_seeds
from tests.helpers import DATA_DIR, run_if

pytestmark = [pytest.mark.slow, run_if(module="mlflow")]
SMALL = ["dataset=bot_iot", "model=cnn", "trainer.max_epochs=2", *[o for o in QUIET if not o.startswith("logger")]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``mlflow server`` with a SQLite backend on loopback, as docs/tracking.md starts it."""
    root, port = tmp_path_factory.mktemp("mlflow_server"), _free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"mlflow server did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.3)
    yield uri
    process.terminate()
    process.wait(timeout=30)


def test_seeds_log_to_a_server_as_child_runs_of_one_parent(server, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    folder = tmp_path / "seeds"
    # the server from the environment, as a user points runs at one (MLflow itself sets it too)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    cfg = compose([*SMALL, "seeds=[1,2]", "logger=mlflow"], folder, DATA_DIR)
    train_seeds(cfg)
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("ids-lightning").experiment_id
    found = client.search_runs([experiment], filter_string=f"tags.run_dir LIKE '{folder}%'")
    runs = {run.info.run_name: run for run in found}
    assert sorted(runs) == ["seed_1", "seed_2"]
    parent = client.search_runs([experiment], filter_string=f"tags.`ids.group.parent` = '{folder}'")
    assert len(parent) == 1
    for name, run in runs.items():
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent[0].info.run_id
        assert run.data.params["seed"] == name.split("_")[1] and run.data.params["model/net/channels"]
        local = json.loads((folder / name / "metrics.json").read_text())
        assert run.data.metrics["test/acc"] == pytest.approx(local["test/acc"])
        curve = client.get_metric_history(run.info.run_id, "val/f1_macro")
        assert len({m.step for m in curve}) == 2  # one value per epoch (and the final one at the last step)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"model.onnx", "preprocess.json", "metrics.json", "figures"} <= artifacts
        downloaded = client.download_artifacts(run.info.run_id, "model.onnx", str(tmp_path / name))
        assert Path(downloaded).read_bytes() == (folder / name / "model.onnx").read_bytes()
