"""A seed ensemble of real runs: one ONNX graph equal to the mean of its members, each on its own
preprocessing, in a folder that the detector takes like any run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ids_lightning.analysis.ensemble import ensemble
from ids_lightning.core.preprocess import Preprocessor
from ids_lightning.datasets import get_spec
from ids_lightning.edge.detector import detect
from ids_lightning.edge.runtime import load_run
from ids_lightning.training.run_folder import load_best_model
from tests.helpers import DATA_DIR, SMALL_RUN, trained_run

BOT_IOT = DATA_DIR / "bot_iot" / "bot_iot_reducedfeatures_normal_dos_recon_sample.csv.gz"


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    return [
        trained_run(tmp_path_factory, f"seed{s}", *SMALL_RUN, "trainer.max_epochs=2", f"seed={s}")[0] for s in (1, 2)
    ]


def test_the_ensemble_graph_is_the_mean_of_its_members_on_their_own_scaling(members, tmp_path):
    metrics = ensemble(members, tmp_path / "ens")
    assert (
        metrics["model"] == "ensemble" and metrics["onnx/parity_ok"] and metrics["members"] == list(map(str, members))
    )
    states = [Preprocessor.load(m / "preprocess.json") for m in members]
    rows = get_spec("bot_iot").read_file(BOT_IOT)
    lo, span = np.asarray(states[0].numeric_min), np.asarray(states[0].numeric_max) - np.asarray(states[0].numeric_min)
    transformed = np.log1p(np.maximum(rows.numeric, 0)) if states[0].scaler == "log_minmax" else rows.numeric
    inside = np.flatnonzero(((transformed >= lo) & (transformed <= lo + span)).all(axis=1))[:2000]
    rows = rows.take(inside)
    with torch.no_grad():
        expected = np.mean(
            [load_best_model(m)(torch.from_numpy(s.transform(rows)[0])).numpy() for m, s in zip(members, states)],
            axis=0,
        )
    got = load_run(tmp_path / "ens").score(states[0].transform(rows)[0])
    assert np.abs(got - expected).max() < 1e-5


def test_the_detector_scores_with_an_ensemble_folder(members, tmp_path):
    ensemble(members, tmp_path / "ens")
    summary = detect(tmp_path / "ens", BOT_IOT, tmp_path / "alerts.jsonl", progress=False)
    assert summary["records"] == 18867 and summary["accuracy"] > 0.8
    made = json.loads((tmp_path / "ens" / "provenance.json").read_text())
    assert [m["run"] for m in made["members"]] == list(map(str, members))
    assert summary["model_trained_with"]["config_sha256"] == made["config_sha256"]


def test_validation_scores_only_when_the_members_held_out_the_same_rows(members, tmp_path, tmp_path_factory):
    assert "val/acc" not in ensemble(members, tmp_path / "across_splits")  # seed 1's val rows train seed 2
    same_split = trained_run(
        tmp_path_factory, "split1", *SMALL_RUN, "trainer.max_epochs=2", "seed=2", "dataset.seed=1"
    )[0]
    metrics = ensemble([members[0], same_split], tmp_path / "same_split")
    assert metrics["val/acc"] > 0.5 and metrics["val/f1_macro"] > 0


def test_the_report_adds_the_ensemble_of_each_rows_seeds_once(members, tmp_path, capsys):
    from ids_lightning.analysis.report import report

    table = report(members, tmp_path, baselines=False, ensembles=True)
    rows = {row["model"]: row for row in table}
    assert rows["cnn"]["n_seeds"] == 2 and rows["ensemble"]["test/acc_mean"] > 0.5
    assert "building the ensemble of 2 seeds" in capsys.readouterr().out
    report([*members, tmp_path / "ensembles"], tmp_path, baselines=False, ensembles=True)  # it is held now
    assert "building" not in capsys.readouterr().out
