"""A tiny sweep feeds the report, Optuna runs trials, notebooks execute."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from ids_lightning.analysis.report import report
from ids_lightning.training.config import PROJECT_ROOT
from ids_lightning.training.search import search
from tests.helpers import DATA_DIR

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
TINY_ATTACK = [
    "callbacks.adversarial_eval.max_rows=64",
    "callbacks.adversarial_eval.eps=[0.1]",
    "callbacks.adversarial_eval.pgd_steps=1",
    "export=none",
]


def test_tiny_sweep_then_report(tmp_path, data_dir):
    command = [
        sys.executable,
        str(PROJECT_ROOT / "train.py"),
        "-m",
        "experiment=paper",
        "debug=fast_dev_run",
        "dataset=bot_iot",
        "model=cnn,lstm",
        "seed=1,2",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *TINY_ATTACK,
    ]
    result = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, "IDS_DATA_DIR": str(DATA_DIR)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = report([tmp_path / "sweep"])
    models = {"cnn", "lstm", "random_forest", "hist_gradient_boosting"}  # the report fits the baselines
    assert {(r["model"], r["dataset"]) for r in table} == {(m, "bot_iot") for m in models}
    assert all(r["n_seeds"] == 2 and r["split"] == "random" and r["experiment"] == "paper" for r in table)
    rows = list(csv.DictReader((tmp_path / "sweep" / "report.csv").open()))
    assert len(rows) == 4 and {"model", "dataset", "split", "n_seeds", "test/acc_mean", "test/acc_std"} <= set(rows[0])
    assert "test_adv/pgd/eps_0.1/acc_mean" in rows[0]
    assert (tmp_path / "sweep" / "report.md").read_text().count("\n") == 6
    assert len(list((tmp_path / "sweep" / "baselines").rglob("metrics.json"))) == 4  # 2 models x 2 seeds
    assert (tmp_path / "sweep" / "report_bot_iot_random_paper.png").is_file()


def test_optuna_search_runs_two_trials(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("IDS_DATA_DIR", str(DATA_DIR))
    result = search(
        [
            "hparams_search=cnn_lstm_optuna",
            "search.n_trials=2",
            f"paths.log_dir={tmp_path}",
            "dataset=bot_iot",
            "debug=fast_dev_run",
            "export=none",
        ],
        output=tmp_path,
    )
    assert len(result["trials"]) == 2 and all(t["state"] == "COMPLETE" for t in result["trials"])
    assert result["metric"] == "val/f1_macro_best" and set(result["best_params"]) == {
        "model.optimizer.lr",
        "model.net.dropout",
        "model.net.conv_channels",
        "model.net.hidden_size",
        "model.net.num_layers",
        "dataset.batch_size",
    }
    assert json.loads((tmp_path / "study.json").read_text())["best_trial"] in (0, 1)
    assert (tmp_path / "trial_1" / "metrics.json").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_are_stored_clean_and_execute(path, tmp_path, data_dir, monkeypatch):
    book = nbformat.read(path, as_version=4)
    assert all(
        c.get("outputs", []) == [] and c.get("execution_count") is None for c in book.cells if c.cell_type == "code"
    )
    monkeypatch.setenv("IDS_NOTEBOOK_SCALE", "tiny")
    monkeypatch.setenv("IDS_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("IDS_DATA_DIR", str(DATA_DIR))
    NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
